#include "model/llama/model_config.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "model/io/json_number.hpp"

#include "model/io/text_file.hpp"

namespace adapterd::model {

namespace {

using json = nlohmann::json;

error invalid(const std::string& what) {
  return make_error(errc::invalid_model, "config.json: " + what);
}

void add_ids(const json& node, std::vector<int32_t>& out) {
  auto add = [&](const json& v) {
    if (v.is_number_integer() && std::find(out.begin(), out.end(), v.get<int32_t>()) == out.end())
      out.push_back(v.get<int32_t>());
  };
  if (node.is_array())
    for (const auto& v : node)
      add(v);
  else
    add(node);
}

result<rope_config> parse_rope(const json& root) {
  rope_config rope;
  rope.theta = root.value("rope_theta", 10000.0);
  if (!root.contains("rope_scaling") || root["rope_scaling"].is_null())
    return rope;
  const auto& s = root["rope_scaling"];
  // transformers accepts the legacy "type" key as well as "rope_type".
  auto type = s.value("rope_type", s.value("type", std::string("default")));
  if (type == "default")
    return rope;
  rope.factor = s.value("factor", 1.0);
  if (rope.factor <= 0)
    return invalid("rope_scaling.factor must be positive");
  if (type == "linear") {
    rope.scaling = rope_scaling_type::linear;
  } else if (type == "llama3") {
    rope.scaling = rope_scaling_type::llama3;
    rope.low_freq_factor = s.value("low_freq_factor", 1.0);
    rope.high_freq_factor = s.value("high_freq_factor", 4.0);
    rope.original_max_position = s.value("original_max_position_embeddings", int64_t{8192});
    if (rope.high_freq_factor <= rope.low_freq_factor)
      return invalid("rope_scaling high_freq_factor must exceed low_freq_factor");
  } else {
    return invalid("unsupported rope_scaling type '" + type + "'");
  }
  return rope;
}

}  // namespace

result<model_config> parse_model_config(const std::string& config_json,
                                        const std::string& generation_config_json) {
  auto root = json::parse(config_json, nullptr, false);
  if (root.is_discarded() || !root.is_object())
    return invalid("not a JSON object");
  try {
    model_config c;
    if (root.contains("architectures") && root["architectures"].is_array()
        && !root["architectures"].empty())
      c.architecture = root["architectures"][0].get<std::string>();
    static const char* supported[] = {"LlamaForCausalLM", "MistralForCausalLM",
                                      "Qwen2ForCausalLM"};
    if (std::find(std::begin(supported), std::end(supported), c.architecture) == std::end(supported))
      return invalid("unsupported architecture '" + c.architecture
                     + "' (supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM)");
    auto act = root.value("hidden_act", std::string("silu"));
    if (act != "silu")
      return invalid("unsupported hidden_act '" + act + "'");
    if (json_integer_or<int64_t>(root, "pretraining_tp", 1) != 1)
      return invalid("pretraining_tp other than 1 is not supported");
    c.hidden_size = json_integer<int64_t>(root.at("hidden_size"), "hidden_size");
    c.intermediate_size = json_integer<int64_t>(root.at("intermediate_size"), "intermediate_size");
    c.num_layers = json_integer<int64_t>(root.at("num_hidden_layers"), "num_hidden_layers");
    c.num_heads = json_integer<int64_t>(root.at("num_attention_heads"), "num_attention_heads");
    c.num_kv_heads = root.value("num_key_value_heads", c.num_heads);
    c.vocab_size = json_integer<int64_t>(root.at("vocab_size"), "vocab_size");
    if (c.hidden_size <= 0 || c.intermediate_size <= 0 || c.num_layers <= 0 || c.num_heads <= 0
        || c.num_kv_heads <= 0 || c.vocab_size <= 0)
      return invalid("sizes must be positive");
    c.head_dim = c.hidden_size / c.num_heads;
    if (root.contains("head_dim") && root["head_dim"].is_number_integer())
      c.head_dim = json_integer<int64_t>(root["head_dim"], "head_dim");
    if (c.num_heads % c.num_kv_heads != 0)
      return invalid("num_attention_heads must be a multiple of num_key_value_heads");
    if (c.head_dim <= 0 || c.head_dim % 2 != 0)
      return invalid("head_dim must be positive and even");
    c.max_position_embeddings = root.value("max_position_embeddings", int64_t{2048});
    c.rms_norm_eps = root.value("rms_norm_eps", 1e-6);
    c.tie_word_embeddings = root.value("tie_word_embeddings", false);
    bool qwen2 = c.architecture == "Qwen2ForCausalLM";
    c.attention_bias = qwen2 || root.value("attention_bias", false);
    c.o_bias = !qwen2 && root.value("attention_bias", false);
    c.mlp_bias = root.value("mlp_bias", false);
    auto rope = parse_rope(root);
    if (!rope)
      return rope.err();
    c.rope = *rope;
    // Mistral attends within its sliding window; Qwen2 ignores the window unless
    // use_sliding_window is set, which (per layer) is not supported here.
    if (qwen2 && root.value("use_sliding_window", false))
      return invalid("Qwen2 use_sliding_window is not supported");
    if (c.architecture == "MistralForCausalLM" && root.contains("sliding_window")
        && root["sliding_window"].is_number_integer())
      c.sliding_window = std::max<int64_t>(0, json_integer<int64_t>(root["sliding_window"], "sliding_window"));
    if (root.contains("bos_token_id") && root["bos_token_id"].is_number_integer())
      c.bos_id = json_integer<int32_t>(root["bos_token_id"], "bos_token_id");
    if (root.contains("eos_token_id"))
      add_ids(root["eos_token_id"], c.eos_ids);
    if (!generation_config_json.empty()) {
      auto gen = json::parse(generation_config_json, nullptr, false);
      if (gen.is_object() && gen.contains("eos_token_id"))
        add_ids(gen["eos_token_id"], c.eos_ids);
    }
    return c;
  } catch (const std::exception& e) {  // json::exception, or a json_integer out of range
    return invalid(e.what());
  }
}

result<model_config> load_model_config(const std::string& dir) {
  auto text = read_text_file(dir + "/config.json");
  if (!text)
    return make_error(errc::invalid_model, "no config.json in " + dir);
  return parse_model_config(*text, read_text_file(dir + "/generation_config.json").value_or(""));
}

}  // namespace adapterd::model
