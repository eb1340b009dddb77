// adapterd-ab: the same request sent alternately to two servers (A, B) on this machine,
// so that both see the same noise; prints each one's median and p90 and the ratio B/A.
#include <iostream>

#include <nlohmann/json.hpp>

#include "bench/http_client.hpp"
#include "bench/stats.hpp"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: adapterd-ab PORT_A PORT_B [ROUNDS] [MAX_NEW_TOKENS] [PROMPT]\n";
    return 2;
  }
  int rounds = 200, tokens = 32;
  try {
    if (argc > 3)
      rounds = std::stoi(argv[3]);
    if (argc > 4)
      tokens = std::stoi(argv[4]);
  } catch (const std::exception&) {
    std::cerr << "adapterd-ab: ROUNDS and MAX_NEW_TOKENS must be integers\n";
    return 2;
  }
  if (rounds < 1 || tokens < 1) {
    std::cerr << "adapterd-ab: ROUNDS and MAX_NEW_TOKENS must be positive\n";
    return 2;
  }
  std::string prompt = argc > 5 ? argv[5] : "Once upon a time";
  auto body = nlohmann::json{{"prompt", prompt}, {"max_new_tokens", tokens}, {"temperature", 0}}.dump();
  adapterd::bench::http_client a("127.0.0.1", argv[1]), b("127.0.0.1", argv[2]);
  std::vector<double> ta, tb;
  for (int i = 0; i < rounds + 5; ++i) {
    // Alternate which goes first, so neither always follows the other.
    auto first = i % 2 == 0;
    auto ra = first ? a.call("POST", "/generate-lite", body) : adapterd::bench::http_result{};
    auto rb = b.call("POST", "/generate-lite", body);
    if (!first)
      ra = a.call("POST", "/generate-lite", body);
    if (ra.status != 200 || rb.status != 200) {
      std::cerr << "adapterd-ab: a request failed: " << ra.status << " " << ra.error << " / " << rb.status
                << " " << rb.error << "\n";
      return 1;
    }
    if (i >= 5) {  // the first rounds warm both up
      ta.push_back(ra.ms);
      tb.push_back(rb.ms);
    }
  }
  using adapterd::bench::median;
  using adapterd::bench::percentile;
  std::cout << "A (port " << argv[1] << "): median " << median(ta) << " ms, p90 " << percentile(ta, 90) << " ms\n"
            << "B (port " << argv[2] << "): median " << median(tb) << " ms, p90 " << percentile(tb, 90) << " ms\n"
            << "B/A median ratio: " << median(tb) / median(ta) << " (" << rounds << " rounds, " << tokens
            << " new tokens)\n";
  return 0;
}
