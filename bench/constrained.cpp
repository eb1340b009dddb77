// adapterd-constrained MODEL_DIR [ROUNDS] [TOKENIZER_DIR...]: what structured outputs cost
// per token. Part 1 decodes a batch of 16 on the model, free and under a JSON schema, the
// two taking turns round by round so that the host's noise falls on both; only decode
// steps are timed (a finished constrained row is replaced between steps, outside the
// clock), and the ratio of the medians is printed. Part 2 times the constraint's own work
// per token (mask lookup or trie walk, applying it to the logits, feeding the token) on
// real vocabularies, the fixtures' tokenizers, which the tiny bench models do not have.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "bench/stats.hpp"
#include "model/base_model.hpp"
#include "model/grammar/token_masks.hpp"

using namespace adapterd::model;
using clock_type = std::chrono::steady_clock;

namespace {

// Records with a short string, an integer and a boolean, without an end: every row stays
// constrained for the whole run, through keys, numbers, strings and punctuation.
const char* records_schema = R"({"type": "array", "items": {"type": "object", "properties": {
  "id": {"type": "integer"}, "name": {"type": "string", "maxLength": 6}, "ok": {"type": "boolean"}},
  "required": ["id", "name", "ok"], "additionalProperties": false}})";

constexpr int batch = 16, steps = 24;

std::unique_ptr<generation> start(const base_model& m, const std::vector<int32_t>& prompt,
                                  std::shared_ptr<json_constraint> constraint, uint64_t seed) {
  generation_params p;
  p.max_new_tokens = 100000;
  p.ignore_eos = true;
  p.sampling.temperature = 1.0;
  p.sampling.seed = seed;
  p.constraint = std::move(constraint);
  auto g = m.begin(prompt, p, nullptr);
  if (!g)
    throw std::runtime_error(g.err().message);
  return std::move(*g);
}

// Seconds per decode step of a batch of 16, rows replaced as they finish.
double step_seconds(const base_model& m, const std::vector<int32_t>& prompt,
                    const std::shared_ptr<json_constraint>& constraint, uint64_t seed) {
  std::vector<std::unique_ptr<generation>> gens;
  for (int i = 0; i < batch; ++i)
    gens.push_back(start(m, prompt, constraint, seed + static_cast<uint64_t>(i)));
  double seconds = 0;
  for (int s = 0; s < steps; ++s) {
    for (auto& g : gens)
      if (g->finished())
        g = start(m, prompt, constraint, seed += batch);
    std::vector<generation*> rows;
    for (auto& g : gens)
      rows.push_back(g.get());
    auto t0 = clock_type::now();
    if (auto e = m.step(rows))
      throw std::runtime_error(e->message);
    seconds += std::chrono::duration<double>(clock_type::now() - t0).count();
  }
  return seconds / steps;
}

// Microseconds of the constraint's own work per token over a vocabulary: random walks
// through the records schema as 16 rows would take them.
void vocabulary_cost(const std::string& dir) {
  auto tok = tokenizer::load(dir);
  if (!tok) {
    std::cerr << "adapterd-constrained: " << tok.err().message << "\n";
    return;
  }
  const size_t vocab = (*tok)->vocab_size();
  auto t0 = clock_type::now();
  constraint_cache cache(*tok, vocab);
  auto c = cache.get(records_schema);
  if (!c)
    return;
  const double build_ms = std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
  std::vector<float> logits(vocab);
  // Twice over the same walks: the first pass meets every state for the first time (a
  // trie walk each), the second finds them cached, as a server does once a schema is warm.
  double per_token[2];
  for (int pass = 0; pass < 2; ++pass) {
    std::mt19937 rng(5);
    size_t tokens = 0;
    double seconds = 0;
    for (int row = 0; row < batch; ++row) {
      auto m = (*c)->start();
      for (int s = 0; s < 64; ++s) {
        for (auto& l : logits)
          l = static_cast<float>(rng() % 1000) / 100.0f;
        auto t = clock_type::now();
        (*c)->allowed(m)->apply(logits.data(), vocab);
        seconds += std::chrono::duration<double>(clock_type::now() - t).count();
        // the likeliest allowed token, as a sampler would mostly take (its own cost, not timed)
        const auto id =
            static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
        t = clock_type::now();
        m.feed((*c)->bytes(id));
        seconds += std::chrono::duration<double>(clock_type::now() - t).count();
        ++tokens;
      }
    }
    per_token[pass] = 1e6 * seconds / static_cast<double>(tokens);
  }
  std::printf(
      "%-44s vocab %7zu  trie + schema %6.1f ms once  per token: %8.1f us cold, %6.1f us warm\n",
      dir.c_str(), vocab, build_ms, per_token[0], per_token[1]);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: adapterd-constrained MODEL_DIR [ROUNDS] [TOKENIZER_DIR...]\n";
    return 2;
  }
  int rounds = 5;
  std::vector<std::string> vocabularies;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (i == 2 && !a.empty() && std::isdigit(static_cast<unsigned char>(a[0])))
      rounds = std::clamp(std::atoi(a.c_str()), 1, 50);
    else
      vocabularies.push_back(a);
  }
  try {
    load_options o;
    o.device = "cpu";
    auto m = base_model::load(argv[1], o);
    if (!m)
      throw std::runtime_error(m.err().message);
    auto constraint = (*m)->json_constraint_for(records_schema);
    if (!constraint)
      throw std::runtime_error(constraint.err().message);
    const auto prompt = (*m)->tok().encode("Records as JSON:", true);
    step_seconds(**m, prompt, nullptr, 1);  // warm
    std::vector<double> free_s, constrained_s;
    for (int r = 0; r < rounds; ++r) {
      free_s.push_back(step_seconds(**m, prompt, nullptr, 1000 * r));
      constrained_s.push_back(step_seconds(**m, prompt, *constraint, 1000 * r));
    }
    const double f = adapterd::bench::median(free_s), c = adapterd::bench::median(constrained_s);
    std::printf("model %s, batch %d, %d decode steps x %d rounds\n", argv[1], batch, steps, rounds);
    std::printf("free        %8.2f ms per step  %8.1f tokens/s\n", 1e3 * f, batch / f);
    std::printf("constrained %8.2f ms per step  %8.1f tokens/s\n", 1e3 * c, batch / c);
    std::printf("cost per token: %+.1f %%\n", 100 * (c / f - 1));
    for (const auto& dir : vocabularies)
      vocabulary_cost(dir);
  } catch (const std::exception& e) {
    std::cerr << "adapterd-constrained: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
