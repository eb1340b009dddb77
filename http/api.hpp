#pragma once
// What the HTTP layer needs from the rest of the service, and what it hands back to
// Beast: no actors and no torch on this side of the line.
#include <functional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "messages/errors.hpp"
#include "messages/generation.hpp"
#include "messages/health.hpp"
#include "messages/memory.hpp"

namespace adapterd::http {

template <class T>
using outcome = std::variant<T, messages::failure>;

struct response {
  unsigned status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
};

using respond_fn = std::function<void(response)>;

/// Implemented by the http actor. Callbacks may run on any thread, exactly once.
class backend {
public:
  virtual ~backend() = default;
  virtual void generate(messages::generate_request req,
                        std::function<void(outcome<messages::generate_reply>)> done) = 0;
  virtual void cleanup(messages::cleanup_request req,
                       std::function<void(outcome<messages::cleanup_reply>)> done) = 0;
  virtual void health(std::function<void(outcome<messages::health_report>)> done) = 0;
};

struct limits {
  uint32_t max_new_tokens = 512;
  size_t max_body_bytes = 1 << 20;
  unsigned request_timeout_s = 600;  // longest a client waits for its answer
};

}  // namespace adapterd::http
