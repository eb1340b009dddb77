#include "model/lora_config.hpp"

#include <cmath>
#include <regex>

#include <nlohmann/json.hpp>

namespace adapterd::model {

namespace {

using json = nlohmann::json;

// PEFT: re.match(rf"(.*\.)?({key})$", module) over the pattern keys, first match wins.
template <class T>
const T* find_pattern(const std::map<std::string, T>& patterns, const std::string& module) {
  for (const auto& [key, value] : patterns) {
    try {
      if (std::regex_match(module, std::regex("(.*\\.)?(" + key + ")")))
        return &value;
    } catch (const std::regex_error&) {
      if (module == key)
        return &value;
    }
  }
  return nullptr;
}

error invalid(const std::string& what) {
  return make_error(errc::invalid_adapter, "adapter_config.json: " + what);
}

}  // namespace

int lora_config::rank_for(const std::string& module) const {
  const auto* r_pat = find_pattern(rank_pattern, module);
  return r_pat ? *r_pat : r;
}

double lora_config::scale_for(const std::string& module) const {
  const auto* a_pat = find_pattern(alpha_pattern, module);
  double a = a_pat ? *a_pat : alpha;
  double rank = rank_for(module);
  return use_rslora ? a / std::sqrt(rank) : a / rank;
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
    c.r = root.value("r", 8);
    c.alpha = root.value("lora_alpha", static_cast<double>(c.r));
    c.use_rslora = root.value("use_rslora", false);
    if (c.r <= 0)
      return invalid("r must be positive");
    const json ranks = root.value("rank_pattern", json::object());  // items() needs an lvalue
    for (const auto& [k, v] : ranks.items())
      c.rank_pattern[k] = v.get<int>();
    const json alphas = root.value("alpha_pattern", json::object());
    for (const auto& [k, v] : alphas.items())
      c.alpha_pattern[k] = v.get<double>();
    if (root.contains("base_model_name_or_path") && root["base_model_name_or_path"].is_string())
      c.base_model_name = root["base_model_name_or_path"].get<std::string>();
    return c;
  } catch (const json::exception& e) {
    return invalid(e.what());
  }
}

}  // namespace adapterd::model
