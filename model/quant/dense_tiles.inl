// The kernels' tiles, compiled once per instruction set (dense_avx2.cpp, dense_avx512.cpp):
// the including file defines, in an unnamed namespace of its own, `dot_u8s8` (8 int32 lanes, each the sum
// of 4 u8 x s8 products), `dot_u8s8_minus`, and `eight_rows` after the include. No library
// code is used here: an inline library function compiled with AVX-512 could be picked by
// the linker for the whole program and fault on a CPU without it.

inline float hsum(__m256 v) {
  __m128 lo = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  __m128 shuf = _mm_movehdup_ps(lo);
  __m128 sums = _mm_add_ps(lo, shuf);
  shuf = _mm_movehl_ps(shuf, sums);
  return _mm_cvtss_f32(_mm_add_ss(sums, shuf));
}

// Each lane (4 weights) of one block times the activation block, summed in int32, exact.
// Q8_0: |w| as the unsigned operand and x with w's sign as the signed one. Q4_0: the
// unsigned nibbles times x, less the precomputed 8 x (sum of x) of the lane.
struct block_weights_q8 {
  __m256i w;
  void load(const uint8_t* qs) { w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs)); }
  __m256i dot(const block_q8_act& x, __m256i xq) const {
    (void)x;
    return dot_u8s8(_mm256_sign_epi8(w, w), _mm256_sign_epi8(xq, w));
  }
};
struct block_weights_q4 {
  __m256i nibbles;
  void load(const uint8_t* qs) {
    // The 16 bytes in both halves (a load, no shuffle), the high half shifted by 4: low
    // nibbles are weights 0-15, high nibbles 16-31.
    const __m256i both = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
    nibbles = _mm256_and_si256(_mm256_srlv_epi64(both, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(0x0f));
  }
  __m256i dot(const block_q8_act& x, __m256i xq) const {
    return dot_u8s8_minus(nibbles, xq, _mm256_load_si256(reinterpret_cast<const __m256i*>(x.offset8)));
  }
};
template <class Block>
struct weights_of;
template <>
struct weights_of<block_q8_0> {
  using type = block_weights_q8;
};
template <>
struct weights_of<block_q4_0> {
  using type = block_weights_q4;
};

// OUT weight rows times ROWS activation rows over nb blocks.
// Integer kernels: each block's dot product is summed exactly in int32 per lane (4 weights),
// converted, and added to the row's 8 float lanes with one fused multiply-add by d_w * d_x;
// the lanes are summed at the end. Row by row, block by block, the same float steps whether
// the row is one of a tile of eight (tile_int8) or alone (tile_int1): a result never
// depends on the tiling, the batch, or the instruction set.

// Where row j's block b lies: rows of a group of eight are interleaved block by block
// ([8 fp16 scales][8 x the quants]; see dense.hpp), the rows after the groups are plain
// GGUF blocks.
template <class Block>
struct row_blocks {
  const uint8_t* base;
  size_t step, d_at, qs_at;  // bytes: block to block, to the scale, to the quants
  row_blocks(const uint8_t* w, size_t stride, size_t grouped_rows, size_t j) {
    constexpr size_t qs_bytes = sizeof(Block) - 2;
    if (j < grouped_rows) {
      base = w + (j / 8) * 8 * stride;
      step = 8 * sizeof(Block);
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

// A group is one stream; this many block steps ahead, its lines are fetched meanwhile.
constexpr size_t prefetch_steps = 8;
template <size_t step>
inline void prefetch_step(const uint8_t* at) {
#pragma GCC unroll 8
  for (size_t off = 0; off < step; off += 64)
    _mm_prefetch(reinterpret_cast<const char*>(at + off), _MM_HINT_T0);
  _mm_prefetch(reinterpret_cast<const char*>(at + step - 1), _MM_HINT_T0);
}

// Eight rows of one group: per block step, one 16-byte load of the scales and the quants
// of the eight rows one after another, read as one stream.
template <class Block>
inline void tile_int8(const uint8_t* group, const block_q8_act* x, size_t nb, const float* bias, float* y,
                      size_t j) {
  using block_weights = typename weights_of<Block>::type;
  constexpr size_t qs_bytes = sizeof(Block) - 2, step = 8 * sizeof(Block);
  __m256 acc[8];
#pragma GCC unroll 8
  for (int o = 0; o < 8; ++o)
    acc[o] = _mm256_setzero_ps();
  for (size_t b = 0; b < nb; ++b) {
    const uint8_t* at = group + b * step;
    prefetch_step<step>(at + prefetch_steps * step);
    const block_q8_act& xb = x[b];
    const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.qs));
    const __m256 scale = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(at))),
                                       _mm256_set1_ps(xb.d));
#pragma GCC unroll 8
    for (int o = 0; o < 8; ++o) {
      block_weights wb;
      wb.load(at + 16 + o * qs_bytes);
      const __m256 lane_scale = _mm256_permutevar8x32_ps(scale, _mm256_set1_epi32(o));
      acc[o] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(wb.dot(xb, xq)), lane_scale, acc[o]);
    }
  }
  for (int o = 0; o < 8; ++o) {
    const float s = hsum(acc[o]);
    y[j + o] = bias != nullptr ? s + bias[j + o] : s;
  }
}

template <class Block>
inline void tile_int1(const row_blocks<Block>& row, const block_q8_act* x, size_t nb, const float* bias, float* y,
                      size_t j) {
  using block_weights = typename weights_of<Block>::type;
  __m256 acc = _mm256_setzero_ps();
  for (size_t b = 0; b < nb; ++b) {
    const uint8_t* at = row.base + b * row.step;
    block_weights wb;
    wb.load(at + row.qs_at);
    uint16_t d;
    __builtin_memcpy(&d, at + row.d_at, sizeof d);
    const block_q8_act& xb = x[b];
    const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.qs));
    // the same product as a lane of tile_int8's scale vector
    const __m256 scale = _mm256_mul_ps(_mm256_set1_ps(_cvtsh_ss(d)), _mm256_set1_ps(xb.d));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(wb.dot(xb, xq)), scale, acc);
  }
  const float s = hsum(acc);
  y[j] = bias != nullptr ? s + bias[j] : s;
}

// Eight weight rows (one group) times every activation row: tile_int8 by default; a file
// with wider registers defines its own, with the same arithmetic per row (dense_avx512.cpp).
template <class Block>
struct eight_rows;

template <class Block>
void dense_int(const uint8_t* w, size_t stride, size_t grouped_rows, const block_q8_act* x, size_t rows,
               size_t cols, const float* bias, float* y, size_t ldy, size_t j_begin, size_t j_end) {
  const size_t nb = cols / block_size;
  for (size_t j = j_begin; j < j_end;) {
    if (j % 8 == 0 && j + 8 <= grouped_rows && j + 8 <= j_end) {
      eight_rows<Block>::run(w + j * stride, x, rows, nb, bias, y, ldy, j);
      j += 8;
      continue;
    }
    const row_blocks<Block> row(w, stride, grouped_rows, j);
    for (size_t r = 0; r < rows; ++r)
      tile_int1<Block>(row, x + r * nb, nb, bias, y + r * ldy, j);
    ++j;
  }
}
