#pragma once
// GGUF's Q8_0 and Q4_0 blocks, byte for byte, their reference quantisation (ggml's
// quantize_row_q8_0_ref / quantize_row_q4_0_ref) and the scalar conversions they need.
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace adapterd::model::quant {

constexpr size_t block_size = 32;

#pragma pack(push, 1)
struct block_q8_0 {
  uint16_t d;  // fp16 scale: w = d * qs[i]
  int8_t qs[block_size];
};
struct block_q4_0 {
  uint16_t d;  // fp16 scale: w = d * (nibble - 8)
  uint8_t
      qs[block_size / 2];  // weight i in the low nibble of byte i, weight i + 16 in its high nibble
};
#pragma pack(pop)
static_assert(sizeof(block_q8_0) == 34 && sizeof(block_q4_0) == 18, "GGUF block sizes");

/// Activations quantised per block for the integer kernels: a float scale (finer than the
/// weights' fp16, it costs nothing at these sizes), 32 int8 values, and for Q4_0 the
/// weights' offset of 8 as a start value per int32 lane. A Q4_0 kernel multiplies the
/// unsigned nibbles (0..15) by the values: its lane i holds the weights 4i..4i+3 (low
/// nibbles) and 16+4i..16+4i+3 (high nibbles) and starts from -8 x the sum of those eight
/// values, so the offset comes out exactly, in integers. One cache line.
struct alignas(64) block_q8_act {
  int8_t qs[block_size];
  int32_t q4_start[4];
  float d;
};

float fp16_to_f32(uint16_t h);
uint16_t f32_to_fp16(float f);  // round to nearest even, as ggml's GGML_FP32_TO_FP16
inline float bf16_to_f32(uint16_t b) {
  uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
uint16_t f32_to_bf16(float f);  // round to nearest even; NaN stays NaN

void quantize_row_q8_0(const float* x, block_q8_0* out, size_t k);
void quantize_row_q4_0(const float* x, block_q4_0* out, size_t k);
void quantize_row_q8_act(const float* x, block_q8_act* out, size_t k);
void dequantize_row_q8_0(const block_q8_0* in, float* y, size_t k);
void dequantize_row_q4_0(const block_q4_0* in, float* y, size_t k);

}  // namespace adapterd::model::quant
