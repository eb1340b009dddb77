// The kernels for CPUs with AVX-512 VNNI and BF16: compiled with those flags, called only
// where the CPU has them (dense.cpp).
#include <immintrin.h>

#include "model/quant/kernel_entries.hpp"

namespace adapterd::model::quant::avx512 {

namespace {

// vpdpbusd: the four u8 x s8 products of each lane summed into int32 in one instruction.
inline __m256i dot_u8s8(__m256i u, __m256i s) {
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
}

inline __m256i dot_u8s8_minus(__m256i u, __m256i s, __m256i minus) {
  return _mm256_dpbusd_epi32(_mm256_sub_epi32(_mm256_setzero_si256(), minus), u, s);
}

#include "model/quant/dense_tiles.inl"

// Through memory: GCC 12's 512-to-256 casts trip -Wuninitialized.
inline float hsum512(__m512 v) {
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, v);
  return hsum(_mm256_add_ps(_mm256_load_ps(lanes), _mm256_load_ps(lanes + 8)));
}

template <int OUT, int ROWS>
inline void tile_bf16(const uint8_t* w, size_t stride, const uint16_t* x, size_t k,
                      const float* bias, float* y, size_t ldy, size_t j) {
  __m512 acc[OUT][ROWS];
#pragma GCC unroll 8
  for (int o = 0; o < OUT; ++o)
#pragma GCC unroll 8
    for (int r = 0; r < ROWS; ++r)
      acc[o][r] = _mm512_setzero_ps();
  // As in tile_int (dense_tiles.inl): fetch the next tile's rows meanwhile, over the
  // same steps (OUT rows of 2k bytes each).
  const char* next = reinterpret_cast<const char*>(w + OUT * stride);
  const size_t lines_per_step = (OUT * 2 * 32 + 63) / 64 + 1;
  for (size_t c = 0; c < k; c += 32) {
    for (size_t line = 0; line < lines_per_step; ++line)
      _mm_prefetch(next + (c / 32 * lines_per_step + line) * 64, _MM_HINT_T0);
    __m512bh wv[OUT];
#pragma GCC unroll 8
    for (int o = 0; o < OUT; ++o)
      wv[o] = (__m512bh)_mm512_loadu_si512(w + o * stride + c * 2);
#pragma GCC unroll 8
    for (int r = 0; r < ROWS; ++r) {
      const __m512bh xv = (__m512bh)_mm512_loadu_si512(x + r * k + c);
#pragma GCC unroll 8
      for (int o = 0; o < OUT; ++o)
        acc[o][r] = _mm512_dpbf16_ps(acc[o][r], wv[o], xv);
    }
  }
  for (int o = 0; o < OUT; ++o)
    for (int r = 0; r < ROWS; ++r) {
      const float s = hsum512(acc[o][r]);
      y[r * ldy + j + o] = bias != nullptr ? s + bias[j + o] : s;
    }
}

template <int OUT>
inline void rows_bf16(const uint8_t* w, size_t stride, const uint16_t* x, size_t rows, size_t k,
                      const float* bias, float* y, size_t ldy, size_t j) {
  const uint8_t* wr = w + j * stride;
  size_t r = 0;
  for (; r + 3 <= rows; r += 3)
    tile_bf16<OUT, 3>(wr, stride, x + r * k, k, bias, y + r * ldy, ldy, j);
  if (rows - r == 2)
    tile_bf16<OUT, 2>(wr, stride, x + r * k, k, bias, y + r * ldy, ldy, j);
  else if (rows - r == 1)
    tile_bf16<OUT, 1>(wr, stride, x + r * k, k, bias, y + r * ldy, ldy, j);
}

}  // namespace

void dense_q8_0(const uint8_t* w, size_t stride, const block_q8_act* x, size_t rows, size_t cols,
                const float* bias, float* y, size_t ldy, size_t j_begin, size_t j_end) {
  dense_int<block_q8_0>(w, stride, x, rows, cols, bias, y, ldy, j_begin, j_end);
}

void dense_q4_0(const uint8_t* w, size_t stride, const block_q8_act* x, size_t rows, size_t cols,
                const float* bias, float* y, size_t ldy, size_t j_begin, size_t j_end) {
  dense_int<block_q4_0>(w, stride, x, rows, cols, bias, y, ldy, j_begin, j_end);
}

void dense_bf16(const uint8_t* w, size_t stride, const uint16_t* x, size_t rows, size_t cols,
                const float* bias, float* y, size_t ldy, size_t j_begin, size_t j_end) {
  size_t j = j_begin;
  for (; j + 4 <= j_end; j += 4)
    rows_bf16<4>(w, stride, x, rows, cols, bias, y, ldy, j);
  for (; j < j_end; ++j)
    rows_bf16<1>(w, stride, x, rows, cols, bias, y, ldy, j);
}

}  // namespace adapterd::model::quant::avx512
