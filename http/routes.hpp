#pragma once
// The route table of the seed's contract: which method and path reach which backend call.
#include <memory>
#include <string>

#include "http/api.hpp"

namespace adapterd::http {

struct request_view {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query
  std::string body;
  std::string request_id;
  std::string authorization;  // the Authorization header, if any
};

/// Answers through `out` exactly once: immediately for 404/405/400, or when the backend
/// has answered (as a whole, or as an event stream for "stream": true).
void route(const request_view& req, backend& svc, const limits& lim, std::shared_ptr<responder> out);

}  // namespace adapterd::http
