#pragma once
// The seed's /health timestamp: ISO 8601, local time, seconds.
#include <string>

namespace adapterd::actors {

std::string local_timestamp();

}  // namespace adapterd::actors
