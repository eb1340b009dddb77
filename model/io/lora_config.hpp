#pragma once
// What a PEFT adapter_config.json says: rank and alpha (with per-module patterns) and so
// the scale of each adapted module.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/result.hpp"
#include "model/tokenizer/regex.hpp"

namespace adapterd::model {

struct lora_config {
  int r = 8;
  double alpha = 8;
  bool use_rslora = false;
  std::map<std::string, int> rank_pattern;
  std::map<std::string, double> alpha_pattern;
  // PEFT's "(.*\.)?(KEY)$" of every pattern key, compiled once at parse time.
  std::map<std::string, std::shared_ptr<const regex>> compiled_patterns;
  std::string base_model_name;

  /// Rank and scale of the module named like "model.layers.0.self_attn.q_proj", as PEFT
  /// resolves them: a pattern key matches when the name ends with it at a '.' boundary.
  /// A pattern that cannot be decided within bounded backtracking is an error.
  result<int> rank_for(const std::string& module) const;
  result<double> scale_for(const std::string& module) const;
};

result<lora_config> parse_lora_config(const std::string& adapter_config_json);

}  // namespace adapterd::model
