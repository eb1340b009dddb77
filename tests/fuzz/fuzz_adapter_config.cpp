// adapter_config.json: parsing, and resolving each module's rank and scale.
#include <cstdint>
#include <string>

#include "model/io/lora_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto config = adapterd::model::parse_lora_config(std::string(reinterpret_cast<const char*>(data), size));
  if (!config)
    return 0;
  for (const char* module : {"model.layers.0.self_attn.q_proj", "model.layers.11.mlp.down_proj", "lm_head"}) {
    (void)config->rank_for(module);
    (void)config->scale_for(module);
  }
  return 0;
}
