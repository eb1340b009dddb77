#include "model/llama/attention_cpu.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <utility>

#include "model/llama/cpu_kernels.hpp"
#include "model/llama/lane_sums.hpp"
#include "model/llama/vector_exp.hpp"

// GCC 12's AVX-512 intrinsics pass _mm512_undefined_*() through as the unused operand of
// their masked builtins, which -Wuninitialized reports at every use (as in dense_avx512.cpp).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace adapterd::model::cpu {

namespace {

#define ADAPTERD_AVX512 __attribute__((target("avx512f,avx2,fma")))

constexpr size_t block_queries = 8;  // queries whose scores share each key load
constexpr size_t chunk_keys = 16;    // keys per chunk: their 16-lane sums are reduced together

// The keys any of n queries reads: [first, end).
std::pair<int64_t, int64_t> keys_read(const attention_query* qs, size_t n) {
  int64_t first = std::numeric_limits<int64_t>::max(), end = 0;
  for (size_t i = 0; i < n; ++i) {
    first = std::min(first, qs[i].first);
    end = std::max(end, qs[i].total);
  }
  return {first, end};
}

// Sixteen values of a key or value row, as fp32 (bf16 to fp32 is exact: the bits moved up).
ADAPTERD_AVX512 inline __m512 load16(const void* base, int64_t at, bool bf16) {
  if (!bf16)
    return _mm512_loadu_ps(static_cast<const float*>(base) + at);
  const auto* p = static_cast<const uint16_t*>(base) + at;
  return _mm512_castsi512_ps(_mm512_slli_epi32(
      _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16));
}

// Scores of up to block_queries queries, scaled, into p[i * span + (t - first_i)].
template <int D16>
ADAPTERD_AVX512 void block_scores(const attention_cache& c, const attention_query* qs, size_t n,
                                  float scale, float* p, size_t span, int64_t t_begin,
                                  int64_t t_end) {
  alignas(64) lanes16 partial[block_queries][chunk_keys];
  for (int64_t chunk = t_begin; chunk < t_end; chunk += chunk_keys) {
    const int64_t chunk_end = std::min<int64_t>(t_end, chunk + static_cast<int64_t>(chunk_keys));
    for (int64_t t = chunk; t < chunk_end; ++t) {
      __m512 k[D16];
      const int64_t at = c.key_at[t - c.first];
#pragma GCC unroll 8
      for (int j = 0; j < D16; ++j)
        k[j] = load16(c.keys, at + 16 * j, c.bf16);
      for (size_t i = 0; i < n; ++i) {
        __m512 acc = _mm512_setzero_ps();
#pragma GCC unroll 8
        for (int j = 0; j < D16; ++j)
          acc = _mm512_fmadd_ps(_mm512_loadu_ps(qs[i].q + 16 * j), k[j], acc);
        _mm512_store_ps(partial[i][t - chunk].lane, acc);
      }
    }
    for (size_t i = 0; i < n; ++i) {
      alignas(64) float dots[chunk_keys];
      _mm512_store_ps(dots, sums16(partial[i]));
      const int64_t from = std::max(chunk, qs[i].first), to = std::min(chunk_end, qs[i].total);
      for (int64_t t = from; t < to; ++t)
        p[i * span + static_cast<size_t>(t - qs[i].first)] = dots[t - chunk] * scale;
    }
  }
}

// out = sum over t of p[t] * v_t for up to 24 / D16 queries, values loaded once for all.
template <int D16>
ADAPTERD_AVX512 void block_values(const attention_cache& c, const attention_query* qs, size_t n,
                                  const float* p, size_t span) {
  constexpr size_t most = 24 / D16;
  for (size_t i0 = 0; i0 < n; i0 += most) {
    const size_t m = std::min(most, n - i0);
    __m512 acc[most][D16];
    const auto [t_begin, t_end] = keys_read(qs + i0, m);
    for (size_t i = 0; i < m; ++i) {
#pragma GCC unroll 8
      for (int j = 0; j < D16; ++j)
        acc[i][j] = _mm512_setzero_ps();
    }
    for (int64_t t = t_begin; t < t_end; ++t) {
      __m512 v[D16];
      const int64_t at = c.value_at[t - c.first];
#pragma GCC unroll 8
      for (int j = 0; j < D16; ++j)
        v[j] = load16(c.values, at + 16 * j, c.bf16);
#pragma GCC unroll 24
      for (size_t i = 0; i < most; ++i) {
        if (i >= m || t < qs[i0 + i].first || t >= qs[i0 + i].total)
          continue;
        const __m512 w =
            _mm512_set1_ps(p[(i0 + i) * span + static_cast<size_t>(t - qs[i0 + i].first)]);
#pragma GCC unroll 8
        for (int j = 0; j < D16; ++j)
          acc[i][j] = _mm512_fmadd_ps(w, v[j], acc[i][j]);
      }
    }
    for (size_t i = 0; i < m; ++i)
#pragma GCC unroll 8
      for (int j = 0; j < D16; ++j)
        _mm512_storeu_ps(qs[i0 + i].out + 16 * j, acc[i][j]);
  }
}

// out[i] = step(...step(step(init, row_i[0]), row_i[1])..., row_i[len[i] - 1]): each row
// folded in its own order, as the one-query path folds it, but the rows side by side, so
// that their chains of dependent steps (each waiting on the latency of one max or add)
// overlap.
template <class Step>
void fold_rows(const float* p, size_t span, const size_t* len, size_t n, float init, float* out,
               const Step& step) {
  float acc[block_queries];
  size_t common = len[0];
  for (size_t i = 0; i < n; ++i) {
    acc[i] = init;
    common = std::min(common, len[i]);
  }
  if (n == block_queries) {  // a constant count: the accumulators stay in registers
    for (size_t t = 0; t < common; ++t)
#pragma GCC unroll 8
      for (size_t i = 0; i < block_queries; ++i)
        acc[i] = step(acc[i], p[i * span + t]);
  } else {
    for (size_t t = 0; t < common; ++t)
      for (size_t i = 0; i < n; ++i)
        acc[i] = step(acc[i], p[i * span + t]);
  }
  for (size_t i = 0; i < n; ++i) {
    for (size_t t = common; t < len[i]; ++t)
      acc[i] = step(acc[i], p[i * span + t]);
    out[i] = acc[i];
  }
}

// softmax_weights of each row (len[i] scores at p + i * span), with its bits: the maximum
// and the sum of each row in its own order, the rows' chains side by side.
void softmax_rows(float* p, size_t span, const size_t* len, size_t n) {
  float top[block_queries], sum[block_queries];
  fold_rows(p, span, len, n, -std::numeric_limits<float>::infinity(), top,
            [](float a, float x) { return std::max(a, x); });
  for (size_t i = 0; i < n; ++i)
    shifted_exp_vector(p + i * span, len[i], top[i], softmax_denormal_below);
  fold_rows(p, span, len, n, 0.0f, sum, [](float a, float x) { return a + x; });
  for (size_t i = 0; i < n; ++i)
    normalise_vector(p + i * span, len[i], sum[i]);
}

template <int D16>
ADAPTERD_AVX512 void attend_blocks(const attention_cache& c, const attention_query* queries,
                                   size_t count, float scale, std::vector<float>& scratch) {
  for (size_t b = 0; b < count; b += block_queries) {
    const attention_query* qs = queries + b;
    const size_t n = std::min(block_queries, count - b);
    const auto [t_begin, t_end] = keys_read(qs, n);
    size_t span = 0;  // the longest query's keys: each query's scores have this much room
    for (size_t i = 0; i < n; ++i)
      span = std::max(span, static_cast<size_t>(qs[i].total - qs[i].first));
    scratch.resize(n * span);
    float* p = scratch.data();
    block_scores<D16>(c, qs, n, scale, p, span, t_begin, t_end);
    size_t len[block_queries];
    for (size_t i = 0; i < n; ++i)
      len[i] = static_cast<size_t>(qs[i].total - qs[i].first);
    softmax_rows(p, span, len, n);
    block_values<D16>(c, qs, n, p, span);
  }
}

}  // namespace

bool attend_many_available(size_t head_dim) {
  static const bool avx512 =
      __builtin_cpu_supports("avx512f") && std::getenv("ADAPTERD_NO_AVX512") == nullptr;
  return avx512 && head_dim % 16 == 0 && head_dim >= 16 && head_dim <= 128;
}

void attend_many(const attention_cache& cache, const attention_query* queries, size_t count,
                 size_t head_dim, float scale, std::vector<float>& scratch) {
  switch (head_dim / 16) {
    case 1: return attend_blocks<1>(cache, queries, count, scale, scratch);
    case 2: return attend_blocks<2>(cache, queries, count, scale, scratch);
    case 3: return attend_blocks<3>(cache, queries, count, scale, scratch);
    case 4: return attend_blocks<4>(cache, queries, count, scale, scratch);
    case 5: return attend_blocks<5>(cache, queries, count, scale, scratch);
    case 6: return attend_blocks<6>(cache, queries, count, scale, scratch);
    case 7: return attend_blocks<7>(cache, queries, count, scale, scratch);
    default: return attend_blocks<8>(cache, queries, count, scale, scratch);
  }
}

}  // namespace adapterd::model::cpu
