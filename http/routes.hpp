#pragma once
// The route table: which method and path reach which handler, at which access level.
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
/// Nothing a handler throws escapes: it becomes this request's 500 `internal`.
void route(const request_view& req, backend& svc, const limits& lim, std::shared_ptr<responder> out);

/// The route pattern `target` reaches ("/jobs/{id}"), or "other": a bounded metric label.
std::string route_label(const std::string& target);

}  // namespace adapterd::http
