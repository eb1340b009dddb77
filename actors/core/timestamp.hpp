#pragma once
// Wall-clock times as the service reports them.
#include <cstdint>
#include <string>

namespace adapterd::actors {

/// The seed's /health timestamp: ISO 8601, local time, seconds.
std::string local_timestamp();

/// Unix milliseconds: job times, the console's samples, last use of weights.
int64_t unix_ms();

}  // namespace adapterd::actors
