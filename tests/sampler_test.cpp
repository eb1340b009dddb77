// Sampling with Hugging Face's semantics: processors in its order, seeded determinism.
#include <map>

#include <catch2/catch.hpp>

#include "model/llama/sampler.hpp"

using namespace adapterd::model;

namespace {

std::map<int32_t, int> draw_counts(sampling_params p, std::vector<float> logits, int n) {
  sampler s(p);
  std::map<int32_t, int> counts;
  for (int i = 0; i < n; ++i) {
    auto copy = logits;
    ++counts[s.next(copy, {}, {})];
  }
  return counts;
}

}  // namespace

TEST_CASE("temperature 0 is argmax", "[sampler]") {
  sampler s(sampling_params{});
  std::vector<float> logits{0.1f, 3.0f, 2.9f};
  CHECK(s.next(logits, {}, {}) == 1);
}

TEST_CASE("repetition penalty divides positive and multiplies negative logits", "[sampler]") {
  sampling_params p;
  p.repetition_penalty = 2.0;
  sampler s(p);
  std::vector<float> logits{4.0f, -1.0f, 3.0f};
  CHECK(s.next(logits, {0, 1}, {}) == 2);  // 4 -> 2 falls below 3
  CHECK(logits[0] == 2.0f);
  CHECK(logits[1] == -2.0f);
  CHECK(logits[2] == 3.0f);
}

TEST_CASE("top-k and top-p keep only the head of the distribution", "[sampler]") {
  std::vector<float> logits{2.0f, 1.0f, 0.5f, -3.0f};
  sampling_params p;
  p.temperature = 1.0;
  p.seed = 1;
  p.top_k = 2;
  auto k = draw_counts(p, logits, 2000);
  CHECK(k.size() == 2);
  CHECK(k.count(0) == 1);
  CHECK(k.count(1) == 1);
  // softmax(2, 1) = 0.731 / 0.269: the draw follows it.
  CHECK(k[0] > 1300);
  CHECK(k[0] < 1600);

  p.top_k = 0;
  p.top_p = 0.5;  // the top token alone already holds ~0.6 of the mass
  auto top = draw_counts(p, logits, 500);
  CHECK(top.size() == 1);
  CHECK(top.count(0) == 1);

  p.top_p = 0.7;  // needs the first two tokens (0.61 + 0.22)
  auto two = draw_counts(p, logits, 2000);
  CHECK(two.size() == 2);
}

TEST_CASE("a low temperature sharpens, a seed repeats", "[sampler]") {
  std::vector<float> logits{1.0f, 0.9f, 0.8f};
  sampling_params p;
  p.temperature = 0.05;
  p.seed = 3;
  auto sharp = draw_counts(p, logits, 300);
  CHECK(sharp[0] > 250);
  p.temperature = 1.0;
  std::vector<int32_t> a, b;
  sampler s1(p), s2(p);
  for (int i = 0; i < 50; ++i) {
    auto l1 = logits, l2 = logits;
    a.push_back(s1.next(l1, {}, {}));
    b.push_back(s2.next(l2, {}, {}));
  }
  CHECK(a == b);
}

TEST_CASE("sampling values Hugging Face would refuse are errors", "[sampler]") {
  auto bad = [](auto edit) {
    sampling_params p;
    edit(p);
    return validate(p, 1000).has_value();
  };
  CHECK(bad([](sampling_params& p) { p.temperature = -1; }));
  CHECK(bad([](sampling_params& p) { p.top_p = 0; }));
  CHECK(bad([](sampling_params& p) { p.top_p = 1.5; }));
  CHECK(bad([](sampling_params& p) { p.top_k = -2; }));
  CHECK(bad([](sampling_params& p) { p.repetition_penalty = 0; }));
  CHECK_FALSE(bad([](sampling_params&) {}));
}

TEST_CASE("presence and frequency penalties count the output so far, as OpenAI defines them",
          "[sampler]") {
  sampling_params p;
  p.presence_penalty = 0.5;
  p.frequency_penalty = 0.25;
  sampler s(p);
  // token 1 output twice, token 2 once; token 0 only in the prompt (not penalised)
  std::vector<float> logits{1.0f, 3.0f, 2.0f, 0.0f};
  const std::vector<int32_t> history{0, 0, 1, 2, 1}, output{1, 2, 1};
  s.next(logits, history, output);
  CHECK(logits[0] == 1.0f);
  CHECK(logits[1] == Approx(3.0 - 2 * 0.25 - 0.5));
  CHECK(logits[2] == Approx(2.0 - 1 * 0.25 - 0.5));
  CHECK(logits[3] == 0.0f);
  // greedy picks from the penalised logits: with a larger penalty the repeated token loses
  p.frequency_penalty = 2;
  p.presence_penalty = 2;
  sampler strong(p);
  std::vector<float> again{1.0f, 3.0f, 2.0f, 0.0f};
  CHECK(strong.next(again, history, output) == 0);
}

TEST_CASE("logit_bias is added before the choice; -100 bans a token, +100 all but forces it",
          "[sampler]") {
  sampling_params p;
  p.logit_bias = {{1, -100.0f}, {3, 5.0f}};
  sampler greedy(p);
  std::vector<float> logits{0.5f, 9.0f, 2.0f, 0.0f};
  CHECK(greedy.next(logits, {}, {}) == 3);
  CHECK(logits[3] == 5.0f);
  p.temperature = 1.0;
  p.seed = 3;
  p.logit_bias = {{2, 100.0f}};
  auto counts = draw_counts(p, {0.5f, 9.0f, 2.0f, 0.0f}, 200);
  CHECK(counts[2] == 200);
}

TEST_CASE(
    "penalties and biases out of OpenAI's ranges, or on tokens outside the vocabulary, are errors",
    "[sampler]") {
  sampling_params p;
  p.presence_penalty = 2.5;
  CHECK(validate(p, 10).has_value());
  p = {};
  p.frequency_penalty = -3;
  CHECK(validate(p, 10).has_value());
  p = {};
  p.logit_bias = {{10, 1.0f}};
  CHECK(validate(p, 10).has_value());
  p.logit_bias = {{9, 101.0f}};
  CHECK(validate(p, 10).has_value());
  p.logit_bias = {{9, -100.0f}};
  CHECK_FALSE(validate(p, 10).has_value());
}
