#pragma once
// Writing models and adapters in exactly the Hugging Face / PEFT layout: config.json,
// generation_config.json, a byte-level BPE tokenizer learned from a text, and PEFT's
// adapter_config.json. Shared by the tiny test models and the trainer; no libtorch.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "model/result.hpp"

namespace adapterd::model {

struct llama_shape {
  int64_t hidden = 128;
  int64_t intermediate = 344;
  int64_t layers = 4;
  int64_t heads = 4;
  int64_t kv_heads = 2;
  int64_t max_positions = 1024;
};

struct written_tokenizer {
  int64_t vocab_size = 0;  // 256 bytes, the merges, then BOS and EOS
  int32_t bos = 0, eos = 0;
};

/// `count` byte-level BPE merges learned from `corpus`, most frequent pair first (ties: the
/// smallest pair).
std::vector<std::pair<std::string, std::string>> learn_byte_level_merges(const std::string& corpus, int count);

/// tokenizer.json and tokenizer_config.json (with a plain-text chat template) in `dir`.
result<written_tokenizer> write_byte_level_tokenizer(const std::string& dir, const std::string& corpus,
                                                     int merges, int64_t max_positions);

/// config.json (LlamaForCausalLM) and generation_config.json in `dir`.
result<bool> write_llama_config(const std::string& dir, const llama_shape& shape, const written_tokenizer& tok);

/// PEFT's adapter_config.json in `dir`.
result<bool> write_peft_config(const std::string& dir, int r, double alpha, const std::vector<std::string>& targets,
                               const std::string& base_model_name);

}  // namespace adapterd::model
