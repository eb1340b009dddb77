#include "model/tiny_model.hpp"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include <nlohmann/json.hpp>

#include "model/safetensors.hpp"
#include "model/tokenizer_parts.hpp"
#include "model/utf8.hpp"

namespace adapterd::model {

namespace {

using json = nlohmann::json;

constexpr const char* corpus =
  "The model loads once and stays in memory. Requests wait in a queue and run one at a time. "
  "After each request the service cleans up intermediate tensors but keeps the weights. "
  "Adapters change the style of the answers without reloading the base model. "
  "Hello, world! How are you today? I am fine, thank you. What is the weather like? "
  "It is sunny and warm, with a light breeze from the sea. The quick brown fox jumps over "
  "the lazy dog. Memory stays flat by construction, and many clients share one device. "
  "A server is judged by its numbers: latency, throughput and the memory it holds. "
  "Once upon a time there was a small language model that wanted to tell stories. "
  "def main():\n    return 0\n\nfor i in range(10):\n    print(i)\n";

// Deterministic normal numbers (Box-Muller over mt19937_64), the same on every platform.
class gaussian {
public:
  explicit gaussian(uint64_t seed) : rng_(seed) {}
  float next(float stddev) {
    double u1 = (static_cast<double>(rng_() >> 11) + 1.0) / 9007199254740993.0;
    double u2 = static_cast<double>(rng_() >> 11) / 9007199254740992.0;
    return static_cast<float>(stddev * std::sqrt(-2.0 * std::log(u1)) * std::cos(2 * M_PI * u2));
  }

private:
  std::mt19937_64 rng_;
};

tensor_blob random_tensor(const std::string& name, std::vector<int64_t> shape, gaussian& g,
                          float stddev, float constant = NAN) {
  int64_t n = 1;
  for (auto d : shape)
    n *= d;
  std::vector<float> values(static_cast<size_t>(n));
  for (auto& v : values)
    v = std::isnan(constant) ? g.next(stddev) : constant;
  tensor_blob t{name, dtype::f32, std::move(shape), std::vector<std::byte>(values.size() * 4)};
  std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
  return t;
}

// Learns `count` byte-level BPE merges from the corpus.
std::vector<std::pair<std::string, std::string>> learn_merges(int count) {
  auto pre = make_pre_tokenizer(json{{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}});
  std::map<std::vector<std::string>, int> words;
  for (const auto& w : (*pre)->split({corpus}, true))
    ++words[utf8::split_chars(w)];
  std::vector<std::pair<std::string, std::string>> merges;
  while (static_cast<int>(merges.size()) < count) {
    std::map<std::pair<std::string, std::string>, int> pairs;
    for (const auto& [symbols, freq] : words)
      for (size_t i = 0; i + 1 < symbols.size(); ++i)
        pairs[{symbols[i], symbols[i + 1]}] += freq;
    if (pairs.empty())
      break;
    auto best = pairs.begin();
    for (auto it = pairs.begin(); it != pairs.end(); ++it)
      if (it->second > best->second)
        best = it;
    if (best->second < 2)
      break;
    merges.push_back(best->first);
    std::map<std::vector<std::string>, int> next;
    for (const auto& [symbols, freq] : words) {
      std::vector<std::string> merged;
      for (size_t i = 0; i < symbols.size(); ++i) {
        if (i + 1 < symbols.size() && symbols[i] == best->first.first && symbols[i + 1] == best->first.second) {
          merged.push_back(symbols[i] + symbols[i + 1]);
          ++i;
        } else {
          merged.push_back(symbols[i]);
        }
      }
      next[merged] += freq;
    }
    words = std::move(next);
  }
  return merges;
}

bool write_json(const std::string& path, const json& j) {
  std::ofstream out(path);
  out << j.dump(2) << "\n";
  return static_cast<bool>(out);
}

}  // namespace

result<bool> write_tiny_model(const tiny_model_spec& s, const std::string& model_dir,
                              const std::string& adapter_dir) {
  std::error_code ec;
  std::filesystem::create_directories(model_dir, ec);
  std::filesystem::create_directories(adapter_dir, ec);
  if (ec)
    return make_error(errc::not_found, "cannot create " + model_dir + ": " + ec.message());

  // Tokenizer: 256 byte symbols, learned merges, then BOS and EOS.
  json vocab = json::object();
  for (int b = 0; b < 256; ++b)
    vocab[byte_to_symbol(static_cast<unsigned char>(b))] = b;
  json merges = json::array();
  for (const auto& [a, b] : learn_merges(s.merges)) {
    if (!vocab.contains(a + b))
      vocab[a + b] = static_cast<int>(vocab.size());
    merges.push_back(a + " " + b);
  }
  const int bos = static_cast<int>(vocab.size()), eos = bos + 1;
  const int64_t vocab_size = eos + 1;
  auto special = [](int id, const char* text) {
    return json{{"id", id}, {"content", text}, {"single_word", false}, {"lstrip", false},
                {"rstrip", false}, {"normalized", false}, {"special", true}};
  };
  json tokenizer = {
    {"version", "1.0"}, {"truncation", nullptr}, {"padding", nullptr},
    {"added_tokens", {special(bos, "<|begin_of_text|>"), special(eos, "<|end_of_text|>")}},
    {"normalizer", nullptr},
    {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}}},
    {"post_processor", {{"type", "TemplateProcessing"},
                        {"single", {{{"SpecialToken", {{"id", "<|begin_of_text|>"}, {"type_id", 0}}}},
                                    {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
                        {"pair", json::array()},
                        {"special_tokens", {{"<|begin_of_text|>", {{"id", "<|begin_of_text|>"}, {"ids", {bos}}, {"tokens", {"<|begin_of_text|>"}}}}}}}},
    {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
    {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
               {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false},
               {"ignore_merges", false}, {"vocab", vocab}, {"merges", merges}}},
  };
  json tokenizer_config = {{"add_bos_token", true}, {"add_eos_token", false},
                           {"bos_token", "<|begin_of_text|>"}, {"eos_token", "<|end_of_text|>"},
                           {"clean_up_tokenization_spaces", false}, {"model_max_length", s.max_positions},
                           {"tokenizer_class", "PreTrainedTokenizerFast"},
                           // Plain-text turns: the vocabulary has no chat markup tokens.
                           {"chat_template", "{{ bos_token }}{% for message in messages %}{{ message['role'] + ': ' "
                                             "+ message['content'] | trim + '\n' }}{% endfor %}"
                                             "{% if add_generation_prompt %}{{ 'assistant:' }}{% endif %}"}};
  const int64_t head_dim = s.hidden / s.heads;
  json config = {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"},
                 {"hidden_size", s.hidden}, {"intermediate_size", s.intermediate},
                 {"num_hidden_layers", s.layers}, {"num_attention_heads", s.heads},
                 {"num_key_value_heads", s.kv_heads}, {"head_dim", head_dim}, {"hidden_act", "silu"},
                 {"max_position_embeddings", s.max_positions}, {"rms_norm_eps", 1e-5},
                 {"rope_theta", 10000.0}, {"tie_word_embeddings", false}, {"vocab_size", vocab_size},
                 {"torch_dtype", "float32"}, {"bos_token_id", bos}, {"eos_token_id", eos},
                 {"attention_bias", false}, {"mlp_bias", false}};
  json generation_config = {{"bos_token_id", bos}, {"eos_token_id", eos}, {"do_sample", false}};

  gaussian g(s.seed);
  std::vector<tensor_blob> weights;
  const int64_t q_out = s.heads * head_dim, kv_out = s.kv_heads * head_dim;
  weights.push_back(random_tensor("model.embed_tokens.weight", {vocab_size, s.hidden}, g, 0.5f));
  weights.push_back(random_tensor("lm_head.weight", {vocab_size, s.hidden}, g, 0.1f));
  weights.push_back(random_tensor("model.norm.weight", {s.hidden}, g, 0, 1.0f));
  std::vector<std::vector<tensor_blob>> loras(static_cast<size_t>(std::max(1, s.adapters)));
  for (int64_t l = 0; l < s.layers; ++l) {
    auto p = "model.layers." + std::to_string(l) + ".";
    weights.push_back(random_tensor(p + "input_layernorm.weight", {s.hidden}, g, 0, 1.0f));
    weights.push_back(random_tensor(p + "post_attention_layernorm.weight", {s.hidden}, g, 0, 1.0f));
    weights.push_back(random_tensor(p + "self_attn.q_proj.weight", {q_out, s.hidden}, g, 0.08f));
    weights.push_back(random_tensor(p + "self_attn.k_proj.weight", {kv_out, s.hidden}, g, 0.08f));
    weights.push_back(random_tensor(p + "self_attn.v_proj.weight", {kv_out, s.hidden}, g, 0.08f));
    weights.push_back(random_tensor(p + "self_attn.o_proj.weight", {s.hidden, q_out}, g, 0.08f));
    weights.push_back(random_tensor(p + "mlp.gate_proj.weight", {s.intermediate, s.hidden}, g, 0.08f));
    weights.push_back(random_tensor(p + "mlp.up_proj.weight", {s.intermediate, s.hidden}, g, 0.08f));
    weights.push_back(random_tensor(p + "mlp.down_proj.weight", {s.hidden, s.intermediate}, g, 0.05f));
  }
  for (auto& lora : loras) {
    for (int64_t l = 0; l < s.layers; ++l) {
      auto p = "model.layers." + std::to_string(l) + ".";
      for (const auto& [name, out] : {std::pair{"q_proj", q_out}, std::pair{"v_proj", kv_out}}) {
        auto key = "base_model.model." + p + "self_attn." + name;
        lora.push_back(random_tensor(key + ".lora_A.weight", {s.lora_rank, s.hidden}, g, 0.2f));
        lora.push_back(random_tensor(key + ".lora_B.weight", {out, s.lora_rank}, g, 0.2f));
      }
    }
  }
  json adapter_config = {{"peft_type", "LORA"}, {"task_type", "CAUSAL_LM"}, {"r", s.lora_rank},
                         {"lora_alpha", 2 * s.lora_rank}, {"lora_dropout", 0.0},
                         {"target_modules", {"q_proj", "v_proj"}}, {"bias", "none"},
                         {"use_rslora", false}, {"use_dora", false}, {"fan_in_fan_out", false},
                         {"base_model_name_or_path", std::filesystem::path(model_dir).filename().string()},
                         {"inference_mode", true}, {"rank_pattern", json::object()},
                         {"alpha_pattern", json::object()}, {"modules_to_save", nullptr}};

  if (!write_json(model_dir + "/config.json", config) || !write_json(model_dir + "/generation_config.json", generation_config)
      || !write_json(model_dir + "/tokenizer.json", tokenizer) || !write_json(model_dir + "/tokenizer_config.json", tokenizer_config)
      )
    return make_error(errc::not_found, "cannot write the JSON files");
  auto ok = write_safetensors(model_dir + "/model.safetensors", weights, {{"format", "pt"}});
  if (!ok)
    return ok.err();
  for (size_t i = 0; i < loras.size(); ++i) {
    auto dir = i == 0 ? adapter_dir : adapter_dir + "-" + std::to_string(i);
    std::filesystem::create_directories(dir, ec);
    if (!write_json(dir + "/adapter_config.json", adapter_config))
      return make_error(errc::not_found, "cannot write " + dir);
    ok = write_safetensors(dir + "/adapter_model.safetensors", loras[i], {{"format", "pt"}});
    if (!ok)
      return ok.err();
  }
  return true;
}

}  // namespace adapterd::model
