// The kernels' tiles, compiled once per instruction set (dense_avx2.cpp, dense_avx512.cpp):
// the including file defines, in an unnamed namespace of its own, `dot_u8s8` (8 int32 lanes,
// each the sum of 4 u8 x s8 products), `dot_q4` (a Q4_0 lane sum, see block_q8_act), and
// `eight_rows` after the include. No library code is used here: an inline library function
// compiled with AVX-512 could be picked by the linker for the whole program and fault on a
// CPU without it.

inline float hsum(__m256 v) {
  __m128 lo = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  __m128 shuf = _mm_movehdup_ps(lo);
  __m128 sums = _mm_add_ps(lo, shuf);
  shuf = _mm_movehl_ps(shuf, sums);
  return _mm_cvtss_f32(_mm_add_ss(sums, shuf));
}

// Sums of the four lanes of a Q4_0 row, in one order for every tile: (0 + 2) + (1 + 3).
inline float hsum4(__m128 v) {
  const __m128 pairs = _mm_add_ps(v, _mm_movehl_ps(v, v));
  return _mm_cvtss_f32(_mm_add_ss(pairs, _mm_movehdup_ps(pairs)));
}

// Q8_0: each lane (4 weights) of one block times the activation block, summed in int32,
// exact: |w| as the unsigned operand and x with w's sign as the signed one.
struct block_weights_q8 {
  __m256i w;
  void load(const uint8_t* qs) { w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs)); }
  __m256i dot(__m256i xq) const { return dot_u8s8(_mm256_sign_epi8(w, w), _mm256_sign_epi8(xq, w)); }
};

// The activation block as q4_rows reads it: values 0-15 and 16-31 in both halves, and
// the lanes' start values.
struct q4_activation {
  __m256i low, high, start;
  explicit q4_activation(const block_q8_act& x)
      : low(_mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(x.qs)))),
        high(_mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(x.qs + 16)))),
        start(_mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(x.q4_start)))) {}
};

// Q4_0, the quants of two weight rows of one block (16 bytes each) in one register, one
// row per 128-bit half: the low nibbles are weights 0-15, the high ones 16-31, unpacked
// without a shuffle. Per row 4 int32 lanes (block_q8_act::q4_start).
inline __m256i q4_rows(__m256i w, const q4_activation& x) {
  const __m256i mask = _mm256_set1_epi8(0x0f);
  return dot_q4(_mm256_and_si256(w, mask), x.low, _mm256_and_si256(_mm256_srli_epi16(w, 4), mask), x.high,
                x.start);
}

// Integer kernels: each block's dot product is summed exactly in int32 per lane (4
// weights; for Q4_0, 8), converted, and added to the row's float lanes (8; for Q4_0, 4)
// with one fused multiply-add by d_w * d_x; the lanes are summed at the end. Row by row,
// block by block, the same float steps whether the row is one of a tile of eight or alone
// (one_row): a result never depends on the tiling, the batch, or the instruction set.

// Where row j's block b lies: rows of a group of eight are interleaved block by block
// ([8 fp16 scales][8 x the quants]), the groups of a band block by block (see dense.hpp);
// the rows after the groups are plain GGUF blocks.
template <class Block>
struct row_blocks {
  const uint8_t* base;
  size_t step, d_at, qs_at;  // bytes: block to block, to the scale, to the quants
  row_blocks(const uint8_t* w, size_t stride, size_t grouped_rows, size_t band_groups, size_t j) {
    constexpr size_t qs_bytes = sizeof(Block) - 2;
    if (j < grouped_rows) {
      const auto g = place_of_group<Block>(band_groups, stride, grouped_rows, j / 8 * 8);
      base = w + g.offset;
      step = g.block_stride;
      d_at = 2 * (j % 8);
      qs_at = 16 + (j % 8) * qs_bytes;
    } else {
      base = w + j * stride;
      step = sizeof(Block);
      d_at = 0;
      qs_at = 2;
    }
  }
};

// This many block steps ahead, a group's lines are fetched meanwhile.
constexpr size_t prefetch_steps = 8;
template <size_t bytes>
inline void prefetch_group_block(const uint8_t* at) {
#pragma GCC unroll 8
  for (size_t off = 0; off < bytes; off += 64)
    _mm_prefetch(reinterpret_cast<const char*>(at + off), _MM_HINT_T0);
  _mm_prefetch(reinterpret_cast<const char*>(at + bytes - 1), _MM_HINT_T0);
}

// Q8_0, eight rows of one group: per block step, one 16-byte load of the scales and the
// quants of the eight rows one after another, read as one stream.
inline void tile_q8_eight(const uint8_t* group, size_t block_stride, const block_q8_act* x, size_t nb,
                          const float* bias, float* y, size_t j) {
  constexpr size_t qs_bytes = sizeof(block_q8_0) - 2, step = 8 * sizeof(block_q8_0);
  __m256 acc[8];
#pragma GCC unroll 8
  for (int o = 0; o < 8; ++o)
    acc[o] = _mm256_setzero_ps();
  for (size_t b = 0; b < nb; ++b) {
    const uint8_t* at = group + b * block_stride;
    prefetch_group_block<step>(at + prefetch_steps * block_stride);
    const block_q8_act& xb = x[b];
    const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.qs));
    const __m256 scale = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(at))),
                                       _mm256_set1_ps(xb.d));
#pragma GCC unroll 8
    for (int o = 0; o < 8; ++o) {
      block_weights_q8 wb;
      wb.load(at + 16 + o * qs_bytes);
      const __m256 lane_scale = _mm256_permutevar8x32_ps(scale, _mm256_set1_epi32(o));
      acc[o] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(wb.dot(xq)), lane_scale, acc[o]);
    }
  }
  for (int o = 0; o < 8; ++o) {
    const float s = hsum(acc[o]);
    y[j + o] = bias != nullptr ? s + bias[j + o] : s;
  }
}

// Q4_0, eight rows of one group, two per register: the same float steps per row as
// one_row<block_q4_0> below.
inline void tile_q4_eight(const uint8_t* group, size_t block_stride, const block_q8_act* x, size_t nb,
                          const float* bias, float* y, size_t j) {
  constexpr size_t step = 8 * sizeof(block_q4_0);
  __m256 acc[4];
#pragma GCC unroll 4
  for (int p = 0; p < 4; ++p)
    acc[p] = _mm256_setzero_ps();
  for (size_t b = 0; b < nb; ++b) {
    const uint8_t* at = group + b * block_stride;
    prefetch_group_block<step>(at + prefetch_steps * block_stride);
    const q4_activation xa(x[b]);
    const __m256 scale = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(at))),
                                       _mm256_set1_ps(x[b].d));
#pragma GCC unroll 4
    for (int p = 0; p < 4; ++p) {
      const __m256 pair_scale =
          _mm256_permutevar8x32_ps(scale, _mm256_setr_epi32(2 * p, 2 * p, 2 * p, 2 * p, 2 * p + 1, 2 * p + 1,
                                                            2 * p + 1, 2 * p + 1));
      const __m256i sums =
          q4_rows(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(at + 16 + 32 * p)), xa);
      acc[p] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), pair_scale, acc[p]);
    }
  }
  for (int p = 0; p < 4; ++p)
    for (int half = 0; half < 2; ++half) {
      const float s = hsum4(half == 0 ? _mm256_castps256_ps128(acc[p]) : _mm256_extractf128_ps(acc[p], 1));
      const size_t o = j + static_cast<size_t>(2 * p + half);
      y[o] = bias != nullptr ? s + bias[o] : s;
    }
}

// One weight row (a row after the groups) times one activation row: the same float steps
// per lane as the eight-row tiles.
template <class Block>
struct one_row;

template <>
struct one_row<block_q8_0> {
  static void run(const row_blocks<block_q8_0>& row, const block_q8_act* x, size_t nb, const float* bias,
                  float* y, size_t j) {
    __m256 acc = _mm256_setzero_ps();
    for (size_t b = 0; b < nb; ++b) {
      const uint8_t* at = row.base + b * row.step;
      block_weights_q8 wb;
      wb.load(at + row.qs_at);
      uint16_t d;
      __builtin_memcpy(&d, at + row.d_at, sizeof d);
      const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qs));
      // the same product as a lane of tile_q8_eight's scale vector
      const __m256 scale = _mm256_mul_ps(_mm256_set1_ps(_cvtsh_ss(d)), _mm256_set1_ps(x[b].d));
      acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(wb.dot(xq)), scale, acc);
    }
    const float s = hsum(acc);
    y[j] = bias != nullptr ? s + bias[j] : s;
  }
};

template <>
struct one_row<block_q4_0> {
  static void run(const row_blocks<block_q4_0>& row, const block_q8_act* x, size_t nb, const float* bias,
                  float* y, size_t j) {
    __m128 acc = _mm_setzero_ps();
    for (size_t b = 0; b < nb; ++b) {
      const uint8_t* at = row.base + b * row.step;
      // the row alone in the low half
      const __m256i w = _mm256_zextsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(at + row.qs_at)));
      const __m128i sums = _mm256_castsi256_si128(q4_rows(w, q4_activation(x[b])));
      uint16_t d;
      __builtin_memcpy(&d, at + row.d_at, sizeof d);
      const __m128 scale = _mm_mul_ps(_mm_set1_ps(_cvtsh_ss(d)), _mm_set1_ps(x[b].d));
      acc = _mm_fmadd_ps(_mm_cvtepi32_ps(sums), scale, acc);
    }
    const float s = hsum4(acc);
    y[j] = bias != nullptr ? s + bias[j] : s;
  }
};

// Eight weight rows (one group) times every activation row: each file defines its own
// (dense_avx2.cpp, dense_avx512.cpp), with the arithmetic per row of the tiles above.
// run() takes up to groups_per_pass(rows) groups of one band side by side (the first at
// `group`, the next group blocks after it; block to block `block_stride`).
template <class Block>
struct eight_rows;

template <class Block>
void dense_int(const uint8_t* w, size_t stride, size_t grouped_rows, size_t band_groups, const block_q8_act* x,
               size_t rows, size_t cols, const float* bias, float* y, size_t ldy, size_t j_begin, size_t j_end) {
  const size_t nb = cols / block_size, band_rows = 8 * band_groups;
  const size_t most = eight_rows<Block>::groups_per_pass(rows);
  for (size_t j = j_begin; j < j_end;) {
    if (j % 8 == 0 && j + 8 <= grouped_rows && j + 8 <= j_end) {
      const size_t band_end = (j / band_rows + 1) * band_rows < grouped_rows
                                  ? (j / band_rows + 1) * band_rows
                                  : grouped_rows;
      size_t groups = most;
      while (groups > 1 && (j + 8 * groups > band_end || j + 8 * groups > j_end))
        groups /= 2;
      const auto g = place_of_group<Block>(band_groups, stride, grouped_rows, j);
      eight_rows<Block>::run(w + g.offset, groups, g.block_stride, x, rows, nb, bias, y, ldy, j);
      j += 8 * groups;
      continue;
    }
    const row_blocks<Block> row(w, stride, grouped_rows, band_groups, j);
    for (size_t r = 0; r < rows; ++r)
      one_row<Block>::run(row, x + r * nb, nb, bias, y + r * ldy, j);
    ++j;
  }
}
