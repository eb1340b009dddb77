#include "http/routes.hpp"

#include <chrono>

#include "http/access.hpp"
#include "http/catalog_codec.hpp"
#include "http/json_codec.hpp"
#include "http/metrics_text.hpp"
#include "http/openai.hpp"

namespace adapterd::http {

namespace {

std::string path_of(const std::string& target) {
  return target.substr(0, target.find('?'));
}

using error_fn = std::function<response(const api_error&)>;

template <class T, class Render>
std::function<void(outcome<T>)> reply_with(std::shared_ptr<responder> out, Render render,
                                           std::function<api_error(const messages::failure&)> to_error = to_api_error,
                                           error_fn on_error = error_response) {
  return [out = std::move(out), render, to_error, on_error](outcome<T> result) {
    if (auto* value = std::get_if<T>(&result)) {
      response r;
      r.body = render(*value);
      out->respond(std::move(r));
    } else {
      out->respond(on_error(to_error(std::get<messages::failure>(result))));
    }
  };
}

template <class T>
std::function<void(outcome<T>)> reply_with(std::shared_ptr<responder> out) {
  return reply_with<T>(std::move(out), [](const T& v) { return to_json(v); });
}

/// How a streamed generation is written: its text events, its last event(s) and a late
/// error; an error before the first text is a whole response.
struct sse_format {
  std::function<std::string(const messages::stream_chunk&, bool first)> chunk;
  std::function<std::string(const messages::generate_reply&)> done;
  std::function<std::string(const api_error&)> late_error;
  std::function<api_error(const messages::failure&)> to_error;
  error_fn early_error;
};

// The one place streams are written. The event stream opens with the first text, so that
// a request that fails before it (a bad adapter, a full queue) still gets its plain error.
void generate_streaming(messages::generate_request gen, backend& svc, std::shared_ptr<responder> out,
                        sse_format fmt) {
  auto opened = std::make_shared<bool>(false);  // touched by the backend's calls, in order
  auto open = [out, opened] {
    bool first = !*opened;
    if (first) {
      *opened = true;
      out->stream_open();
    }
    return first;
  };
  svc.generate(
    std::move(gen),
    [out, open, fmt](messages::stream_chunk c) {
      bool first = open();
      out->stream_write(fmt.chunk(c, first));
    },
    [out, open, opened, fmt](outcome<messages::generate_reply> result) {
      if (auto* reply = std::get_if<messages::generate_reply>(&result)) {
        open();
        out->stream_write(fmt.done(*reply));
        return out->stream_close();
      }
      auto err = fmt.to_error(std::get<messages::failure>(result));
      if (!*opened)
        return out->respond(fmt.early_error(err));
      out->stream_write(fmt.late_error(err));
      out->stream_close();
    });
}

sse_format lite_format() {
  return {[](const messages::stream_chunk& c, bool) { return sse_event("", to_json(c)); },
          [](const messages::generate_reply& r) { return sse_event("done", to_json(r)); },
          [](const api_error& e) { return sse_event("error", error_response(e).body); },
          to_api_error, error_response};
}

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

void openai_generate(openai::endpoint kind, const request_view& req, backend& svc, const limits& lim,
                     std::shared_ptr<responder> out) {
  auto parsed = openai::parse(kind, req.body, lim);
  if (auto* e = std::get_if<api_error>(&parsed))
    return out->respond(openai::error_response(*e));
  auto oreq = std::get<openai::request>(std::move(parsed));
  oreq.gen.request_id = req.request_id;
  auto created = unix_now();
  auto gen = oreq.gen;
  if (gen.stream) {
    sse_format fmt{
      [kind, oreq, created](const messages::stream_chunk& c, bool first) {
        return openai::chunk_json(kind, oreq, c.text, first, created);
      },
      [kind, oreq, created](const messages::generate_reply& r) { return openai::final_events(kind, oreq, r, created); },
      [](const api_error& e) { return "data: " + openai::error_response(e).body + "\n\ndata: [DONE]\n\n"; },
      openai::to_api_error, openai::error_response};
    return generate_streaming(std::move(gen), svc, std::move(out), std::move(fmt));
  }
  svc.generate(std::move(gen), {},
               reply_with<messages::generate_reply>(
                 std::move(out), [kind, oreq, created](const messages::generate_reply& r) {
                   return openai::to_json(kind, oreq, r, created);
                 },
                 openai::to_api_error, openai::error_response));
}

response method_not_allowed(const std::string& allowed, const std::string& method,
                            const std::string& path) {
  auto r = error_response({405, "method_not_allowed", method + " is not allowed on " + path
                                                         + " (allowed: " + allowed + ")"});
  r.headers.emplace_back("Allow", allowed);
  return r;
}

// The routes that change what a node holds or frees.
bool admin_route(const std::string& method, const std::string& path) {
  bool changes = method != "GET" && method != "HEAD";
  return path == "/cleanup-memory" || (changes && (path.rfind("/adapters", 0) == 0 || path.rfind("/jobs", 0) == 0));
}

}  // namespace

void route(const request_view& req, backend& svc, const limits& lim, std::shared_ptr<responder> out) {
  auto respond = [&out](response r) { out->respond(std::move(r)); };
  auto path = path_of(req.target);
  auto is = [&](const char* p, const char* methods) {
    if (path != p)
      return false;
    std::string allowed = methods;
    if (allowed.find(req.method) == std::string::npos || req.method.empty()) {
      respond(method_not_allowed(allowed, req.method, path));
      return false;
    }
    return true;
  };
  if (lim.health_only && path != "/health" && path != "/metrics")
    return respond(error_response({404, "not_found", "this node is a worker: " + path
                                                       + " is served by its router"}));
  // /health and /metrics stay open: orchestrators and Prometheus probe them without keys.
  if (path != "/health" && path != "/metrics") {
    if (auto denied = check_access(lim, req.authorization, admin_route(req.method, path)))
      return respond(path.rfind("/v1/", 0) == 0 ? openai::error_response(*denied) : error_response(*denied));
  }
  if (path == "/generate-lite") {
    if (!is("/generate-lite", "POST"))
      return;
    auto parsed = parse_generate(req.body, lim);
    if (auto* e = std::get_if<api_error>(&parsed))
      return respond(error_response(*e));
    auto gen = std::get<messages::generate_request>(std::move(parsed));
    gen.request_id = req.request_id;
    if (gen.stream)
      return generate_streaming(std::move(gen), svc, std::move(out), lite_format());
    return svc.generate(std::move(gen), {}, reply_with<messages::generate_reply>(std::move(out)));
  }
  if (path == "/v1/completions" || path == "/v1/chat/completions") {
    if (!is(path.c_str(), "POST"))
      return;
    return openai_generate(path == "/v1/completions" ? openai::endpoint::completions : openai::endpoint::chat,
                           req, svc, lim, std::move(out));
  }
  if (path == "/v1/models") {
    if (!is("/v1/models", "GET"))
      return;
    return svc.adapters(messages::adapter_request{req.request_id, "list", "", ""},
                        reply_with<messages::adapter_reply>(std::move(out), openai::models_json,
                                                            openai::to_api_error, openai::error_response));
  }
  if (path == "/tokenize" || path == "/detokenize") {
    if (!is(path.c_str(), "POST"))
      return;
    if (path == "/tokenize") {
      auto parsed = parse_tokenize(req.body);
      if (auto* e = std::get_if<api_error>(&parsed))
        return respond(error_response(*e));
      auto t = std::get<messages::tokenize_request>(std::move(parsed));
      t.request_id = req.request_id;
      return svc.tokenize(std::move(t), reply_with<messages::tokenize_reply>(std::move(out)));
    }
    auto parsed = parse_detokenize(req.body);
    if (auto* e = std::get_if<api_error>(&parsed))
      return respond(error_response(*e));
    auto d = std::get<messages::detokenize_request>(std::move(parsed));
    d.request_id = req.request_id;
    return svc.detokenize(std::move(d), reply_with<messages::detokenize_reply>(std::move(out)));
  }
  if (path == "/adapters/train") {
    if (!is("/adapters/train", "POST"))
      return;
    auto parsed = parse_train(req.body);
    if (auto* e = std::get_if<api_error>(&parsed))
      return respond(error_response(*e));
    auto t = std::get<messages::train_request>(std::move(parsed));
    t.request_id = req.request_id;
    return svc.train(std::move(t), [out](outcome<messages::job_status> r) {
      if (auto* status = std::get_if<messages::job_status>(&r)) {
        response accepted;
        accepted.status = 202;
        accepted.body = to_json(*status);
        accepted.headers.emplace_back("Location", "/jobs/" + status->id);
        return out->respond(std::move(accepted));
      }
      out->respond(error_response(to_api_error(std::get<messages::failure>(r))));
    });
  }
  if (path == "/jobs" || path.rfind("/jobs/", 0) == 0) {
    auto parsed = parse_job_request(req.method, path);
    if (auto* e = std::get_if<api_error>(&parsed))
      return respond(error_response(*e));
    auto j = std::get<messages::job_request>(std::move(parsed));
    j.request_id = req.request_id;
    bool one = j.action != "list";
    return svc.jobs(std::move(j), reply_with<messages::job_list>(std::move(out), [one](const messages::job_list& l) {
      return one && !l.jobs.empty() ? to_json(l.jobs.front()) : to_json(l);
    }));
  }
  if (path == "/adapters" || path.rfind("/adapters/", 0) == 0) {
    auto parsed = parse_adapter_request(req.method, path, req.body);
    if (auto* e = std::get_if<api_error>(&parsed)) {
      auto r = error_response(*e);
      if (e->status == 405)
        r.headers.emplace_back("Allow", path == "/adapters" ? "GET, POST" : "DELETE");
      return respond(std::move(r));
    }
    auto a = std::get<messages::adapter_request>(std::move(parsed));
    a.request_id = req.request_id;
    // Here the adapter is the resource asked for: one that is not there is a 404.
    auto to_error = [](const messages::failure& f) {
      auto e = to_api_error(f);
      if (f.code == messages::errc::adapter_not_found)
        e.status = 404;
      return e;
    };
    return svc.adapters(std::move(a), reply_with<messages::adapter_reply>(
                                        std::move(out), [](const messages::adapter_reply& r) { return to_json(r); },
                                        to_error));
  }
  if (path == "/metrics") {
    if (!is("/metrics", "GET"))
      return;
    return svc.health([out](outcome<messages::health_report> h) {
      if (auto* report = std::get_if<messages::health_report>(&h)) {
        response r;
        r.content_type = "text/plain; version=0.0.4; charset=utf-8";
        r.body = prometheus_text(*report);
        return out->respond(std::move(r));
      }
      out->respond(error_response(to_api_error(std::get<messages::failure>(h))));
    });
  }
  if (path == "/cleanup-memory") {
    if (!is("/cleanup-memory", "POST"))
      return;
    auto parsed = parse_cleanup(req.body);
    if (auto* e = std::get_if<api_error>(&parsed))
      return respond(error_response(*e));
    auto cleanup = std::get<messages::cleanup_request>(std::move(parsed));
    cleanup.request_id = req.request_id;
    return svc.cleanup(std::move(cleanup), reply_with<messages::cleanup_reply>(std::move(out)));
  }
  if (path == "/health") {
    if (!is("/health", "GET, HEAD"))
      return;
    return svc.health(reply_with<messages::health_report>(std::move(out)));
  }
  respond(error_response({404, "not_found", "no route for " + req.method + " " + path}));
}

}  // namespace adapterd::http
