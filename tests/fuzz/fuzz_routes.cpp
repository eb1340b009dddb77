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
  void cleanup(messages::cleanup_request, std::function<void(http::outcome<messages::cleanup_reply>)> done) override {
    done(messages::cleanup_reply{});
  }
  void health(std::function<void(http::outcome<messages::health_report>)> done) override {
    done(messages::health_report{});
  }
  void tokenize(messages::tokenize_request, std::function<void(http::outcome<messages::tokenize_reply>)> done) override {
    done(messages::tokenize_reply{});
  }
  void detokenize(messages::detokenize_request,
                  std::function<void(http::outcome<messages::detokenize_reply>)> done) override {
    done(messages::detokenize_reply{});
  }
  void adapters(messages::adapter_request, std::function<void(http::outcome<messages::adapter_reply>)> done) override {
    done(messages::adapter_reply{});
  }
  void train(messages::train_request, std::function<void(http::outcome<messages::job_status>)> done) override {
    done(messages::job_status{});
  }
  void jobs(messages::job_request, std::function<void(http::outcome<messages::job_list>)> done) override {
    done(messages::job_list{});
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
