#pragma once
// Writes a deterministic tiny random Llama model (config, byte-level BPE tokenizer trained
// on a built-in text, fp32 safetensors) and a LoRA adapter for it, in exactly the Hugging
// Face / PEFT layout. Tests and the default run use it; no libtorch needed.
#include <cstdint>
#include <string>

#include "model/io/hf_layout.hpp"
#include "model/result.hpp"

namespace adapterd::model {

struct tiny_model_spec {
  uint64_t seed = 1234;
  llama_shape shape;  // hidden 128, intermediate 344, 4 layers, 4 heads, 2 KV heads, 1024 positions
  int merges = 300;
  int lora_rank = 8;
  int adapters = 1;  // adapter i > 0 goes to adapter_dir + "-" + i, with its own random weights
};

/// Writes `model_dir` and `adapter_dir` (plus adapter_dir-1 ... when spec.adapters > 1).
result<bool> write_tiny_model(const tiny_model_spec& spec, const std::string& model_dir,
                              const std::string& adapter_dir);

}  // namespace adapterd::model
