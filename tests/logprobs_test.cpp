// Logprobs: log softmax of the logits a token was drawn from, and teacher-forced ones for a
// prompt, against a recomputation from base_model::logits.
#include <cmath>
#include <limits>

#include <catch2/catch.hpp>

#include "model/base_model.hpp"
#include "model/llama/logprobs.hpp"
#include "tests/fixtures.hpp"
#include "tests/model_helpers.hpp"

using namespace adapterd::model;
using adapterd::test::fixtures_dir;

namespace {

// log softmax of row `row` of [*, vocab] logits, at `id`, the plain way.
double reference_logprob(const std::vector<float>& logits, size_t vocab, size_t row, int32_t id) {
  double total = 0;
  for (size_t i = 0; i < vocab; ++i)
    total += std::exp(static_cast<double>(logits[row * vocab + i]));
  return logits[row * vocab + static_cast<size_t>(id)] - std::log(total);
}

}  // namespace

TEST_CASE("logprob_of is log softmax, with the likeliest tokens in order", "[logprobs]") {
  const std::vector<float> logits{1.0f, 3.0f, 2.0f, 3.0f, -std::numeric_limits<float>::infinity()};
  auto t = logprob_of(logits.data(), logits.size(), 2, 3);
  const double total = std::exp(1.0) + 2 * std::exp(3.0) + std::exp(2.0);
  CHECK(t.id == 2);
  CHECK(t.logprob == Approx(2.0 - std::log(total)));
  REQUIRE(t.top.size() == 3);
  CHECK(t.top[0].first == 1);  // a tie: the lower id first
  CHECK(t.top[1].first == 3);
  CHECK(t.top[2].first == 2);
  CHECK(t.top[0].second == Approx(3.0 - std::log(total)));
  CHECK(logprob_of(logits.data(), logits.size(), 4, 0).logprob
        == -std::numeric_limits<float>::infinity());
  CHECK(logprob_of(logits.data(), logits.size(), 0, 99).top.size() == logits.size());
}

TEST_CASE("a generation's logprobs are those of the logits it sampled from", "[logprobs][model]") {
  ADAPTERD_SKIP_WITHOUT_FIXTURES();
  auto model = base_model::load(fixtures_dir() + "/llama/model", load_options{"cpu", 0, "float32"});
  REQUIRE(model);
  const auto vocab = static_cast<size_t>((*model)->config().vocab_size);
  auto prompt = (*model)->tok().encode("Logprobs are read from the logits", true);
  for (double temperature : {0.0, 0.7}) {
    auto p = adapterd::test::greedy(6);
    p.sampling.temperature = temperature;
    p.sampling.seed = 11;
    p.logprobs = 2;
    p.prompt_logprobs = true;
    p.ignore_eos = true;
    auto out = (*model)->generate_ids(prompt, p, nullptr);
    REQUIRE(out);
    REQUIRE(out->logprobs.size() == out->output_ids.size());
    REQUIRE(out->prompt_logprobs.size() == prompt.size() - 1);
    // Teacher-forced logits over prompt and output: row i predicts token i + 1.
    auto ids = prompt;
    ids.insert(ids.end(), out->output_ids.begin(), out->output_ids.end());
    auto logits = (*model)->logits(ids, nullptr, false);
    REQUIRE(logits);
    const double scale = temperature > 0 ? 1.0 / temperature : 1.0;
    for (size_t i = 0; i < out->output_ids.size(); ++i) {
      const size_t row = prompt.size() - 1 + i;
      std::vector<float> scaled(logits->begin() + static_cast<std::ptrdiff_t>(row * vocab),
                                logits->begin() + static_cast<std::ptrdiff_t>((row + 1) * vocab));
      for (auto& l : scaled)
        l = static_cast<float>(l * scale);
      const auto& t = out->logprobs[i];
      CHECK(t.id == out->output_ids[i]);
      CHECK(t.logprob == Approx(reference_logprob(scaled, vocab, 0, t.id)).margin(1e-3));
      REQUIRE(t.top.size() == 2);
      CHECK(t.top[0].second >= t.top[1].second);
      if (temperature == 0)
        CHECK(t.top[0].first == t.id);  // greedy takes the likeliest
    }
    for (size_t i = 0; i < out->prompt_logprobs.size(); ++i) {
      const auto& t = out->prompt_logprobs[i];
      CHECK(t.id == prompt[i + 1]);
      CHECK(t.logprob == Approx(reference_logprob(*logits, vocab, i, t.id)).margin(1e-3));
    }
  }
}
