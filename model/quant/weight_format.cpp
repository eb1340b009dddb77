#include "model/quant/weight_format.hpp"

#include "model/quant/blocks.hpp"

namespace adapterd::model::quant {

const char* name_of(weight_format f) {
  switch (f) {
    case weight_format::f32: return "f32";
    case weight_format::bf16: return "bf16";
    case weight_format::q8_0: return "int8";
    case weight_format::q4_0: return "q4";
  }
  return "f32";
}

std::optional<weight_format> weight_format_from_name(const std::string& name) {
  for (auto f : {weight_format::f32, weight_format::bf16, weight_format::q8_0, weight_format::q4_0})
    if (name == name_of(f))
      return f;
  return std::nullopt;
}

size_t block_weights(weight_format f) {
  return f == weight_format::q8_0 || f == weight_format::q4_0 ? block_size : 1;
}

size_t block_bytes(weight_format f) {
  switch (f) {
    case weight_format::f32: return sizeof(float);
    case weight_format::bf16: return sizeof(uint16_t);
    case weight_format::q8_0: return sizeof(block_q8_0);
    case weight_format::q4_0: return sizeof(block_q4_0);
  }
  return sizeof(float);
}

}  // namespace adapterd::model::quant
