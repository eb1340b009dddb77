// Loading base-model and adapter weights into libtorch tensors.
#include <cstring>
#include <regex>

#include "model/io/lora_config.hpp"
#include "model/io/text_file.hpp"
#include "model/io/weights.hpp"
#include "model/llama/llama.hpp"

namespace adapterd::model {

namespace {

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// A `dtype` tensor on `device`. Data already in `dtype` on the CPU is used in place: the
// deleter keeps the memory-mapped file alive for as long as the tensor lives.
result<torch::Tensor> to_tensor(const tensor_view& view, std::shared_ptr<const void> storage,
                                torch::Device device, torch::ScalarType dtype, errc code) {
  torch::ScalarType type;
  switch (view.type) {
    case dtype::f32: type = torch::kFloat32; break;
    case dtype::f16: type = torch::kFloat16; break;
    case dtype::bf16: type = torch::kBFloat16; break;
    default:
      return make_error(code, "tensor " + view.name + " has unsupported dtype " + to_string(view.type));
  }
  auto keep = std::move(storage);
  auto t = torch::from_blob(const_cast<std::byte*>(view.data), view.shape,
                            [keep](void*) mutable { keep.reset(); },
                            torch::TensorOptions().dtype(type));
  if (type != dtype)
    t = t.to(dtype);
  if (!device.is_cpu())
    t = t.to(device);
  return t;
}

struct weight_reader {
  const tensor_index& index;
  torch::Device device;
  torch::ScalarType dtype;

  result<torch::Tensor> get(const std::string& name, std::vector<int64_t> shape) const {
    auto it = index.by_name.find(name);
    if (it == index.by_name.end())
      return make_error(errc::invalid_model, "missing tensor " + name);
    if (it->second->shape != shape)
      return make_error(errc::invalid_model, "tensor " + name + " has shape "
                                               + shape_text(it->second->shape) + ", expected "
                                               + shape_text(shape));
    for (const auto& f : index.files)
      if (f->find(name) == it->second)
        return to_tensor(*it->second, f->storage(), device, dtype, errc::invalid_model);
    return make_error(errc::internal, "tensor " + name + " lost its file");
  }
};

}  // namespace

result<llama_weights> load_llama_weights(const std::string& dir, const model_config& c,
                                         torch::Device device, torch::ScalarType dtype) {
  auto index = open_tensors(dir, "model.safetensors");
  if (!index)
    return index.err();
  torch::InferenceMode guard;
  weight_reader r{*index, device, dtype};
  llama_weights w;
  const int64_t h = c.hidden_size;
  auto embed = r.get("model.embed_tokens.weight", {c.vocab_size, h});
  if (!embed)
    return embed.err();
  w.embed = *embed;
  auto norm = r.get("model.norm.weight", {h});
  if (!norm)
    return norm.err();
  w.final_norm = *norm;
  if (c.tie_word_embeddings) {
    w.lm_head = w.embed;
  } else {
    auto head = r.get("lm_head.weight", {c.vocab_size, h});
    if (!head)
      return head.err();
    w.lm_head = *head;
  }
  for (int64_t l = 0; l < c.num_layers; ++l) {
    auto prefix = "model.layers." + std::to_string(l) + ".";
    layer_weights layer;
    auto in_norm = r.get(prefix + "input_layernorm.weight", {h});
    auto post_norm = r.get(prefix + "post_attention_layernorm.weight", {h});
    if (!in_norm)
      return in_norm.err();
    if (!post_norm)
      return post_norm.err();
    layer.input_norm = *in_norm;
    layer.post_attention_norm = *post_norm;
    for (size_t p = 0; p < proj_count; ++p) {
      auto name = prefix + proj_module(static_cast<proj>(p));
      const auto [out_f, in_f] = linear_shape(c, static_cast<proj>(p));
      auto weight = r.get(name + ".weight", {out_f, in_f});
      if (!weight)
        return weight.err();
      layer.linear[p].weight = *weight;
      bool has_bias = (p <= 2 && c.attention_bias) || (p == 3 && c.o_bias) || (p >= 4 && c.mlp_bias);
      if (has_bias) {
        auto bias = r.get(name + ".bias", {out_f});
        if (!bias)
          return bias.err();
        layer.linear[p].bias = *bias;
      }
    }
    w.layers.push_back(std::move(layer));
  }
  return w;
}

namespace {

// Two 64-bit hashes of different kinds (FNV-1a over bytes, a multiply-xorshift over words)
// into one 128-bit content hash: two adapters that differ anywhere differ here.
void hash_bytes(kv_owner& h, const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  if (h == kv_owner{})
    h = {0xcbf29ce484222325ULL, 0x9e3779b97f4a7c15ULL};
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t word;
    std::memcpy(&word, p + i, sizeof word);
    h.low = (h.low ^ word) * 0xbf58476d1ce4e5b9ULL;
    h.low ^= h.low >> 31;
  }
  for (; i < n; ++i)
    h.low = (h.low ^ p[i]) * 0x94d049bb133111ebULL;
  for (i = 0; i < n; ++i)
    h.high = (h.high ^ p[i]) * 0x100000001b3ULL;
}

void hash_tensor(kv_owner& h, const torch::Tensor& t) {
  auto host = t.to(torch::kCPU).contiguous();
  hash_bytes(h, host.data_ptr(), static_cast<size_t>(host.numel()) * host.element_size());
}

}  // namespace

result<lora_weights> load_lora_weights(const std::string& dir, const llama_model& model) {
  auto text = read_text_file(dir + "/adapter_config.json");
  if (!text)
    return make_error(errc::invalid_adapter, "no adapter_config.json in " + dir);
  auto config = parse_lora_config(*text);
  if (!config)
    return config.err();
  auto index = open_tensors(dir, "adapter_model.safetensors");
  if (!index)
    return make_error(errc::invalid_adapter, index.err().message);

  const auto& c = model.config();
  static const std::regex key_re(
    R"(base_model\.model\.(model\.layers\.(\d+)\.(self_attn\.[qkvo]_proj|mlp\.(?:gate|up|down)_proj))\.lora_([AB])(?:\.default)?\.weight)");
  struct half_pair {
    const tensor_view* a = nullptr;
    const tensor_view* b = nullptr;
    std::shared_ptr<const void> storage_a, storage_b;
  };
  std::map<std::pair<int64_t, size_t>, half_pair> found;
  std::map<std::pair<int64_t, size_t>, std::string> module_names;
  for (const auto& file : index->files) {
    for (const auto& t : file->tensors()) {
      std::smatch m;
      if (!std::regex_match(t.name, m, key_re))
        return make_error(errc::invalid_adapter, "adapter tensor " + t.name
                                                   + " is not a LoRA A/B weight of a supported module");
      int64_t layer = std::stoll(m[2].str());
      if (layer >= c.num_layers)
        return make_error(errc::invalid_adapter, "adapter tensor " + t.name + " names layer "
                                                   + m[2].str() + " but the base model has "
                                                   + std::to_string(c.num_layers));
      size_t p = 0;
      while (proj_module(static_cast<proj>(p)) != m[3].str())
        ++p;
      auto& slot = found[{layer, p}];
      module_names[{layer, p}] = m[1].str();
      (m[4] == "A" ? slot.a : slot.b) = &t;
      (m[4] == "A" ? slot.storage_a : slot.storage_b) = file->storage();
    }
  }
  if (found.empty())
    return make_error(errc::invalid_adapter, "adapter in " + dir + " has no LoRA weights");

  torch::InferenceMode guard;
  lora_weights out;
  out.layers.resize(static_cast<size_t>(c.num_layers));
  for (const auto& [key, half] : found) {
    const auto& module = module_names[key];
    if (half.a == nullptr || half.b == nullptr)
      return make_error(errc::invalid_adapter, "adapter module " + module + " lacks lora_A or lora_B");
    const auto [out_f, in_f] = linear_shape(c, static_cast<proj>(key.second));
    int64_t r = half.a->shape.empty() ? 0 : half.a->shape[0];
    if (half.a->shape != std::vector<int64_t>{r, in_f} || half.b->shape != std::vector<int64_t>{out_f, r})
      return make_error(errc::invalid_adapter,
                        "adapter module " + module + " has A " + shape_text(half.a->shape) + " and B "
                          + shape_text(half.b->shape) + ", which do not fit the base weight "
                          + shape_text({out_f, in_f}));
    auto rank = config->rank_for(module);
    auto scale = config->scale_for(module);
    if (!rank)
      return rank.err();
    if (!scale)
      return scale.err();
    if (*rank != r)
      return make_error(errc::invalid_adapter, "adapter module " + module + " has rank "
                                                 + std::to_string(r) + " but adapter_config.json says "
                                                 + std::to_string(*rank));
    auto a = to_tensor(*half.a, half.storage_a, model.device(), model.dtype(), errc::invalid_adapter);
    auto b = to_tensor(*half.b, half.storage_b, model.device(), model.dtype(), errc::invalid_adapter);
    if (!a)
      return a.err();
    if (!b)
      return b.err();
    out.bytes += static_cast<size_t>((a->numel() + b->numel()) * a->element_size());
    const int32_t where[2] = {static_cast<int32_t>(key.first), static_cast<int32_t>(key.second)};
    const double scale_value = *scale;
    hash_bytes(out.content, where, sizeof where);
    hash_bytes(out.content, &scale_value, sizeof scale_value);
    hash_tensor(out.content, *a);
    hash_tensor(out.content, *b);
    // Own the data (not the mapping): an adapter must outlive edits to its files.
    out.layers[static_cast<size_t>(key.first)][key.second] =
      lora_pair{a->clone(), b->clone(), *scale};
  }
  if (out.content == kv_owner{})
    out.content.low = 1;  // zero is the base model's
  return out;
}

}  // namespace adapterd::model
