// The kernels for CPUs with AVX-512 VNNI and BF16: compiled with those flags, called only
// where the CPU has them (dense.cpp).
#include <immintrin.h>

// GCC 12's AVX-512 intrinsics pass _mm512_undefined_*() through as the unused operand of
// their masked builtins, which -Wmaybe-uninitialized reports at every use.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#include "model/quant/kernel_entries.hpp"

namespace adapterd::model::quant::avx512 {

namespace {

// vpdpbusd: the four u8 x s8 products of each lane summed into int32 in one instruction.
inline __m256i dot_u8s8(__m256i u, __m256i s) {
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
}

inline __m256i dot_q4(__m256i low, __m256i x_low, __m256i high, __m256i x_high, __m256i start) {
  return _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(start, low, x_low), high, x_high);
}

#include "model/quant/dense_tiles.inl"

// Two weight rows of one block in one 512-bit register (lanes 0-7 the first row, 8-15 the
// second), loaded once for every activation row of a tile. The quants are made unsigned
// by adding 128 (one xor), so that vpdpbusd takes them as they are; start_for(x) is
// -128 x each lane's sum of x, which takes the offset out again in integers. dot() thus
// gives, per lane, the same exact int32 sum as the 256-bit dot of dense_tiles.inl, in
// two instructions where the sign trick took four.
struct pair_q8 {
  __m512i w_offset;
  // The quants of two consecutive rows of a group: 64 bytes in a row.
  void load(const uint8_t* qs) {
    w_offset = _mm512_xor_si512(_mm512_loadu_si512(qs), _mm512_set1_epi8(static_cast<char>(0x80)));
  }
  static __m512i start_for(__m512i xq) {
    return _mm512_sub_epi32(
        _mm512_setzero_si512(),
        _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(static_cast<char>(0x80)), xq));
  }
  __m512i dot(__m512i xq, __m512i start) const { return _mm512_dpbusd_epi32(start, w_offset, xq); }
};

// Up to three activation rows per pass over a group (or GROUPS groups side by side): a
// batch reuses each loaded block.
template <class Tile, int GROUPS>
void by_three(const uint8_t* group, size_t block_stride, const block_q8_act* x, size_t rows,
              size_t nb, const float* bias, float* y, size_t ldy, size_t j) {
  size_t r = 0;
  for (; r + 3 <= rows; r += 3)
    Tile::template tile<3, GROUPS>(group, block_stride, x + r * nb, nb, bias, y + r * ldy, ldy, j);
  if (rows - r == 2)
    Tile::template tile<2, GROUPS>(group, block_stride, x + r * nb, nb, bias, y + r * ldy, ldy, j);
  else if (rows - r == 1)
    Tile::template tile<1, GROUPS>(group, block_stride, x + r * nb, nb, bias, y + r * ldy, ldy, j);
}

// How many groups a pass reads side by side. Decode (one activation row) is bound by
// memory, and a core keeps more lines in flight over more streams: adapterd-dense, every
// variant interleaved in one run, measured 1-row int8 at 69 / 79 / 80 % of the read
// bandwidth with 2 / 4 / 8 groups, q4 at 59 / 61 / 67 %, and over the ~0.5 B model's
// layer shapes q4 at 68 / 78 / 85 % (one thread). A band (dense.hpp) lays those groups
// out block by block, so that the pass is one stream, which the hardware prefetches
// further still (one q4 thread ~25 against ~19 GB/s). More rows are bound by compute,
// where two groups did as well: they read a band in strides, from the cache after the
// first. Fetching ahead in software made no difference, so the integer tiles do not.
inline size_t groups_for(size_t rows) {
  return rows == 1 ? 8 : 2;
}

// Up to eight groups side by side (eight_rows::run), up to three activation rows at a time.
template <class Tile>
void by_groups(const uint8_t* group, size_t groups, size_t block_stride, const block_q8_act* x,
               size_t rows, size_t nb, const float* bias, float* y, size_t ldy, size_t j) {
  if (groups == 8)
    by_three<Tile, 8>(group, block_stride, x, rows, nb, bias, y, ldy, j);
  else if (groups == 4)
    by_three<Tile, 4>(group, block_stride, x, rows, nb, bias, y, ldy, j);
  else if (groups == 2)
    by_three<Tile, 2>(group, block_stride, x, rows, nb, bias, y, ldy, j);
  else
    by_three<Tile, 1>(group, block_stride, x, rows, nb, bias, y, ldy, j);
}

// tile_q8_eight with two weight rows per register: the same bits. GROUPS groups side by
// side (groups_for). More than four accumulator sets would need more registers than there
// are, so those take the groups in halves, one after the other.
template <>
struct eight_rows<block_q8_0> {
  static size_t groups_per_pass(size_t rows) { return groups_for(rows); }

  template <int ROWS, int GROUPS>
  static void tile(const uint8_t* group, size_t block_stride, const block_q8_act* x, size_t nb,
                   const float* bias, float* y, size_t ldy, size_t j) {
    if constexpr (ROWS * GROUPS > 4) {  // as two halves
      tile<ROWS, GROUPS / 2>(group, block_stride, x, nb, bias, y, ldy, j);
      tile<ROWS, GROUPS / 2>(group + GROUPS / 2 * 8 * sizeof(block_q8_0), block_stride, x, nb, bias,
                             y, ldy, j + 8 * (GROUPS / 2));
      return;
    } else {
      using pair = pair_q8;
      constexpr size_t qs_bytes = sizeof(block_q8_0) - 2, step = 8 * sizeof(block_q8_0);
      __m512 acc[GROUPS][4][ROWS];
#pragma GCC unroll 8
      for (int g = 0; g < GROUPS; ++g)
#pragma GCC unroll 4
        for (int p = 0; p < 4; ++p)
#pragma GCC unroll 4
          for (int r = 0; r < ROWS; ++r)
            acc[g][p][r] = _mm512_setzero_ps();
      for (size_t b = 0; b < nb; ++b) {
        __m512i xq[ROWS], start[ROWS];
#pragma GCC unroll 4
        for (int r = 0; r < ROWS; ++r) {
          xq[r] = _mm512_broadcast_i64x4(
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[r * nb + b].qs)));
          start[r] = pair::start_for(xq[r]);
        }
#pragma GCC unroll 8
        for (int g = 0; g < GROUPS; ++g) {
          const uint8_t* at = group + g * step + b * block_stride;
          const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(at)));
          __m512 scale[ROWS];
#pragma GCC unroll 4
          for (int r = 0; r < ROWS; ++r)
            scale[r] = _mm512_castps256_ps512(_mm256_mul_ps(dw, _mm256_set1_ps(x[r * nb + b].d)));
#pragma GCC unroll 4
          for (int p = 0; p < 4; ++p) {
            pair weights;
            weights.load(at + 16 + 2 * p * qs_bytes);
            const __m512i lanes = _mm512_setr_epi32(
                2 * p, 2 * p, 2 * p, 2 * p, 2 * p, 2 * p, 2 * p, 2 * p, 2 * p + 1, 2 * p + 1,
                2 * p + 1, 2 * p + 1, 2 * p + 1, 2 * p + 1, 2 * p + 1, 2 * p + 1);
#pragma GCC unroll 4
            for (int r = 0; r < ROWS; ++r)
              acc[g][p][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(weights.dot(xq[r], start[r])),
                                             _mm512_permutexvar_ps(lanes, scale[r]), acc[g][p][r]);
          }
        }
      }
      for (int g = 0; g < GROUPS; ++g)
        for (int p = 0; p < 4; ++p)
          for (int r = 0; r < ROWS; ++r) {
            alignas(64) float lane[16];
            _mm512_store_ps(lane, acc[g][p][r]);
            for (int half = 0; half < 2; ++half) {
              const float s = hsum(_mm256_load_ps(lane + 8 * half));
              const size_t o = j + static_cast<size_t>(8 * g + 2 * p + half);
              y[r * ldy + o] = bias != nullptr ? s + bias[o] : s;
            }
          }
    }
  }

  static void run(const uint8_t* group, size_t groups, size_t block_stride, const block_q8_act* x,
                  size_t rows, size_t nb, const float* bias, float* y, size_t ldy, size_t j) {
    by_groups<eight_rows>(group, groups, block_stride, x, rows, nb, bias, y, ldy, j);
  }
};

// tile_q4_eight with four weight rows per register (one per 128-bit lane): the same bits.
// GROUPS groups side by side, as above; a single activation row leaves registers for eight.
template <>
struct eight_rows<block_q4_0> {
  static size_t groups_per_pass(size_t rows) { return groups_for(rows); }

  template <int ROWS, int GROUPS>
  static void tile(const uint8_t* group, size_t block_stride, const block_q8_act* x, size_t nb,
                   const float* bias, float* y, size_t ldy, size_t j) {
    if constexpr (ROWS * GROUPS > (ROWS == 1 ? 8 : 6)) {  // registers: as two halves
      tile<ROWS, GROUPS / 2>(group, block_stride, x, nb, bias, y, ldy, j);
      tile<ROWS, GROUPS / 2>(group + GROUPS / 2 * 8 * sizeof(block_q4_0), block_stride, x, nb, bias,
                             y, ldy, j + 8 * (GROUPS / 2));
      return;
    } else {
      constexpr size_t step = 8 * sizeof(block_q4_0);
      __m512 acc[GROUPS][2][ROWS];
#pragma GCC unroll 8
      for (int g = 0; g < GROUPS; ++g)
#pragma GCC unroll 2
        for (int h = 0; h < 2; ++h)
#pragma GCC unroll 4
          for (int r = 0; r < ROWS; ++r)
            acc[g][h][r] = _mm512_setzero_ps();
      const __m512i mask = _mm512_set1_epi8(0x0f);
      // each row's scale into the four lanes of its quarter
      const __m512i quarters[2] = {
          _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3),
          _mm512_setr_epi32(4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7)};
      for (size_t b = 0; b < nb; ++b) {
        __m512i x_low[ROWS], x_high[ROWS], start[ROWS];
#pragma GCC unroll 4
        for (int r = 0; r < ROWS; ++r) {
          const block_q8_act& xb = x[r * nb + b];
          x_low[r] =
              _mm512_broadcast_i32x4(_mm_load_si128(reinterpret_cast<const __m128i*>(xb.qs)));
          x_high[r] =
              _mm512_broadcast_i32x4(_mm_load_si128(reinterpret_cast<const __m128i*>(xb.qs + 16)));
          start[r] =
              _mm512_broadcast_i32x4(_mm_load_si128(reinterpret_cast<const __m128i*>(xb.q4_start)));
        }
#pragma GCC unroll 8
        for (int g = 0; g < GROUPS; ++g) {
          const uint8_t* at = group + g * step + b * block_stride;
          const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(at)));
          __m512i low[2], high[2];
#pragma GCC unroll 2
          for (int h = 0; h < 2; ++h) {
            const __m512i w = _mm512_loadu_si512(at + 16 + 64 * h);
            low[h] = _mm512_and_si512(w, mask);
            high[h] = _mm512_and_si512(_mm512_srli_epi16(w, 4), mask);
          }
#pragma GCC unroll 4
          for (int r = 0; r < ROWS; ++r) {
            const __m512 scale =
                _mm512_castps256_ps512(_mm256_mul_ps(dw, _mm256_set1_ps(x[r * nb + b].d)));
#pragma GCC unroll 2
            for (int h = 0; h < 2; ++h) {
              const __m512i sums = _mm512_dpbusd_epi32(
                  _mm512_dpbusd_epi32(start[r], low[h], x_low[r]), high[h], x_high[r]);
              acc[g][h][r] =
                  _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums),
                                  _mm512_permutexvar_ps(quarters[h], scale), acc[g][h][r]);
            }
          }
        }
      }
      for (int g = 0; g < GROUPS; ++g)
        for (int h = 0; h < 2; ++h)
          for (int r = 0; r < ROWS; ++r) {
            alignas(64) float lane[16];
            _mm512_store_ps(lane, acc[g][h][r]);
            for (int q = 0; q < 4; ++q) {
              const float s = hsum4(_mm_load_ps(lane + 4 * q));
              const size_t o = j + static_cast<size_t>(8 * g + 4 * h + q);
              y[r * ldy + o] = bias != nullptr ? s + bias[o] : s;
            }
          }
    }
  }

  static void run(const uint8_t* group, size_t groups, size_t block_stride, const block_q8_act* x,
                  size_t rows, size_t nb, const float* bias, float* y, size_t ldy, size_t j) {
    by_groups<eight_rows>(group, groups, block_stride, x, rows, nb, bias, y, ldy, j);
  }
};

// Through memory: GCC 12's 512-to-256 casts trip -Wuninitialized.
inline float hsum512(__m512 v) {
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, v);
  return hsum(_mm256_add_ps(_mm256_load_ps(lanes), _mm256_load_ps(lanes + 8)));
}

// OUT weight rows (`w`, see bf16_rows) times ROWS activation rows. With more than one
// activation row, the next tile's rows (`next`) are fetched meanwhile, a line per row per step.
template <int OUT, int ROWS>
inline void tile_bf16(bf16_rows w, bf16_rows next, const uint16_t* x, size_t k, const float* bias,
                      float* y, size_t ldy, size_t j) {
  __m512 acc[OUT][ROWS];
#pragma GCC unroll 8
  for (int o = 0; o < OUT; ++o)
#pragma GCC unroll 8
    for (int r = 0; r < ROWS; ++r)
      acc[o][r] = _mm512_setzero_ps();
  for (size_t c = 0; c < k; c += 32) {
    const size_t chunk = c / 32;
    if (ROWS > 1)
#pragma GCC unroll 8
      for (int o = 0; o < OUT; ++o)
        _mm_prefetch(
            reinterpret_cast<const char*>(next.first + o * next.row_step + chunk * next.chunk_step),
            _MM_HINT_T0);
    __m512bh wv[OUT];
#pragma GCC unroll 8
    for (int o = 0; o < OUT; ++o)
      wv[o] = (__m512bh)_mm512_loadu_si512(w.first + o * w.row_step + chunk * w.chunk_step);
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
inline void rows_bf16(const uint8_t* w, size_t stride, size_t grouped_rows, const uint16_t* x,
                      size_t rows, size_t k, const float* bias, float* y, size_t ldy, size_t j) {
  const bf16_rows at = bf16_rows_at(w, stride, grouped_rows, j),
                  next = bf16_rows_at(w, stride, grouped_rows, j + OUT);
  size_t r = 0;
  for (; r + 3 <= rows; r += 3)
    tile_bf16<OUT, 3>(at, next, x + r * k, k, bias, y + r * ldy, ldy, j);
  if (rows - r == 2)
    tile_bf16<OUT, 2>(at, next, x + r * k, k, bias, y + r * ldy, ldy, j);
  else if (rows - r == 1)
    tile_bf16<OUT, 1>(at, next, x + r * k, k, bias, y + r * ldy, ldy, j);
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

void dense_bf16(const uint8_t* w, size_t stride, size_t grouped_rows, const uint16_t* x,
                size_t rows, size_t cols, const float* bias, float* y, size_t ldy, size_t j_begin,
                size_t j_end) {
  for (size_t j = j_begin; j < j_end;) {
    if (rows == 1 && bf16_tile_fits(j, 8, j_end, grouped_rows)) {
      rows_bf16<8>(w, stride, grouped_rows, x, rows, cols, bias, y, ldy, j);
      j += 8;
    } else if (bf16_tile_fits(j, 4, j_end, grouped_rows)) {
      rows_bf16<4>(w, stride, grouped_rows, x, rows, cols, bias, y, ldy, j);
      j += 4;
    } else {
      rows_bf16<1>(w, stride, grouped_rows, x, rows, cols, bias, y, ldy, j);
      ++j;
    }
  }
}

}  // namespace adapterd::model::quant::avx512
