#pragma once
// The route table of the seed's contract: which method and path reach which backend call.
#include <string>

#include "http/api.hpp"

namespace adapterd::http {

struct request_view {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query
  std::string body;
  std::string request_id;
};

/// Answers through `respond` exactly once: immediately for 404/405/400, or when the
/// backend has answered.
void route(const request_view& req, backend& svc, const limits& lim, respond_fn respond);

}  // namespace adapterd::http
