#include "model/io/lora_config.hpp"

#include <cmath>

#include <nlohmann/json.hpp>

#include "model/io/json_number.hpp"

namespace adapterd::model {

namespace {

using json = nlohmann::json;

// PEFT: re.match(rf"(.*\.)?({key})$", module) over the pattern keys, first match wins.
template <class T>
result<const T*> find_pattern(const std::map<std::string, T>& patterns,
                              const std::map<std::string, std::shared_ptr<const regex>>& compiled,
                              const std::string& module) {
  for (const auto& [key, value] : patterns) {
    auto re = compiled.find(key);
    if (re == compiled.end()) {  // not a regex PCRE2 takes: PEFT would match it literally at best
      if (module == key)
        return &value;
      continue;
    }
    auto hit = re->second->matches_whole(module);
    if (!hit)
      return make_error(errc::invalid_adapter, "adapter_config.json: pattern '" + key.substr(0, 64)
                                                 + "' cannot be matched safely: " + hit.err().message);
    if (*hit)
      return &value;
  }
  return static_cast<const T*>(nullptr);
}

constexpr int max_rank = 65536;
constexpr size_t max_patterns = 4096;
constexpr size_t max_pattern_bytes = 512;

error invalid(const std::string& what) {
  return make_error(errc::invalid_adapter, "adapter_config.json: " + what);
}

}  // namespace

result<int> lora_config::rank_for(const std::string& module) const {
  auto r_pat = find_pattern(rank_pattern, compiled_patterns, module);
  if (!r_pat)
    return r_pat.err();
  return *r_pat ? **r_pat : r;
}

result<double> lora_config::scale_for(const std::string& module) const {
  auto a_pat = find_pattern(alpha_pattern, compiled_patterns, module);
  if (!a_pat)
    return a_pat.err();
  auto rank = rank_for(module);
  if (!rank)
    return rank.err();
  double a = *a_pat ? **a_pat : alpha;
  return use_rslora ? a / std::sqrt(static_cast<double>(*rank)) : a / *rank;
}

result<lora_config> parse_lora_config(const std::string& text) {
  auto root = json::parse(text, nullptr, false);
  if (root.is_discarded() || !root.is_object())
    return invalid("not a JSON object");
  try {
    auto type = root.value("peft_type", std::string("LORA"));
    if (type != "LORA")
      return invalid("peft_type '" + type + "' is not a LoRA adapter");
    if (root.value("use_dora", false))
      return invalid("DoRA adapters (use_dora) are not supported");
    if (root.value("fan_in_fan_out", false))
      return invalid("fan_in_fan_out adapters are not supported");
    if (root.contains("modules_to_save") && !root["modules_to_save"].is_null()
        && !root["modules_to_save"].empty())
      return invalid("modules_to_save (replaced full modules) is not supported");
    auto bias = root.value("bias", std::string("none"));
    if (bias != "none" || root.value("lora_bias", false))
      return invalid("LoRA bias terms are not supported");
    lora_config c;
    c.r = json_integer_or<int>(root, "r", 8);
    c.alpha = root.value("lora_alpha", static_cast<double>(c.r));
    c.use_rslora = root.value("use_rslora", false);
    if (c.r <= 0 || c.r > max_rank)
      return invalid("r must be between 1 and " + std::to_string(max_rank));
    if (!std::isfinite(c.alpha))
      return invalid("lora_alpha must be a finite number");
    const json ranks = root.value("rank_pattern", json::object());  // items() needs an lvalue
    const json alphas = root.value("alpha_pattern", json::object());
    if (!ranks.is_object() || !alphas.is_object() || ranks.size() + alphas.size() > max_patterns)
      return invalid("rank_pattern and alpha_pattern must be objects of at most " + std::to_string(max_patterns) + " keys");
    for (const auto& [k, v] : ranks.items()) {
      auto rank = json_integer<int>(v, "rank_pattern '" + k.substr(0, 64) + "'");
      if (rank <= 0 || rank > max_rank)
        return invalid("rank_pattern '" + k.substr(0, 64) + "' has rank " + std::to_string(rank)
                       + "; ranks must be between 1 and " + std::to_string(max_rank));
      c.rank_pattern[k] = rank;
    }
    for (const auto& [k, v] : alphas.items()) {
      c.alpha_pattern[k] = v.get<double>();
      if (!std::isfinite(c.alpha_pattern[k]))
        return invalid("alpha_pattern '" + k.substr(0, 64) + "' must be a finite number");
    }
    for (const auto* patterns : {&ranks, &alphas})
      for (const auto& [k, v] : patterns->items()) {
        if (k.empty() || k.size() > max_pattern_bytes)
          return invalid("pattern keys must be 1 to " + std::to_string(max_pattern_bytes) + " bytes long");
        if (auto re = regex::compile("(?:.*\\.)?(?:" + k + ")"))
          c.compiled_patterns[k] = *re;
      }
    if (root.contains("base_model_name_or_path") && root["base_model_name_or_path"].is_string())
      c.base_model_name = root["base_model_name_or_path"].get<std::string>();
    return c;
  } catch (const std::exception& e) {  // json::exception, or a json_integer out of range
    return invalid(e.what());
  }
}

}  // namespace adapterd::model
