// Every route's request decoding: the first byte picks a route (and method), the rest is
// the body. Whatever the bytes, the route answers exactly once and never with a 5xx.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "http/routes.hpp"

using namespace adapterd;

namespace {

struct answering_backend final : http::backend {
  void generate(messages::generate_request, std::function<void(messages::stream_chunk)> chunk,
                std::function<void(http::outcome<messages::generate_reply>)> done) override {
    if (chunk)
      chunk(messages::stream_chunk{});
    done(messages::generate_reply{});
  }
  void cancel(std::string) override {}
  void health(std::function<void(http::outcome<messages::health_report>)> done) override {
    done(messages::health_report{});
  }
  void call(http::api_call c) override {
    std::visit([](auto& pending) { pending.done(http::reply_of<decltype(pending.request)>{}); }, c);
  }
};

struct counting_responder final : http::responder {
  int answers = 0;
  unsigned status = 0;
  void respond(http::response r) override {
    ++answers;
    status = r.status;
  }
  void stream_open() override { status = 200; }
  void stream_write(std::string) override {}
  void stream_close() override { ++answers; }
  std::string request_id() const override { return "fuzz"; }
};

const char* const routes[][2] = {
  {"POST", "/generate-lite"}, {"POST", "/v1/completions"}, {"POST", "/v1/chat/completions"},
  {"POST", "/tokenize"},      {"POST", "/detokenize"},     {"POST", "/adapters"},
  {"POST", "/adapters/train"}, {"POST", "/cleanup-memory"}, {"GET", "/v1/models"},
  {"DELETE", "/adapters/x"},  {"GET", "/jobs/x"},          {"GET", "/health"},
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0)
    return 0;
  const auto& r = routes[data[0] % (sizeof routes / sizeof routes[0])];
  answering_backend svc;
  auto out = std::make_shared<counting_responder>();
  http::request_view req{r[0], r[1], std::string(reinterpret_cast<const char*>(data) + 1, size - 1), "fuzz", ""};
  http::route(req, svc, http::limits{}, out);
  if (out->answers != 1 || out->status >= 500)
    std::abort();
  return 0;
}
