// Over 400 lines on purpose: the route table and its one handler per route read best
// side by side; each handler is a few lines of decoding and one backend call.
#include "http/routes.hpp"

#include <chrono>
#include <mutex>
#include <optional>

#include <spdlog/spdlog.h>

#include "http/access.hpp"
#include "http/catalog_codec.hpp"
#include "http/console_assets.hpp"
#include "http/console_codec.hpp"
#include "http/json_codec.hpp"
#include "http/metrics_text.hpp"
#include "http/openai.hpp"

namespace adapterd::http {

namespace {

std::string path_of(const std::string& target) {
  return target.substr(0, target.find('?'));
}

using error_fn = std::function<response(const api_error&)>;

response internal_error(const std::string& request_id, const char* what) {
  spdlog::error("http {} unexpected failure: {}", request_id, what);
  return error_response({500, "internal", "the server failed on this request; it was logged as " + request_id});
}

// The firewall of a backend callback: it runs on an actor's thread, where an exception
// would take the actor down; instead it becomes this request's 500.
template <class T>
std::function<void(outcome<T>)> firewalled(std::shared_ptr<responder> out, std::function<void(outcome<T>)> fn) {
  return [out = std::move(out), fn = std::move(fn)](outcome<T> result) {
    try {
      fn(std::move(result));
    } catch (const std::exception& e) {
      out->respond(internal_error(out->request_id(), e.what()));
    } catch (...) {
      out->respond(internal_error(out->request_id(), "unknown exception"));
    }
  };
}

template <class T, class Render>
std::function<void(outcome<T>)> reply_with(std::shared_ptr<responder> out, Render render,
                                           std::function<api_error(const messages::failure&)> to_error = to_api_error,
                                           error_fn on_error = error_response) {
  return firewalled<T>(out, [out, render, to_error, on_error](outcome<T> result) {
    if (auto* value = std::get_if<T>(&result)) {
      response r;
      r.body = render(*value);
      out->respond(std::move(r));
    } else {
      out->respond(on_error(to_error(std::get<messages::failure>(result))));
    }
  });
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
      try {
        bool first = open();
        out->stream_write(fmt.chunk(c, first));
      } catch (const std::exception& e) {
        spdlog::error("http {} unexpected failure writing a chunk: {}", out->request_id(), e.what());
      }
    },
    firewalled<messages::generate_reply>(out, [out, open, opened, fmt](outcome<messages::generate_reply> result) {
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
    }));
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

// Choice i of n: its own request id (id, id.1, id.2, ...: a cancel of id reaches them all)
// and, with a seed, seed + i, so that each choice is reproducible.
messages::generate_request choice_request(const openai::request& oreq, uint32_t i) {
  auto gen = oreq.gen;
  if (i > 0)
    gen.request_id += "." + std::to_string(i);
  if (gen.has_seed)
    gen.seed += i;
  return gen;
}

// A whole (not streamed) answer of n choices, n >= 1: n generations of one prompt, queued
// together. With the prefix cache they
// share the prompt's KV (the first computes its whole blocks, the others adopt them). A
// seed makes each choice reproducible: choice i samples with seed + i. The first failure
// answers the request; the rest are let run to their end (bounded by max_tokens).
void openai_choices(openai::endpoint kind, const openai::request& oreq, backend& svc,
                    std::shared_ptr<responder> out, int64_t created) {
  struct gathered {
    std::mutex mutex;
    std::vector<messages::generate_reply> replies;
    size_t left;
    bool answered = false;
  };
  auto all = std::make_shared<gathered>();
  all->replies.resize(oreq.n);
  all->left = oreq.n;
  for (uint32_t i = 0; i < oreq.n; ++i) {
    svc.generate(
        choice_request(oreq, i), {},
        firewalled<messages::generate_reply>(
            out, [all, i, out, kind, oreq, created](outcome<messages::generate_reply> result) {
              std::unique_lock<std::mutex> lock(all->mutex);
              if (all->answered)
                return;
              if (auto* reply = std::get_if<messages::generate_reply>(&result)) {
                all->replies[i] = std::move(*reply);
                if (--all->left > 0)
                  return;
                all->answered = true;
                lock.unlock();
                response r;
                r.body = openai::to_json(kind, oreq, all->replies, created);
                return out->respond(std::move(r));
              }
              all->answered = true;
              lock.unlock();
              out->respond(openai::error_response(
                  openai::to_api_error(std::get<messages::failure>(result))));
            }));
  }
}

// n > 1 choices streamed into one response: each chunk names its choice's index; each
// choice ends with its own finish_reason chunk, and the usage chunk and [DONE] come once
// all have ended. The first failure ends the stream (a plain error if nothing was sent).
void openai_stream_choices(openai::endpoint kind, const openai::request& oreq, backend& svc,
                           std::shared_ptr<responder> out, int64_t created) {
  struct shared_stream {
    std::mutex mutex;
    bool opened = false, ended = false;
    size_t left;
    std::vector<messages::generate_reply> replies;
    std::vector<openai::stream_position> offsets;
    std::vector<bool> started;
  };
  auto all = std::make_shared<shared_stream>();
  all->left = oreq.n;
  all->replies.resize(oreq.n);
  all->offsets.resize(oreq.n);
  all->started.resize(oreq.n, false);
  auto open = [all, out] {
    if (!all->opened) {
      all->opened = true;
      out->stream_open();
    }
  };
  for (uint32_t i = 0; i < oreq.n; ++i) {
    svc.generate(
        choice_request(oreq, i),
        [all, out, open, i, kind, oreq, created](messages::stream_chunk c) {
          try {
            std::lock_guard<std::mutex> lock(all->mutex);
            if (all->ended)
              return;
            open();
            const bool first = !all->started[i];
            all->started[i] = true;
            out->stream_write(
                openai::chunk_json(kind, oreq, c, first, created, all->offsets[i], i));
          } catch (const std::exception& e) {
            spdlog::error("http {} unexpected failure writing a chunk: {}", out->request_id(),
                          e.what());
          }
        },
        firewalled<messages::generate_reply>(out, [all, out, open, i, kind, oreq, created](
                                                      outcome<messages::generate_reply> result) {
          std::lock_guard<std::mutex> lock(all->mutex);
          if (all->ended)
            return;
          if (auto* reply = std::get_if<messages::generate_reply>(&result)) {
            open();
            out->stream_write(openai::choice_end_event(kind, oreq, *reply, created, i));
            all->replies[i] = std::move(*reply);
            if (--all->left > 0)
              return;
            all->ended = true;
            out->stream_write(openai::stream_end_events(kind, oreq, all->replies, created));
            return out->stream_close();
          }
          all->ended = true;
          auto err = openai::to_api_error(std::get<messages::failure>(result));
          if (!all->opened)
            return out->respond(openai::error_response(err));
          out->stream_write("data: " + openai::error_response(err).body + "\n\ndata: [DONE]\n\n");
          out->stream_close();
        }));
  }
}

void openai_generate(openai::endpoint kind, const request_view& req, backend& svc, const limits& lim,
                     std::shared_ptr<responder> out) {
  auto parsed = openai::parse(kind, req.body, lim);
  if (auto* e = std::get_if<api_error>(&parsed))
    return out->respond(openai::error_response(*e));
  auto oreq = std::get<openai::request>(std::move(parsed));
  oreq.gen.request_id = req.request_id;
  oreq.gen.client = client_label(lim, req.authorization);
  auto created = unix_now();
  if (oreq.gen.stream && oreq.n > 1)
    return openai_stream_choices(kind, oreq, svc, std::move(out), created);
  if (oreq.gen.stream) {
    sse_format fmt{[kind, oreq, created, pos = std::make_shared<openai::stream_position>()](
                       const messages::stream_chunk& c, bool first) {
                     return openai::chunk_json(kind, oreq, c, first, created, *pos);
                   },
                   [kind, oreq, created](const messages::generate_reply& r) {
                     return openai::final_events(kind, oreq, r, created);
                   },
                   [](const api_error& e) {
                     return "data: " + openai::error_response(e).body + "\n\ndata: [DONE]\n\n";
                   },
                   openai::to_api_error, openai::error_response};
    return generate_streaming(oreq.gen, svc, std::move(out), std::move(fmt));
  }
  openai_choices(kind, oreq, svc, std::move(out), created);
}

// --- The handlers: one per route, each reading its request and asking the backend. ---

struct call {
  const request_view& req;
  backend& svc;
  const limits& lim;
  std::shared_ptr<responder> out;
  std::string path;   // without the query
  std::string param;  // the {id} of a parameterised route
};

template <class T, class Parse>
std::optional<T> parsed_or_answer(const call& c, Parse parse) {
  auto parsed = parse();
  if (auto* e = std::get_if<api_error>(&parsed)) {
    c.out->respond(error_response(*e));
    return std::nullopt;
  }
  auto value = std::get<T>(std::move(parsed));
  value.request_id = c.req.request_id;
  return value;
}

void generate_lite(const call& c) {
  auto gen = parsed_or_answer<messages::generate_request>(c, [&] { return parse_generate(c.req.body, c.lim); });
  if (!gen)
    return;
  gen->client = client_label(c.lim, c.req.authorization);
  if (gen->stream)
    return generate_streaming(std::move(*gen), c.svc, c.out, lite_format());
  c.svc.generate(std::move(*gen), {}, reply_with<messages::generate_reply>(c.out));
}

void completions(const call& c) { openai_generate(openai::endpoint::completions, c.req, c.svc, c.lim, c.out); }
void chat_completions(const call& c) { openai_generate(openai::endpoint::chat, c.req, c.svc, c.lim, c.out); }

void models(const call& c) {
  c.svc.ask(messages::adapter_request{c.req.request_id, messages::adapter_action::list, "", ""},
            reply_with<messages::adapter_reply>(c.out, openai::models_json, openai::to_api_error,
                                                openai::error_response));
}

void model(const call& c) {
  auto out = c.out;
  auto id = c.param;
  c.svc.ask(
      messages::adapter_request{c.req.request_id, messages::adapter_action::list, "", ""},
      firewalled<messages::adapter_reply>(out, [out, id](outcome<messages::adapter_reply> r) {
        if (auto* list = std::get_if<messages::adapter_reply>(&r)) {
          if (auto body = openai::model_json(*list, id)) {
            response found;
            found.body = std::move(*body);
            return out->respond(std::move(found));
          }
          return out->respond(openai::error_response(
              {404, "model_not_found", "no model or adapter has the id '" + id + "'"}));
        }
        out->respond(openai::error_response(openai::to_api_error(std::get<messages::failure>(r))));
      }));
}

void tokenize(const call& c) {
  if (auto t = parsed_or_answer<messages::tokenize_request>(c, [&] { return parse_tokenize(c.req.body); }))
    c.svc.ask(std::move(*t), reply_with<messages::tokenize_reply>(c.out));
}

void detokenize(const call& c) {
  if (auto d = parsed_or_answer<messages::detokenize_request>(c, [&] { return parse_detokenize(c.req.body); }))
    c.svc.ask(std::move(*d), reply_with<messages::detokenize_reply>(c.out));
}

void train(const call& c) {
  auto t = parsed_or_answer<messages::train_request>(c, [&] { return parse_train(c.req.body); });
  if (!t)
    return;
  auto out = c.out;
  c.svc.ask(std::move(*t),
            firewalled<messages::job_status>(out, [out](outcome<messages::job_status> r) {
              if (auto* status = std::get_if<messages::job_status>(&r)) {
                response accepted;
                accepted.status = 202;
                accepted.body = to_json(*status);
                accepted.headers.emplace_back("Location", "/jobs/" + status->id);
                return out->respond(std::move(accepted));
              }
              out->respond(error_response(to_api_error(std::get<messages::failure>(r))));
            }));
}

void jobs(const call& c, messages::job_action action) {
  messages::job_request j;
  j.request_id = c.req.request_id;
  j.action = action;
  j.id = c.param;
  bool one = !j.id.empty();
  c.svc.ask(std::move(j), reply_with<messages::job_list>(c.out, [one](const messages::job_list& l) {
              return one && !l.jobs.empty() ? to_json(l.jobs.front()) : to_json(l);
            }));
}

void adapters(const call& c, messages::adapter_request a) {
  a.request_id = c.req.request_id;
  // Here the adapter is the resource asked for: one that is not there is a 404.
  auto to_error = [](const messages::failure& f) {
    auto e = to_api_error(f);
    if (f.code == messages::errc::adapter_not_found)
      e.status = 404;
    return e;
  };
  c.svc.ask(std::move(a),
            reply_with<messages::adapter_reply>(
                c.out, [](const messages::adapter_reply& r) { return to_json(r); }, to_error));
}

void adapters_load(const call& c) {
  auto a = parsed_or_answer<messages::adapter_request>(
    c, [&] { return parse_adapter_load(c.req.body); });
  if (a)
    adapters(c, std::move(*a));
}

void metrics(const call& c) {
  auto out = c.out;
  c.svc.health(firewalled<messages::health_report>(out, [out](outcome<messages::health_report> h) {
    if (auto* report = std::get_if<messages::health_report>(&h)) {
      response r;
      r.content_type = "text/plain; version=0.0.4; charset=utf-8";
      r.body = prometheus_text(*report);
      return out->respond(std::move(r));
    }
    out->respond(error_response(to_api_error(std::get<messages::failure>(h))));
  }));
}

void cleanup(const call& c) {
  if (auto r = parsed_or_answer<messages::cleanup_request>(c, [&] { return parse_cleanup(c.req.body); }))
    c.svc.ask(std::move(*r), reply_with<messages::cleanup_reply>(c.out));
}

void health(const call& c) { c.svc.health(reply_with<messages::health_report>(c.out)); }

// The web console: files compiled into the binary. They hold no secrets (the page asks
// for a key and keeps it in the tab's session storage), so they are open; the feed and
// every call the page makes need the same keys as the API. The policy lets the page
// reach this server only.
void console_file(const call& c, std::string_view name) {
  const auto* asset = find_console_asset(name);
  if (asset == nullptr)
    return c.out->respond(
        error_response({404, "not_found", "no console file " + std::string(name.substr(0, 64))}));
  response r;
  r.content_type = std::string(asset->content_type);
  r.body = std::string(asset->body);
  r.headers = {{"Content-Security-Policy",
                "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"},
               {"X-Content-Type-Options", "nosniff"},
               {"Cache-Control", "no-cache"}};
  c.out->respond(std::move(r));
}

void console_page(const call& c) {
  console_file(c, "index.html");
}

void console_feed(const call& c) {
  auto req = parse_console_query(c.req.target);
  if (auto* e = std::get_if<api_error>(&req))
    return c.out->respond(error_response(*e));
  c.svc.ask(std::get<messages::console_request>(req), reply_with<messages::console_feed>(c.out));
}

// --- The table: every request enters through it. ---

enum class access { open, api, admin };

struct route_entry {
  const char* method;  // matched exactly; HEAD is answered by a GET route, without its body
  const char* path;    // ends in "{id}": one path segment that the handler gets as `param`
  access level;
  bool worker_serves;  // a worker node answers it itself; the rest are its router's
  std::function<void(const call&)> handler;
};

const std::vector<route_entry>& table() {
  static const std::vector<route_entry> routes = {
      {"POST", "/generate-lite", access::api, false, generate_lite},
      {"POST", "/v1/completions", access::api, false, completions},
      {"POST", "/v1/chat/completions", access::api, false, chat_completions},
      {"GET", "/v1/models", access::api, false, models},
      {"GET", "/v1/models/{id}", access::api, false, model},
      {"POST", "/tokenize", access::api, false, tokenize},
      {"POST", "/detokenize", access::api, false, detokenize},
      {"GET", "/adapters", access::api, false,
       [](const call& c) {
         adapters(c, messages::adapter_request{c.req.request_id, messages::adapter_action::list, "",
                                               ""});
       }},
      {"POST", "/adapters", access::admin, false, adapters_load},
      {"POST", "/adapters/train", access::admin, false, train},
      {"DELETE", "/adapters/{id}", access::admin, false,
       [](const call& c) {
         adapters(c, messages::adapter_request{c.req.request_id, messages::adapter_action::unload,
                                               c.param, ""});
       }},
      {"GET", "/jobs", access::api, false,
       [](const call& c) { jobs(c, messages::job_action::list); }},
      {"GET", "/jobs/{id}", access::api, false,
       [](const call& c) { jobs(c, messages::job_action::get); }},
      {"DELETE", "/jobs/{id}", access::admin, false,
       [](const call& c) { jobs(c, messages::job_action::cancel); }},
      {"POST", "/cleanup-memory", access::admin, false, cleanup},
      {"GET", "/", access::open, false, console_page},
      {"GET", "/console", access::open, false, console_page},
      {"GET", "/console/assets/{id}", access::open, false,
       [](const call& c) { console_file(c, c.param); }},
      {"GET", "/console/feed", access::api, false, console_feed},
      {"GET", "/favicon.ico", access::open, false,
       [](const call& c) { console_file(c, "favicon.svg"); }},
      {"GET", "/health", access::open, true, health},
      {"GET", "/metrics", access::open, true, metrics},
  };
  return routes;
}

// The {id} of `path` when it fits `pattern`, or nullopt.
std::optional<std::string> match(const std::string& pattern, const std::string& path) {
  static const std::string id = "{id}";
  if (pattern.size() < id.size() || pattern.compare(pattern.size() - id.size(), id.size(), id) != 0)
    return pattern == path ? std::optional<std::string>("") : std::nullopt;
  auto prefix = pattern.substr(0, pattern.size() - id.size());
  if (path.size() <= prefix.size() || path.compare(0, prefix.size(), prefix) != 0)
    return std::nullopt;
  auto param = path.substr(prefix.size());
  if (param.find('/') != std::string::npos || param.size() > 256)
    return std::nullopt;
  return param;
}

void dispatch(const request_view& req, backend& svc, const limits& lim, const std::shared_ptr<responder>& out) {
  auto path = path_of(req.target);
  bool openai_path = path.rfind("/v1/", 0) == 0;
  auto respond = [&](const api_error& e) {
    out->respond(openai_path ? openai::error_response(e) : error_response(e));
  };
  // A HEAD is a GET whose body the server leaves out.
  const std::string method = req.method == "HEAD" ? "GET" : req.method;
  std::string allowed;
  for (const auto& r : table()) {
    auto param = match(r.path, path);
    if (!param)
      continue;
    if (method != r.method) {
      allowed += (allowed.empty() ? "" : ", ") + std::string(r.method);
      if (std::string(r.method) == "GET")
        allowed += ", HEAD";
      continue;
    }
    if (lim.health_only && !r.worker_serves)
      return respond({404, "not_found", "this node is a worker: " + path.substr(0, 256) + " is served by its router"});
    // /health and /metrics stay open: orchestrators and Prometheus probe them without keys.
    if (r.level != access::open)
      if (auto denied = check_access(lim, req.authorization, r.level == access::admin))
        return respond(*denied);
    return r.handler(call{req, svc, lim, out, path, *param});
  }
  if (lim.health_only)
    return respond({404, "not_found", "this node is a worker: " + path.substr(0, 256) + " is served by its router"});
  if (allowed.empty())
    return respond({404, "not_found", "no route for " + req.method.substr(0, 16) + " " + path.substr(0, 256)});
  api_error e{405, "method_not_allowed", req.method.substr(0, 16) + " is not allowed on " + path.substr(0, 256)
                                           + " (allowed: " + allowed + ")"};
  auto r = openai_path ? openai::error_response(e) : error_response(e);
  r.headers.emplace_back("Allow", allowed);
  out->respond(std::move(r));
}

}  // namespace

std::string route_label(const std::string& target) {
  auto path = path_of(target);
  for (const auto& r : table())
    if (match(r.path, path))
      return r.path;
  return "other";
}

void route(const request_view& req, backend& svc, const limits& lim, std::shared_ptr<responder> out) {
  // The firewall of every request: whatever a handler throws is this request's 500, and
  // the io thread, the connection and every other client go on.
  try {
    dispatch(req, svc, lim, out);
  } catch (const std::exception& e) {
    out->respond(internal_error(req.request_id, e.what()));
  } catch (...) {
    out->respond(internal_error(req.request_id, "unknown exception"));
  }
}

}  // namespace adapterd::http
