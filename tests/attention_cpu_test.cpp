// attend_many against the one-query path it must match bit for bit (decode_cpu.cpp's
// loop: cpu::dot per key, softmax_weights, weighted_rows), in both cache types.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "model/llama/attention_cpu.hpp"
#include "model/llama/cpu_kernels.hpp"
#include "model/quant/blocks.hpp"

using namespace adapterd::model;

namespace {

std::vector<float> uniform(size_t n, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-scale, scale);
  std::vector<float> v(n);
  for (auto& x : v)
    x = u(rng);
  return v;
}

// One query the way decode_cpu.cpp computes it alone.
template <class T>
std::vector<float> one_query(const float* q, const T* keys, const T* values,
                             const std::vector<int64_t>& at, int64_t first, int64_t total, size_t d,
                             float scale) {
  std::vector<float> p(static_cast<size_t>(total - first));
  float top = -std::numeric_limits<float>::infinity();
  for (int64_t t = first; t < total; ++t) {
    const float dot = cpu::dot(q, keys + at[static_cast<size_t>(t)], d) * scale;
    p[static_cast<size_t>(t - first)] = dot;
    top = std::max(top, dot);
  }
  cpu::softmax_weights(p.data(), p.size(), top);
  std::vector<float> out(d, 0.0f);
  for (int64_t t = first; t < total; ++t)  // one key at a time: the same bits as runs of them
    cpu::weighted_rows(p.data() + (t - first), values + at[static_cast<size_t>(t)], 0, 1,
                       out.data(), d);
  return out;
}

}  // namespace

TEST_CASE("attend_many gives each query the one-query path's bits", "[kernels]") {
  for (size_t d : {16, 64, 128}) {
    if (!cpu::attend_many_available(d))
      return;
    const int64_t keys_n = 300;
    // keys out of order in memory, as a paged cache's blocks are
    std::vector<int64_t> at(keys_n);
    for (int64_t t = 0; t < keys_n; ++t)
      at[static_cast<size_t>(t)] = ((t * 37) % keys_n) * static_cast<int64_t>(d);
    const auto kf = uniform(keys_n * d, 1, 3.0f), vf = uniform(keys_n * d, 2, 1.0f);
    std::vector<uint16_t> kb(kf.size()), vb(vf.size());
    for (size_t i = 0; i < kf.size(); ++i) {
      kb[i] = quant::f32_to_bf16(kf[i]);
      vb[i] = quant::f32_to_bf16(vf[i]);
    }
    const size_t n = 11;  // more than one block of eight, of different lengths
    const auto qf = uniform(n * d, 3, 1.0f);
    std::vector<cpu::attention_query> queries(n);
    std::vector<std::vector<float>> out(n, std::vector<float>(d));
    for (size_t i = 0; i < n; ++i) {
      const int64_t total =
          keys_n - 23 * static_cast<int64_t>(i % 5);  // causal: earlier rows see fewer
      const int64_t first = i == 7 ? total - 50 : 0;  // one with a sliding window
      queries[i] = {qf.data() + i * d, first, total, out[i].data()};
    }
    const float scale = 0.125f;
    std::vector<float> scratch;
    for (bool bf16 : {false, true}) {
      const cpu::attention_cache cache{bf16 ? static_cast<const void*>(kb.data()) : kf.data(),
                                       bf16 ? static_cast<const void*>(vb.data()) : vf.data(),
                                       bf16,
                                       at.data(),
                                       at.data(),
                                       0};
      cpu::attend_many(cache, queries.data(), n, d, scale, scratch);
      for (size_t i = 0; i < n; ++i) {
        const auto& qy = queries[i];
        const auto want =
            bf16 ? one_query(qy.q, kb.data(), vb.data(), at, qy.first, qy.total, d, scale)
                 : one_query(qy.q, kf.data(), vf.data(), at, qy.first, qy.total, d, scale);
        INFO("d " << d << " bf16 " << bf16 << " query " << i);
        CHECK(std::memcmp(want.data(), out[i].data(), d * sizeof(float)) == 0);
      }
    }
  }
}
