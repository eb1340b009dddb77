#include "model/cpu_kernels.hpp"

#include <immintrin.h>
#include <sys/mman.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>

namespace adapterd::model::cpu {

namespace {

#define ADAPTERD_AVX2 __attribute__((target("avx2,fma")))

ADAPTERD_AVX2 inline float hsum(__m256 v) {
  __m128 lo = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  __m128 shuf = _mm_movehdup_ps(lo);
  __m128 sums = _mm_add_ps(lo, shuf);
  shuf = _mm_movehl_ps(shuf, sums);
  return _mm_cvtss_f32(_mm_add_ss(sums, shuf));
}

// OUT weight rows (adjacent) times ROWS activation rows, accumulators in registers.
template <int OUT, int ROWS>
ADAPTERD_AVX2 void tile(const float* x, size_t ldx, const float* w, size_t k_dim, const float* bias,
                        float* y, size_t ldy, size_t j) {
  // The unroll pragmas keep acc in registers (GCC otherwise leaves it on the stack).
  __m256 acc[OUT][ROWS];
#pragma GCC unroll 8
  for (int o = 0; o < OUT; ++o)
#pragma GCC unroll 8
    for (int r = 0; r < ROWS; ++r)
      acc[o][r] = _mm256_setzero_ps();
  const size_t kv = k_dim & ~size_t(7);
  const float* wr = w + j * k_dim;
  for (size_t k = 0; k < kv; k += 8) {
    __m256 wv[OUT];
#pragma GCC unroll 8
    for (int o = 0; o < OUT; ++o)
      wv[o] = _mm256_loadu_ps(wr + o * k_dim + k);
#pragma GCC unroll 8
    for (int r = 0; r < ROWS; ++r) {
      __m256 xv = _mm256_loadu_ps(x + r * ldx + k);
#pragma GCC unroll 8
      for (int o = 0; o < OUT; ++o)
        acc[o][r] = _mm256_fmadd_ps(wv[o], xv, acc[o][r]);
    }
  }
  for (int o = 0; o < OUT; ++o)
    for (int r = 0; r < ROWS; ++r) {
      float s = hsum(acc[o][r]);
      for (size_t k = kv; k < k_dim; ++k)
        s += wr[o * k_dim + k] * x[r * ldx + k];
      y[r * ldy + j + o] = bias != nullptr ? s + bias[j + o] : s;
    }
}

template <int OUT>
ADAPTERD_AVX2 void tile_rows(const float* x, size_t rows, size_t ldx, const float* w, size_t k_dim,
                             const float* bias, float* y, size_t ldy, size_t j) {
  size_t r = 0;
  for (; r + 3 <= rows; r += 3)
    tile<OUT, 3>(x + r * ldx, ldx, w, k_dim, bias, y + r * ldy, ldy, j);
  switch (rows - r) {
    case 2: tile<OUT, 2>(x + r * ldx, ldx, w, k_dim, bias, y + r * ldy, ldy, j); break;
    case 1: tile<OUT, 1>(x + r * ldx, ldx, w, k_dim, bias, y + r * ldy, ldy, j); break;
    default: break;
  }
}

}  // namespace

bool kernels_available() {
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
                         && std::getenv("ADAPTERD_NO_CPU_KERNELS") == nullptr;
  return ok;
}

void dense_rows(const float* x, size_t rows, size_t ldx, const float* w, size_t k_dim,
                const float* bias, float* y, size_t ldy, size_t j_begin, size_t j_end) {
  size_t j = j_begin;
  for (; j + 4 <= j_end; j += 4)
    tile_rows<4>(x, rows, ldx, w, k_dim, bias, y, ldy, j);
  for (; j < j_end; ++j)
    tile_rows<1>(x, rows, ldx, w, k_dim, bias, y, ldy, j);
}

void rms_norm_row(const float* x, const float* weight, size_t n, double eps, float* out) {
  float sum = 0;
  for (size_t i = 0; i < n; ++i)
    sum += x[i] * x[i];
  const float scale = 1.0f / std::sqrt(sum / static_cast<float>(n) + static_cast<float>(eps));
  for (size_t i = 0; i < n; ++i)
    out[i] = weight[i] * (x[i] * scale);
}

void silu_mul(float* gate, const float* up, size_t n) {
  for (size_t i = 0; i < n; ++i)
    gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

ADAPTERD_AVX2 float sum_floats(const float* p, size_t n) {
  __m256 acc[8];
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i)
    acc[i] = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 64 <= n; i += 64)
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j)
      acc[j] = _mm256_add_ps(acc[j], _mm256_loadu_ps(p + i + 8 * j));
  for (int j = 1; j < 8; ++j)
    acc[0] = _mm256_add_ps(acc[0], acc[j]);
  float s = hsum(acc[0]);
  for (; i < n; ++i)
    s += p[i];
  return s;
}

std::shared_ptr<float> allocate_huge(size_t floats) {
  constexpr size_t huge = size_t(2) << 20;
  const size_t bytes = ((floats * sizeof(float) + huge - 1) / huge) * huge;
  void* p = nullptr;
  if (posix_memalign(&p, huge, bytes) != 0)
    throw std::bad_alloc();
  madvise(p, bytes, MADV_HUGEPAGE);  // advice only: without THP the pages stay small
  return std::shared_ptr<float>(static_cast<float*>(p), [](float* q) { std::free(q); });
}

}  // namespace adapterd::model::cpu
