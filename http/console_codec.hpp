#pragma once
// The web console's feed in and out of HTTP: GET /console/feed?since=N.
#include <string>
#include <variant>

#include "http/json_codec.hpp"
#include "messages/console.hpp"

namespace adapterd::http {

/// The query of /console/feed: `since` (a sample number, default 0) and, to a router,
/// `node` (a worker's name or address), each at most once.
std::variant<messages::console_request, api_error> parse_console_query(const std::string& target);

/// Compact: the samples as rows under one list of field names.
std::string to_json(const messages::console_feed& f);

}  // namespace adapterd::http
