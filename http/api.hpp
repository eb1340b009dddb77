#pragma once
// What the HTTP layer needs from the rest of the service, and what it hands back to
// Beast: no actors and no torch on this side of the line.
#include <functional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "messages/calls.hpp"
#include "messages/catalog.hpp"
#include "messages/errors.hpp"
#include "messages/generation.hpp"
#include "messages/health.hpp"
#include "messages/memory.hpp"
#include "messages/training.hpp"

namespace adapterd::http {

template <class T>
using outcome = std::variant<T, messages::failure>;

struct response {
  unsigned status = 200;  // see messages::errc for the statuses of errors
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
};

using respond_fn = std::function<void(response)>;

template <class Request>
using reply_of = typename messages::call_traits<Request>::reply;

/// One call in flight: its request, and what to do with the answer or the failure.
template <class Request>
struct pending_call {
  Request request;
  std::function<void(outcome<reply_of<Request>>)> done;
};

template <class List>
struct pending_calls;
template <class... Requests>
struct pending_calls<messages::call_list<Requests...>> {
  using type = std::variant<pending_call<Requests>...>;
};

/// The envelope: any call of messages::api_calls.
using api_call = typename pending_calls<messages::api_calls>::type;

/// How a request is answered: once with a whole response, or as a stream of Server-Sent
/// Events (open, write..., close). Callable from any thread; calls after the request was
/// answered (the client went away, or its deadline passed) are ignored.
class responder {
public:
  virtual ~responder() = default;
  virtual void respond(response r) = 0;
  /// 200 with Content-Type text/event-stream, chunked.
  virtual void stream_open() = 0;
  virtual void stream_write(std::string data) = 0;
  virtual void stream_close() = 0;
  /// The server-made id of the request this answers, for log lines.
  virtual std::string request_id() const = 0;
};

/// Implemented by the http actor. Callbacks may run on any thread; `done` exactly once,
/// after every `on_chunk` (set only for streaming requests).
class backend {
public:
  virtual ~backend() = default;
  virtual void generate(messages::generate_request req,
                        std::function<void(messages::stream_chunk)> on_chunk,
                        std::function<void(outcome<messages::generate_reply>)> done) = 0;
  /// The client of `request_id` went away or gave up: stop working on it.
  virtual void cancel(std::string request_id) = 0;
  virtual void health(std::function<void(outcome<messages::health_report>)> done) = 0;
  /// Any other call: the envelope goes to the request's owning service.
  virtual void call(api_call c) = 0;

  template <class Request>
  void ask(Request req, std::function<void(outcome<reply_of<Request>>)> done) {
    call(api_call{pending_call<Request>{std::move(req), std::move(done)}});
  }
};

struct limits {
  uint32_t max_new_tokens = 512;
  size_t max_body_bytes = 1 << 20;
  unsigned request_timeout_s = 600;  // longest a client waits for its answer
  bool health_only = false;          // a worker node: /health and /metrics only; its router serves the API
  // API keys ("Authorization: Bearer KEY"). None: open. Admin routes (cleanup, adapter
  // load/unload) need an admin key; an admin key is also an API key.
  std::vector<std::string> api_keys;
  std::vector<std::string> admin_keys;
};

}  // namespace adapterd::http
