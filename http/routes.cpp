#include "http/routes.hpp"

#include "http/json_codec.hpp"

namespace adapterd::http {

namespace {

std::string path_of(const std::string& target) {
  return target.substr(0, target.find('?'));
}

template <class T>
std::function<void(outcome<T>)> reply_with(std::shared_ptr<responder> out) {
  return [out = std::move(out)](outcome<T> result) {
    if (auto* value = std::get_if<T>(&result)) {
      response r;
      r.body = to_json(*value);
      out->respond(std::move(r));
    } else {
      out->respond(error_response(to_api_error(std::get<messages::failure>(result))));
    }
  };
}

// "stream": true. The event stream opens with the first text, so that a request that
// fails before it (a bad adapter, a full queue) still gets its plain JSON error.
void generate_streaming(messages::generate_request gen, backend& svc, std::shared_ptr<responder> out) {
  auto opened = std::make_shared<bool>(false);  // touched by the backend's calls, in order
  auto open = [out, opened] {
    if (!*opened) {
      *opened = true;
      out->stream_open();
    }
  };
  svc.generate(
    std::move(gen),
    [out, open](messages::stream_chunk c) {
      open();
      out->stream_write(sse_event("", to_json(c)));
    },
    [out, open, opened](outcome<messages::generate_reply> result) {
      if (auto* reply = std::get_if<messages::generate_reply>(&result)) {
        open();
        out->stream_write(sse_event("done", to_json(*reply)));
        return out->stream_close();
      }
      auto err = to_api_error(std::get<messages::failure>(result));
      if (!*opened)
        return out->respond(error_response(err));
      out->stream_write(sse_event("error", error_response(err).body));
      out->stream_close();
    });
}

response method_not_allowed(const std::string& allowed, const std::string& method,
                            const std::string& path) {
  auto r = error_response({405, "method_not_allowed", method + " is not allowed on " + path
                                                         + " (allowed: " + allowed + ")"});
  r.headers.emplace_back("Allow", allowed);
  return r;
}

}  // namespace

void route(const request_view& req, backend& svc, const limits& lim, std::shared_ptr<responder> out) {
  auto respond = [&out](response r) { out->respond(std::move(r)); };
  auto path = path_of(req.target);
  if (lim.health_only && path != "/health")
    return respond(error_response({404, "not_found", "this node is a worker: " + path
                                                       + " is served by its router"}));
  if (path == "/generate-lite") {
    if (req.method != "POST")
      return respond(method_not_allowed("POST", req.method, path));
    auto parsed = parse_generate(req.body, lim);
    if (auto* e = std::get_if<api_error>(&parsed))
      return respond(error_response(*e));
    auto gen = std::get<messages::generate_request>(std::move(parsed));
    gen.request_id = req.request_id;
    if (gen.stream)
      return generate_streaming(std::move(gen), svc, std::move(out));
    return svc.generate(std::move(gen), {}, reply_with<messages::generate_reply>(std::move(out)));
  }
  if (path == "/cleanup-memory") {
    if (req.method != "POST")
      return respond(method_not_allowed("POST", req.method, path));
    auto parsed = parse_cleanup(req.body);
    if (auto* e = std::get_if<api_error>(&parsed))
      return respond(error_response(*e));
    auto cleanup = std::get<messages::cleanup_request>(std::move(parsed));
    cleanup.request_id = req.request_id;
    return svc.cleanup(std::move(cleanup), reply_with<messages::cleanup_reply>(std::move(out)));
  }
  if (path == "/health") {
    if (req.method != "GET" && req.method != "HEAD")
      return respond(method_not_allowed("GET", req.method, path));
    return svc.health(reply_with<messages::health_report>(std::move(out)));
  }
  respond(error_response({404, "not_found", "no route for " + req.method + " " + path}));
}

}  // namespace adapterd::http
