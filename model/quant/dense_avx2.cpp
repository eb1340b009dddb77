// The kernels for CPUs with AVX2 (+FMA, F16C): compiled with those flags only.
#include <immintrin.h>

#include "model/quant/kernel_entries.hpp"

namespace adapterd::model::quant::avx2 {

namespace {

// u8 x s8 pairs to int16 (no saturation: |w| <= 127 and |x| <= 127), then pairs to int32.
inline __m256i dot_u8s8(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

// Nibbles (0..15) times values: each 16-bit pair sum stays below 2 x 2 x 15 x 127 < 2^15.
inline __m256i dot_q4(__m256i low, __m256i x_low, __m256i high, __m256i x_high, __m256i start) {
  const __m256i pairs =
      _mm256_add_epi16(_mm256_maddubs_epi16(low, x_low), _mm256_maddubs_epi16(high, x_high));
  return _mm256_add_epi32(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)), start);
}

#include "model/quant/dense_tiles.inl"

template <class Block>
void tile_eight(const uint8_t* group, size_t block_stride, const block_q8_act* x, size_t nb,
                const float* bias, float* y, size_t j);
template <>
void tile_eight<block_q8_0>(const uint8_t* group, size_t block_stride, const block_q8_act* x,
                            size_t nb, const float* bias, float* y, size_t j) {
  tile_q8_eight(group, block_stride, x, nb, bias, y, j);
}
template <>
void tile_eight<block_q4_0>(const uint8_t* group, size_t block_stride, const block_q8_act* x,
                            size_t nb, const float* bias, float* y, size_t j) {
  tile_q4_eight(group, block_stride, x, nb, bias, y, j);
}

// Sixteen registers: one activation row at a time.
template <class Block>
struct eight_rows {
  static size_t groups_per_pass(size_t) { return 1; }

  static void run(const uint8_t* group, size_t /*groups*/, size_t block_stride,
                  const block_q8_act* x, size_t rows, size_t nb, const float* bias, float* y,
                  size_t ldy, size_t j) {
    for (size_t r = 0; r < rows; ++r)
      tile_eight<Block>(group, block_stride, x + r * nb, nb, bias, y + r * ldy, j);
  }
};

// OUT weight rows (`w`, see bf16_rows) times ROWS activation rows; the next tile's rows
// (`next`) are fetched meanwhile, a line per row per 32 weights.
template <int OUT, int ROWS>
inline void tile_bf16(bf16_rows w, bf16_rows next, const float* x, size_t ldx, size_t k,
                      const float* bias, float* y, size_t ldy, size_t j) {
  __m256 acc[OUT][ROWS];
#pragma GCC unroll 8
  for (int o = 0; o < OUT; ++o)
#pragma GCC unroll 8
    for (int r = 0; r < ROWS; ++r)
      acc[o][r] = _mm256_setzero_ps();
  for (size_t c = 0; c < k; c += 8) {
    const size_t chunk = c / 32, within = (c % 32) * 2;
    if (within == 0)
#pragma GCC unroll 8
      for (int o = 0; o < OUT; ++o)
        _mm_prefetch(
            reinterpret_cast<const char*>(next.first + o * next.row_step + chunk * next.chunk_step),
            _MM_HINT_T0);
    __m256 wv[OUT];
#pragma GCC unroll 8
    for (int o = 0; o < OUT; ++o) {
      const __m128i half = _mm_loadu_si128(reinterpret_cast<const __m128i*>(
          w.first + o * w.row_step + chunk * w.chunk_step + within));
      wv[o] = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(half), 16));
    }
#pragma GCC unroll 8
    for (int r = 0; r < ROWS; ++r) {
      const __m256 xv = _mm256_loadu_ps(x + r * ldx + c);
#pragma GCC unroll 8
      for (int o = 0; o < OUT; ++o)
        acc[o][r] = _mm256_fmadd_ps(wv[o], xv, acc[o][r]);
    }
  }
  for (int o = 0; o < OUT; ++o)
    for (int r = 0; r < ROWS; ++r) {
      const float s = hsum(acc[o][r]);
      y[r * ldy + j + o] = bias != nullptr ? s + bias[j + o] : s;
    }
}

template <int OUT>
inline void rows_bf16(const uint8_t* w, size_t stride, size_t grouped_rows, const float* x,
                      size_t ldx, size_t rows, size_t k, const float* bias, float* y, size_t ldy,
                      size_t j) {
  const bf16_rows at = bf16_rows_at(w, stride, grouped_rows, j),
                  next = bf16_rows_at(w, stride, grouped_rows, j + OUT);
  size_t r = 0;
  for (; r + 3 <= rows; r += 3)
    tile_bf16<OUT, 3>(at, next, x + r * ldx, ldx, k, bias, y + r * ldy, ldy, j);
  if (rows - r == 2)
    tile_bf16<OUT, 2>(at, next, x + r * ldx, ldx, k, bias, y + r * ldy, ldy, j);
  else if (rows - r == 1)
    tile_bf16<OUT, 1>(at, next, x + r * ldx, ldx, k, bias, y + r * ldy, ldy, j);
}

}  // namespace

void dense_q8_0(const uint8_t* w, size_t stride, size_t grouped_rows, size_t band_groups,
                const block_q8_act* x, size_t rows, size_t cols, const float* bias, float* y,
                size_t ldy, size_t j_begin, size_t j_end) {
  dense_int<block_q8_0>(w, stride, grouped_rows, band_groups, x, rows, cols, bias, y, ldy, j_begin,
                        j_end);
}

void dense_q4_0(const uint8_t* w, size_t stride, size_t grouped_rows, size_t band_groups,
                const block_q8_act* x, size_t rows, size_t cols, const float* bias, float* y,
                size_t ldy, size_t j_begin, size_t j_end) {
  dense_int<block_q4_0>(w, stride, grouped_rows, band_groups, x, rows, cols, bias, y, ldy, j_begin,
                        j_end);
}

void dense_bf16(const uint8_t* w, size_t stride, size_t grouped_rows, const float* x, size_t ldx,
                size_t rows, size_t cols, const float* bias, float* y, size_t ldy, size_t j_begin,
                size_t j_end) {
  for (size_t j = j_begin; j < j_end;) {
    if (bf16_tile_fits(j, 4, j_end, grouped_rows)) {
      rows_bf16<4>(w, stride, grouped_rows, x, ldx, rows, cols, bias, y, ldy, j);
      j += 4;
    } else {
      rows_bf16<1>(w, stride, grouped_rows, x, ldx, rows, cols, bias, y, ldy, j);
      ++j;
    }
  }
}

namespace {

// abs and max are exact in any order: the same amax as block_absmax.
inline float block_absmax(const __m256 (&v)[4]) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 m =
      _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v[0]), _mm256_andnot_ps(sign, v[1])),
                    _mm256_max_ps(_mm256_andnot_ps(sign, v[2]), _mm256_andnot_ps(sign, v[3])));
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  h = _mm_max_ss(h, _mm_movehdup_ps(h));
  return _mm_cvtss_f32(h);
}

}  // namespace

void quantize_rows_q8_act(const float* x, size_t ldx, size_t rows, size_t cols, block_q8_act* out) {
  const size_t nb = cols / block_size;
  for (size_t r = 0; r < rows; ++r)
    for (size_t b = 0; b < nb; ++b) {
      const float* xb = x + r * ldx + b * block_size;
      block_q8_act& o = out[r * nb + b];
      __m256 v[4];
      for (int i = 0; i < 4; ++i)
        v[i] = _mm256_loadu_ps(xb + 8 * i);
      const float d = block_absmax(v) / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
      o.d = d;
      __m256i q[4];
      for (int i = 0; i < 4; ++i)  // nearbyint in the default rounding mode: to nearest even
        q[i] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[i], _mm256_set1_ps(id)),
                                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
      // packs interleave the 128-bit halves; the permutation puts the bytes back in order
      const __m256i bytes = _mm256_permutevar8x32_epi32(
          _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3])),
          _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(o.qs), bytes);
      // lane l: values 4l..4l+3 and 16+4l..16+4l+3
      const __m256i pairs = _mm256_add_epi32(q[0], q[2]), more = _mm256_add_epi32(q[1], q[3]);
      alignas(32) int32_t s[16];
      _mm256_store_si256(reinterpret_cast<__m256i*>(s), pairs);
      _mm256_store_si256(reinterpret_cast<__m256i*>(s + 8), more);
      for (int lane = 0; lane < 4; ++lane)
        o.q4_start[lane] = -8 * (s[4 * lane] + s[4 * lane + 1] + s[4 * lane + 2] + s[4 * lane + 3]);
    }
}

void round_rows_bf16(const float* x, size_t ldx, size_t rows, size_t cols, uint16_t* out) {
  const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000),
                bias = _mm256_set1_epi32(0x7fff), one = _mm256_set1_epi32(1),
                quiet = _mm256_set1_epi32(0x40);
  for (size_t r = 0; r < rows; ++r) {
    const float* xr = x + r * ldx;
    uint16_t* o = out + r * cols;
    size_t k = 0;
    for (; k + 16 <= cols; k += 16) {
      __m256i h[2];
      for (int i = 0; i < 2; ++i) {
        const __m256i u = _mm256_castps_si256(_mm256_loadu_ps(xr + k + 8 * i));
        const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, abs_mask), inf);
        const __m256i rounded = _mm256_srli_epi32(
            _mm256_add_epi32(
                u, _mm256_add_epi32(bias, _mm256_and_si256(_mm256_srli_epi32(u, 16), one))),
            16);
        h[i] = _mm256_blendv_epi8(rounded, _mm256_or_si256(_mm256_srli_epi32(u, 16), quiet), nan);
      }
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + k),
                          _mm256_permute4x64_epi64(_mm256_packus_epi32(h[0], h[1]), 0xd8));
    }
    for (; k < cols; ++k)
      o[k] = f32_to_bf16(xr[k]);
  }
}

}  // namespace adapterd::model::quant::avx2
