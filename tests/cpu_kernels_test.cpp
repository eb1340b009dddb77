// The decode kernels: right against a double-precision loop, and each row's result the
// same bit for bit whatever the number of rows beside it (batch invariance).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>
#include <tuple>
#include <utility>
#include <vector>

#include "model/base_model.hpp"
#include "model/io/tiny_model.hpp"
#include "model/llama/cpu_kernels.hpp"
#include "model/llama/lane_sums.hpp"
#include "model/llama/vector_exp.hpp"

using namespace adapterd::model;

namespace {

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> v(n);
  for (auto& x : v)
    x = u(rng);
  return v;
}

}  // namespace

TEST_CASE("dense_rows matches a double-precision product, odd sizes included", "[kernels]") {
  if (!cpu::kernels_available())
    return;  // libtorch serves such a CPU
  for (size_t k : {1u, 7u, 8u, 61u, 256u}) {
    const size_t n = 13, rows = 5;
    auto w = random_floats(n * k, 1), x = random_floats(rows * k, 2), bias = random_floats(n, 3);
    std::vector<float> y(rows * n);
    cpu::dense_rows(x.data(), rows, k, w.data(), k, bias.data(), y.data(), n, 0, n);
    for (size_t r = 0; r < rows; ++r)
      for (size_t j = 0; j < n; ++j) {
        double ref = bias[j];
        for (size_t i = 0; i < k; ++i)
          ref += static_cast<double>(w[j * k + i]) * x[r * k + i];
        CHECK(std::fabs(y[r * n + j] - ref) < 1e-4 * (1 + std::sqrt(static_cast<double>(k))));
      }
  }
}

TEST_CASE("dense_rows gives a row the same bits alone, in any batch and any split", "[kernels]") {
  if (!cpu::kernels_available())
    return;
  // k = 1300: several spans of the many-row tiles and a tail; 21 rows: tiles of 8, 8 and 5;
  // k = 1024, no tail: outputs summed sixteen at a time; 70 rows: two passes, the second
  // of 6 rows (cpu::rows_per_pass)
  const auto [k, n, rows] = GENERATE(std::make_tuple(size_t(300), size_t(37), size_t(16)),
                                     std::make_tuple(size_t(1300), size_t(50), size_t(21)),
                                     std::make_tuple(size_t(1024), size_t(40), size_t(13)),
                                     std::make_tuple(size_t(528), size_t(24), size_t(70)));
  auto w = random_floats(n * k, 4), x = random_floats(rows * k, 5);
  std::vector<float> all(rows * n);
  cpu::dense_rows(x.data(), rows, k, w.data(), k, nullptr, all.data(), n, 0, n);
  for (size_t r = 0; r < rows; ++r) {
    std::vector<float> alone(n);
    cpu::dense_rows(x.data() + r * k, 1, k, w.data(), k, nullptr, alone.data(), n, 0, 5);
    cpu::dense_rows(x.data() + r * k, 1, k, w.data(), k, nullptr, alone.data(), n, 5, n);  // another split
    CHECK(std::memcmp(alone.data(), all.data() + r * n, n * sizeof(float)) == 0);
  }
  for (size_t first = 0; first + 3 <= rows; first += 3) {  // a batch of 3 from the middle
    std::vector<float> three(3 * n);
    cpu::dense_rows(x.data() + first * k, 3, k, w.data(), k, nullptr, three.data(), n, 0, n);
    CHECK(std::memcmp(three.data(), all.data() + first * n, 3 * n * sizeof(float)) == 0);
  }
}

TEST_CASE("rows packed once (pack_rows) give dense_rows' bits, split between callers",
          "[kernels]") {
  const size_t k = 1040, n = 48;  // 48 outputs: three 16-row blocks, shared out unevenly
  for (size_t rows : {size_t(5), size_t(16), size_t(70)}) {
    auto w = random_floats(n * k, 6), x = random_floats(rows * k, 7);
    std::vector<float> plain(rows * n), packed_out(rows * n);
    cpu::dense_rows(x.data(), rows, k, w.data(), k, nullptr, plain.data(), n, 0, n);
    const size_t floats = cpu::packed_floats(rows, k);
    if (floats == 0)
      continue;  // no AVX-512: dense_rows reads the rows as given
    std::vector<cpu::lanes16> packed(floats / 16);
    cpu::pack_rows(x.data(), rows, k, k, packed.data()->lane);
    for (auto [begin, end] : {std::pair<size_t, size_t>{0, 16}, {16, 40}, {40, 48}})
      cpu::dense_rows_packed(x.data(), packed.data()->lane, rows, k, w.data(), k, nullptr,
                             packed_out.data(), n, begin, end);
    CHECK(std::memcmp(plain.data(), packed_out.data(), plain.size() * sizeof(float)) == 0);
  }
}

TEST_CASE("rms_norm_row and silu_mul", "[kernels]") {
  std::vector<float> x{1, -2, 3, -4}, weight{1, 1, 2, 0.5f}, out(4);
  cpu::rms_norm_row(x.data(), weight.data(), 4, 1e-6, out.data());
  const double rms = std::sqrt((1 + 4 + 9 + 16) / 4.0 + 1e-6);
  CHECK(out[2] == Approx(2 * 3 / rms));
  CHECK(out[3] == Approx(0.5 * -4 / rms));
  std::vector<float> gate{0, 1, -1}, up{2, 2, 2};
  cpu::silu_mul(gate.data(), up.data(), 3);
  CHECK(gate[0] == Approx(0));
  CHECK(gate[1] == Approx(2 / (1 + std::exp(-1.0))));
  CHECK(gate[2] == Approx(-2 / (1 + std::exp(1.0))));
}

TEST_CASE(
    "attention weights of a long prompt hold no denormals and keep every normal weight's bits",
    "[kernels]") {
  // Scores spread over 120 units, as a sharp head's over a long prompt: plain exp and divide
  // make weights under FLT_MIN, which slow every multiply-add reading them by a microcode assist.
  std::vector<float> scores(2000);
  for (size_t i = 0; i < scores.size(); ++i)
    scores[i] = -120.0f * static_cast<float>(i) / static_cast<float>(scores.size() - 1);
  std::vector<float> plain = scores;
  float sum = 0;
  for (auto& e : plain) {
    e = std::exp(e);
    sum += e;
  }
  size_t denormal_before = 0;
  for (auto& e : plain) {
    e /= sum;
    denormal_before += std::fpclassify(e) == FP_SUBNORMAL;
  }
  REQUIRE(denormal_before > 0);  // the case is the one that was slow
  auto weights = scores;
  cpu::softmax_weights(weights.data(), weights.size(), 0.0f);
  for (size_t i = 0; i < weights.size(); ++i) {
    INFO("weight " << i << " of score " << scores[i]);
    CHECK(std::fpclassify(weights[i]) != FP_SUBNORMAL);
    if (plain[i] >= std::numeric_limits<float>::min())
      CHECK(weights[i] == plain[i]);  // the same bits: the goldens do not move
    else
      CHECK(weights[i] == 0.0f);
  }
}

// Every float bit pattern in a stride that visits each exponent and sign many times over,
// then the edges of expf's ranges one by one.
TEST_CASE("the vector exp keeps std::exp's bits in SiLU and softmax", "[kernels]") {
  if (!cpu::kernels_available()) {
    WARN("no AVX2 + FMA here: the scalar loops run");
    return;
  }
  std::vector<float> x;
  for (uint64_t bits = 0; bits < (uint64_t(1) << 32); bits += 997) {
    float f;
    const auto b = static_cast<uint32_t>(bits);
    std::memcpy(&f, &b, sizeof f);
    x.push_back(f);
  }
  for (float edge :
       {88.0f, -88.0f, 88.72f, -87.0f, -87.34f, -103.28f, -103.97f, -104.0f, 0.0f, -0.0f,
        std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
        std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::denorm_min()})
    for (int step = -40; step <= 40; ++step) {
      float f = edge;
      for (int s = 0; s < std::abs(step); ++s)
        f = std::nextafter(f, step < 0 ? -INFINITY : INFINITY);
      x.push_back(f);
    }
  auto same = [](float a, float b) {
    return std::memcmp(&a, &b, sizeof a) == 0 || (std::isnan(a) && std::isnan(b));
  };
  std::vector<float> e(x.size());
  cpu::exp_floats(x.data(), e.data(), x.size());
  size_t wrong = 0;
  for (size_t i = 0; i < x.size(); ++i)
    if (!same(e[i], std::exp(x[i])) && ++wrong <= 5)
      WARN("exp(" << x[i] << "): " << e[i] << " against std::exp's " << std::exp(x[i]));
  CHECK(wrong == 0);
  // SiLU x up over gate values from the same patterns, as the scalar loop computes it.
  std::vector<float> up = random_floats(x.size(), 5), gate = x;
  cpu::silu_mul(gate.data(), up.data(), gate.size());
  wrong = 0;
  for (size_t i = 0; i < x.size(); ++i)
    wrong += !same(gate[i], x[i] / (1.0f + std::exp(-x[i])) * up[i]);
  CHECK(wrong == 0);
  // Softmax over scores spread down to where weights are cut to zero, at every length
  // around the vector width.
  for (size_t n : {1, 7, 8, 9, 31, 100, 1000}) {
    auto scores = random_floats(n, static_cast<uint32_t>(n));
    for (auto& v : scores)
      v *= 60.0f;
    const float top = *std::max_element(scores.begin(), scores.end());
    std::vector<float> plain = scores;
    float sum = 0;
    for (auto& v : plain) {
      v = v - top < -87.0f ? 0.0f : std::exp(v - top);
      sum += v;
    }
    for (auto& v : plain) {
      v /= sum;
      v = v < std::numeric_limits<float>::min() ? 0.0f : v;
    }
    auto weights = scores;
    cpu::softmax_weights(weights.data(), n, top);
    INFO("n = " << n);
    CHECK(std::memcmp(weights.data(), plain.data(), n * sizeof(float)) == 0);
  }
}

TEST_CASE("kernel decode picks the tokens full recomputation picks, with an adapter", "[kernels]") {
  auto dir = (std::filesystem::temp_directory_path() / "adapterd-kernel-test").string();
  REQUIRE(write_tiny_model(tiny_model_spec{}, dir + "/m", dir + "/a"));
  load_options options;
  options.device = "cpu";
  auto m = base_model::load(dir + "/m", options);
  REQUIRE(m);
  auto adapter = (*m)->load_adapter(dir + "/a");
  REQUIRE(adapter);
  // The long prompt's prefill takes the kernels' rows in more than one pass (over
  // cpu::rows_per_pass tokens).
  std::string long_prompt;
  for (int i = 0; i < 12; ++i)
    long_prompt += "kernels and libtorch agree on every token ";
  for (const lora_adapter* a : {static_cast<const lora_adapter*>(nullptr), adapter->get()})
    for (const std::string& prompt : {std::string("kernels and libtorch agree"), long_prompt}) {
      generation_params p;
      p.max_new_tokens = 12;
      auto ids = (*m)->tok().encode(prompt, true);
      if (prompt == long_prompt)
        REQUIRE(ids.size() > cpu::rows_per_pass);
      auto fast = (*m)->generate_ids(ids, p, a);  // prefill and decode in the kernels
      REQUIRE(fast);
      auto seq = ids;
      const auto vocab = static_cast<size_t>((*m)->config().vocab_size);
      for (size_t i = 0; i < fast->output_ids.size(); ++i) {
        auto logits = (*m)->logits(seq, a);  // the whole sequence through libtorch
        REQUIRE(logits);
        const float* last = logits->data() + (seq.size() - 1) * vocab;
        auto best = static_cast<int32_t>(std::max_element(last, last + vocab) - last);
        CHECK(best == fast->output_ids[i]);
        seq.push_back(fast->output_ids[i]);
      }
    }
}
