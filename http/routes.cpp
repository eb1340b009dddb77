#include "http/routes.hpp"

#include "http/json_codec.hpp"

namespace adapterd::http {

namespace {

std::string path_of(const std::string& target) {
  return target.substr(0, target.find('?'));
}

template <class T>
std::function<void(outcome<T>)> reply_with(respond_fn respond) {
  return [respond = std::move(respond)](outcome<T> result) {
    if (auto* value = std::get_if<T>(&result)) {
      response r;
      r.body = to_json(*value);
      respond(std::move(r));
    } else {
      respond(error_response(to_api_error(std::get<messages::failure>(result))));
    }
  };
}

response method_not_allowed(const std::string& allowed, const std::string& method,
                            const std::string& path) {
  auto r = error_response({405, "method_not_allowed", method + " is not allowed on " + path
                                                         + " (allowed: " + allowed + ")"});
  r.headers.emplace_back("Allow", allowed);
  return r;
}

}  // namespace

void route(const request_view& req, backend& svc, const limits& lim, respond_fn respond) {
  auto path = path_of(req.target);
  if (path == "/generate-lite") {
    if (req.method != "POST")
      return respond(method_not_allowed("POST", req.method, path));
    auto parsed = parse_generate(req.body, lim);
    if (auto* e = std::get_if<api_error>(&parsed))
      return respond(error_response(*e));
    auto gen = std::get<messages::generate_request>(std::move(parsed));
    gen.request_id = req.request_id;
    return svc.generate(std::move(gen), reply_with<messages::generate_reply>(std::move(respond)));
  }
  if (path == "/cleanup-memory") {
    if (req.method != "POST")
      return respond(method_not_allowed("POST", req.method, path));
    auto level = parse_cleanup_level(req.body);
    if (auto* e = std::get_if<api_error>(&level))
      return respond(error_response(*e));
    return svc.cleanup(messages::cleanup_request{req.request_id, "manual", std::get<std::string>(level)},
                       reply_with<messages::cleanup_reply>(std::move(respond)));
  }
  if (path == "/health") {
    if (req.method != "GET" && req.method != "HEAD")
      return respond(method_not_allowed("GET", req.method, path));
    return svc.health(reply_with<messages::health_report>(std::move(respond)));
  }
  respond(error_response({404, "not_found", "no route for " + req.method + " " + path}));
}

}  // namespace adapterd::http
