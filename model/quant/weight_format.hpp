#pragma once
// The number formats a base model's linear weights can be held in on the CPU, chosen at
// load (--weights). Block layouts are GGUF's, so a GGUF loader could map those files as
// they are: Q8_0 is 32 int8 weights and one fp16 scale (34 bytes), Q4_0 is 32 4-bit
// weights and one fp16 scale (18 bytes).
#include <cstddef>
#include <optional>
#include <string>

namespace adapterd::model::quant {

enum class weight_format { f32, bf16, q8_0, q4_0 };

/// "f32", "bf16", "int8", "q4": the names --weights and /health use.
const char* name_of(weight_format f);
/// The format a --weights name stands for; "auto" is resolved by the loader, not here.
std::optional<weight_format> weight_format_from_name(const std::string& name);

/// Weights per block (1 for the unblocked formats) and bytes per block.
size_t block_weights(weight_format f);
size_t block_bytes(weight_format f);
/// Bytes of one row of `cols` weights; cols must be a multiple of block_weights(f).
inline size_t row_bytes(weight_format f, size_t cols) {
  return cols / block_weights(f) * block_bytes(f);
}

}  // namespace adapterd::model::quant
