#include "model/io/hf_layout.hpp"

#include <filesystem>
#include <fstream>
#include <map>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "model/tokenizer/stages.hpp"
#include "model/tokenizer/utf8.hpp"

namespace adapterd::model {

namespace {

using json = nlohmann::json;

bool write_json(const std::string& path, const json& j) {
  std::ofstream out(path);
  out << j.dump(2) << "\n";
  return static_cast<bool>(out);
}

}  // namespace

std::vector<std::pair<std::string, std::string>> learn_byte_level_merges(const std::string& corpus, int count) {
  auto pre = make_pre_tokenizer(json{{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}});
  std::map<std::vector<std::string>, int> words;
  for (const auto& w : (*pre)->split({corpus}, true))
    ++words[utf8::split_chars(w)];
  std::vector<std::pair<std::string, std::string>> merges;
  while (static_cast<int>(merges.size()) < count) {
    // Pair counts in a hash map (a corpus of megabytes has many pairs); the best is the
    // most frequent, ties going to the smallest pair.
    std::unordered_map<std::string, int> pairs;
    for (const auto& [symbols, freq] : words)
      for (size_t i = 0; i + 1 < symbols.size(); ++i)
        pairs[symbols[i] + '\x01' + symbols[i + 1]] += freq;
    if (pairs.empty())
      break;
    std::pair<std::string, std::string> best_pair;
    int best = 0;
    for (const auto& [key, freq] : pairs) {
      auto split = key.find('\x01');
      std::pair<std::string, std::string> p{key.substr(0, split), key.substr(split + 1)};
      if (freq > best || (freq == best && p < best_pair)) {
        best = freq;
        best_pair = std::move(p);
      }
    }
    if (best < 2)
      break;
    merges.push_back(best_pair);
    std::map<std::vector<std::string>, int> next;
    for (const auto& [symbols, freq] : words) {
      std::vector<std::string> merged;
      for (size_t i = 0; i < symbols.size(); ++i) {
        if (i + 1 < symbols.size() && symbols[i] == best_pair.first && symbols[i + 1] == best_pair.second) {
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

result<written_tokenizer> write_byte_level_tokenizer(const std::string& dir, const std::string& corpus,
                                                     int merge_count, int64_t max_positions) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  // Tokenizer: 256 byte symbols, learned merges, then BOS and EOS.
  json vocab = json::object();
  for (int b = 0; b < 256; ++b)
    vocab[byte_to_symbol(static_cast<unsigned char>(b))] = b;
  json merges = json::array();
  for (const auto& [a, b] : learn_byte_level_merges(corpus, merge_count)) {
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
                           {"clean_up_tokenization_spaces", false}, {"model_max_length", max_positions},
                           {"tokenizer_class", "PreTrainedTokenizerFast"},
                           // Plain-text turns: the vocabulary has no chat markup tokens.
                           {"chat_template", "{{ bos_token }}{% for message in messages %}{{ message['role'] + ': ' "
                                             "+ message['content'] | trim + '\n' }}{% endfor %}"
                                             "{% if add_generation_prompt %}{{ 'assistant:' }}{% endif %}"}};
  if (!write_json(dir + "/tokenizer.json", tokenizer) || !write_json(dir + "/tokenizer_config.json", tokenizer_config))
    return make_error(errc::not_found, "cannot write the tokenizer files in " + dir);
  return written_tokenizer{vocab_size, bos, eos};
}

result<bool> write_llama_config(const std::string& dir, const llama_shape& s, const written_tokenizer& tok) {
  const int64_t vocab_size = tok.vocab_size;
  const int32_t bos = tok.bos, eos = tok.eos;
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

  if (!write_json(dir + "/config.json", config) || !write_json(dir + "/generation_config.json", generation_config))
    return make_error(errc::not_found, "cannot write config.json in " + dir);
  return true;
}

result<bool> write_peft_config(const std::string& dir, int r, double alpha, const std::vector<std::string>& targets,
                               const std::string& base_model_name) {
  // An integral alpha is written as an integer, as PEFT writes it.
  json alpha_json = alpha == static_cast<double>(static_cast<int64_t>(alpha)) ? json(static_cast<int64_t>(alpha)) : json(alpha);
  json adapter_config = {{"peft_type", "LORA"}, {"task_type", "CAUSAL_LM"}, {"r", r},
                         {"lora_alpha", alpha_json}, {"lora_dropout", 0.0},
                         {"target_modules", targets}, {"bias", "none"},
                         {"use_rslora", false}, {"use_dora", false}, {"fan_in_fan_out", false},
                         {"base_model_name_or_path", base_model_name},
                         {"inference_mode", true}, {"rank_pattern", json::object()},
                         {"alpha_pattern", json::object()}, {"modules_to_save", nullptr}};
  if (!write_json(dir + "/adapter_config.json", adapter_config))
    return make_error(errc::not_found, "cannot write " + dir + "/adapter_config.json");
  return true;
}

}  // namespace adapterd::model
