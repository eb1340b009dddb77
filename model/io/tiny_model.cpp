#include "model/io/tiny_model.hpp"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>

#include <nlohmann/json.hpp>

#include "model/io/hf_layout.hpp"
#include "model/io/safetensors.hpp"

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

}  // namespace

result<bool> write_tiny_model(const tiny_model_spec& spec, const std::string& model_dir,
                              const std::string& adapter_dir) {
  std::error_code ec;
  std::filesystem::create_directories(model_dir, ec);
  std::filesystem::create_directories(adapter_dir, ec);
  if (ec)
    return make_error(errc::not_found, "cannot create " + model_dir + ": " + ec.message());

  const auto& s = spec.shape;
  auto tok = write_byte_level_tokenizer(model_dir, corpus, spec.merges, s.max_positions);
  if (!tok)
    return tok.err();
  const int64_t vocab_size = tok->vocab_size;
  if (auto ok = write_llama_config(model_dir, s, *tok); !ok)
    return ok.err();
  const int64_t head_dim = s.hidden / s.heads;
  gaussian g(spec.seed);
  std::vector<tensor_blob> weights;
  const int64_t q_out = s.heads * head_dim, kv_out = s.kv_heads * head_dim;
  weights.push_back(random_tensor("model.embed_tokens.weight", {vocab_size, s.hidden}, g, 0.5f));
  weights.push_back(random_tensor("lm_head.weight", {vocab_size, s.hidden}, g, 0.1f));
  weights.push_back(random_tensor("model.norm.weight", {s.hidden}, g, 0, 1.0f));
  std::vector<std::vector<tensor_blob>> loras(static_cast<size_t>(std::max(1, spec.adapters)));
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
        lora.push_back(random_tensor(key + ".lora_A.weight", {spec.lora_rank, s.hidden}, g, 0.2f));
        lora.push_back(random_tensor(key + ".lora_B.weight", {out, spec.lora_rank}, g, 0.2f));
      }
    }
  }
  auto ok = write_safetensors(model_dir + "/model.safetensors", weights, {{"format", "pt"}});
  if (!ok)
    return ok.err();
  for (size_t i = 0; i < loras.size(); ++i) {
    auto dir = i == 0 ? adapter_dir : adapter_dir + "-" + std::to_string(i);
    std::filesystem::create_directories(dir, ec);
    auto cfg = write_peft_config(dir, spec.lora_rank, 2 * spec.lora_rank, {"q_proj", "v_proj"},
                                 std::filesystem::path(model_dir).filename().string());
    if (!cfg)
      return cfg.err();
    ok = write_safetensors(dir + "/adapter_model.safetensors", loras[i], {{"format", "pt"}});
    if (!ok)
      return ok.err();
  }
  return true;
}

}  // namespace adapterd::model
