#pragma once
// The entry points of the per-instruction-set kernel files, on raw pointers only (those
// files use no library code; see dense_tiles.inl). dense.cpp chooses between them.
#include <cstddef>
#include <cstdint>

#include "model/quant/blocks.hpp"
#include "model/quant/group_layout.hpp"

#define ADAPTERD_QUANT_ENTRIES                                                                  \
  void dense_q8_0(const uint8_t* w, size_t stride, size_t grouped_rows, size_t band_groups,     \
                  const block_q8_act* x, size_t rows, size_t cols, const float* bias, float* y, \
                  size_t ldy, size_t j_begin, size_t j_end);                                    \
  void dense_q4_0(const uint8_t* w, size_t stride, size_t grouped_rows, size_t band_groups,     \
                  const block_q8_act* x, size_t rows, size_t cols, const float* bias, float* y, \
                  size_t ldy, size_t j_begin, size_t j_end);

namespace adapterd::model::quant {
namespace avx2 {
ADAPTERD_QUANT_ENTRIES
/// quantize_row_q8_act and f32_to_bf16 (blocks.hpp) over rows of activations, bit for bit
/// the same values: the per-token preparation of a matrix's input, on one thread.
void quantize_rows_q8_act(const float* x, size_t ldx, size_t rows, size_t cols, block_q8_act* out);
void round_rows_bf16(const float* x, size_t ldx, size_t rows, size_t cols, uint16_t* out);
/// bf16 weights times fp32 activations.
void dense_bf16(const uint8_t* w, size_t stride, size_t grouped_rows, const float* x, size_t ldx,
                size_t rows, size_t cols, const float* bias, float* y, size_t ldy, size_t j_begin,
                size_t j_end);
}  // namespace avx2
namespace avx512 {
ADAPTERD_QUANT_ENTRIES
/// bf16 weights times activations rounded to bf16 (rows x cols, packed).
void dense_bf16(const uint8_t* w, size_t stride, size_t grouped_rows, const uint16_t* x,
                size_t rows, size_t cols, const float* bias, float* y, size_t ldy, size_t j_begin,
                size_t j_end);
}  // namespace avx512
}  // namespace adapterd::model::quant

#undef ADAPTERD_QUANT_ENTRIES
