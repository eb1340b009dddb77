// adapterd-long-input PORT [ROUNDS]: how much a long input delays another client. A small
// generation is timed alone, then again while a 600 KB input is being handled on another
// connection: as a /tokenize, as a prompt refused for the context, and as a chat refused
// for the context. Prints the median added delay of each; the aim is at most 1 s.
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/http_client.hpp"
#include "bench/stats.hpp"

namespace {

using nlohmann::json;

double small_generation(adapterd::bench::http_client& c, const std::string& body) {
  auto r = c.call("POST", "/generate-lite", body);
  if (r.status != 200)
    throw std::runtime_error("small generation failed: " + std::to_string(r.status) + " " + r.error + r.body);
  return r.ms;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: adapterd-long-input PORT [ROUNDS]\n";
    return 2;
  }
  int rounds = argc > 2 ? std::atoi(argv[2]) : 5;
  if (rounds < 1 || rounds > 100) {
    std::cerr << "adapterd-long-input: ROUNDS must be 1 to 100\n";
    return 2;
  }
  const std::string big(600 * 1024, 'o');
  const std::string small = json{{"prompt", "hello"}, {"max_new_tokens", 8}, {"temperature", 0}}.dump();
  struct load {
    const char* name;
    const char* path;
    std::string body;
  };
  const std::vector<load> loads = {
    {"tokenize 600 KB", "/tokenize", json{{"text", big}}.dump()},
    {"prompt 600 KB", "/generate-lite", json{{"prompt", big}, {"max_new_tokens", 1}}.dump()},
    {"chat 600 KB", "/v1/chat/completions",
     json{{"messages", json::array({json{{"role", "user"}, {"content", big}}})}, {"max_tokens", 1}}.dump()},
  };
  try {
    adapterd::bench::http_client client("127.0.0.1", argv[1]);
    std::vector<double> alone;
    for (int i = 0; i < rounds + 2; ++i)
      alone.push_back(small_generation(client, small));
    auto base = adapterd::bench::median(alone);
    std::cout << "small generation alone: median " << base << " ms\n";
    for (const auto& l : loads) {
      std::vector<double> added, heavy_ms;
      unsigned heavy_status = 0;
      for (int i = 0; i < rounds; ++i) {
        adapterd::bench::http_client heavy("127.0.0.1", argv[1]);
        std::thread t([&] {
          auto r = heavy.call("POST", l.path, l.body);
          heavy_status = r.status;
          heavy_ms.push_back(r.ms);
        });
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the long input is in
        added.push_back(small_generation(client, small) - base);
        t.join();
      }
      std::cout << l.name << " (HTTP " << heavy_status << ", median " << adapterd::bench::median(heavy_ms)
                << " ms): a concurrent small generation is delayed by median " << adapterd::bench::median(added)
                << " ms, worst " << *std::max_element(added.begin(), added.end()) << " ms\n";
    }
  } catch (const std::exception& e) {
    std::cerr << "adapterd-long-input: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
