#pragma once
// What the HTTP layer needs from the rest of the service, and what it hands back to
// Beast: no actors and no torch on this side of the line.
#include <functional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

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
  virtual void cleanup(messages::cleanup_request req,
                       std::function<void(outcome<messages::cleanup_reply>)> done) = 0;
  virtual void health(std::function<void(outcome<messages::health_report>)> done) = 0;
  virtual void tokenize(messages::tokenize_request req,
                        std::function<void(outcome<messages::tokenize_reply>)> done) = 0;
  virtual void detokenize(messages::detokenize_request req,
                          std::function<void(outcome<messages::detokenize_reply>)> done) = 0;
  /// List, load or unload adapters.
  virtual void adapters(messages::adapter_request req,
                        std::function<void(outcome<messages::adapter_reply>)> done) = 0;
  /// Queue a LoRA training job; list, get or cancel jobs.
  virtual void train(messages::train_request req, std::function<void(outcome<messages::job_status>)> done) = 0;
  virtual void jobs(messages::job_request req, std::function<void(outcome<messages::job_list>)> done) = 0;
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
