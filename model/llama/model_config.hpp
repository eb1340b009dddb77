#pragma once
// What config.json (and generation_config.json) say about a Llama-family model.
// Anything this project does not implement is a load error naming it.
#include <cstdint>
#include <string>
#include <vector>

#include "model/result.hpp"

namespace adapterd::model {

enum class rope_scaling_type { none, linear, llama3 };

struct rope_config {
  double theta = 10000.0;
  rope_scaling_type scaling = rope_scaling_type::none;
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position = 8192;
};

struct model_config {
  std::string architecture;  // e.g. LlamaForCausalLM
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v biases (always on for Qwen2)
  bool o_bias = false;
  bool mlp_bias = false;
  int64_t sliding_window = 0;  // Mistral: a query sees only the last `sliding_window` keys; 0 = all
  rope_config rope;
  std::vector<int32_t> eos_ids;  // config.json and generation_config.json, merged
  int32_t bos_id = -1;
};

/// Parses the contents of config.json; `generation_config` may be empty.
result<model_config> parse_model_config(const std::string& config_json,
                                        const std::string& generation_config_json);

/// Reads and parses `dir`/config.json and `dir`/generation_config.json.
result<model_config> load_model_config(const std::string& dir);

}  // namespace adapterd::model
