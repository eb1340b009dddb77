#include "model/llama/llama.hpp"

#include <cmath>

namespace adapterd::model {

// In fp32 whatever the compute dtype, as transformers' LlamaRMSNorm does.
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  auto xf = x.to(torch::kFloat32);
  auto variance = xf.pow(2).mean(-1, /*keepdim=*/true);
  return weight * (xf * torch::rsqrt(variance + eps)).to(x.scalar_type());
}

// transformers' rotate_half convention: the two halves of each head are the pairs.
torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  auto half = x.size(-1) / 2;
  auto x1 = x.narrow(-1, 0, half);
  auto x2 = x.narrow(-1, half, half);
  return x * cos + torch::cat({-x2, x1}, -1) * sin;
}

namespace {

torch::Tensor project(const torch::Tensor& x, const linear_weights& w, const lora_pair* lora) {
  auto y = torch::linear(x, w.weight, w.bias);
  if (lora != nullptr)
    y.add_(torch::linear(torch::linear(x, lora->a), lora->b), lora->scale);
  return y;
}

}  // namespace

const lora_pair* lora_for(const lora_weights* lora, size_t layer, proj p) {
  if (lora == nullptr || layer >= lora->layers.size())
    return nullptr;
  const auto& slot = lora->layers[layer][static_cast<size_t>(p)];
  return slot ? &*slot : nullptr;
}

const char* proj_module(proj p) {
  static const char* names[proj_count] = {"self_attn.q_proj", "self_attn.k_proj",
                                          "self_attn.v_proj", "self_attn.o_proj",
                                          "mlp.gate_proj",    "mlp.up_proj",
                                          "mlp.down_proj"};
  return names[static_cast<size_t>(p)];
}

std::pair<int64_t, int64_t> linear_shape(const model_config& c, proj p) {
  const int64_t h = c.hidden_size, q_out = c.num_heads * c.head_dim;
  const int64_t kv_out = c.num_kv_heads * c.head_dim, inter = c.intermediate_size;
  switch (p) {
    case proj::q: return {q_out, h};
    case proj::k:
    case proj::v: return {kv_out, h};
    case proj::o: return {h, q_out};
    case proj::gate:
    case proj::up: return {inter, h};
    case proj::down: return {h, inter};
  }
  return {0, 0};
}

torch::Tensor rope_inv_freq(const model_config& c) {
  const auto& rope = c.rope;
  auto exponents = torch::arange(0, c.head_dim, 2, torch::kInt64).to(torch::kFloat32) / c.head_dim;
  auto inv_freq = 1.0 / torch::pow(rope.theta, exponents);
  if (rope.scaling == rope_scaling_type::linear)
    return inv_freq / rope.factor;
  if (rope.scaling != rope_scaling_type::llama3)
    return inv_freq;
  double old_len = static_cast<double>(rope.original_max_position);
  double low_wavelen = old_len / rope.low_freq_factor;
  double high_wavelen = old_len / rope.high_freq_factor;
  auto wavelen = 2 * M_PI / inv_freq;
  auto scaled = torch::where(wavelen > low_wavelen, inv_freq / rope.factor, inv_freq);
  auto smooth = (old_len / wavelen - rope.low_freq_factor)
                / (rope.high_freq_factor - rope.low_freq_factor);
  auto smoothed = (1 - smooth) * scaled / rope.factor + smooth * scaled;
  auto medium = (wavelen >= high_wavelen).logical_and(wavelen <= low_wavelen);
  return torch::where(medium, smoothed, scaled);
}

llama_model::llama_model(model_config config, llama_weights weights, torch::Device device,
                         torch::ScalarType dtype, size_t activation_limit_bytes,
                         quant::weight_format weights_format,
                         std::optional<torch::ScalarType> kv_dtype)
    : config_(std::move(config)),
      weights_(std::move(weights)),
      device_(device),
      dtype_(dtype),
      activation_limit_bytes_(activation_limit_bytes),
      weights_format_(weights_format),
      kv_dtype_(kv_dtype.value_or(dtype)) {
  torch::InferenceMode guard;
  auto inv_freq = rope_inv_freq(config_);
  auto positions = torch::arange(0, config_.max_position_embeddings, torch::kFloat32);
  auto freqs = torch::outer(positions, inv_freq);
  auto emb = torch::cat({freqs, freqs}, -1);
  cos_ = emb.cos().to(device_);
  sin_ = emb.sin().to(device_);
  pack_for_cpu();
}

void llama_model::require_libtorch_weights(const char* what) const {
  if (weights_format_ != quant::weight_format::f32)
    throw std::invalid_argument(std::string(what) + " needs the f32 weights; this model is held as "
                                + quant::name_of(weights_format_) + " (--weights)");
}

kv_cache llama_model::make_cache(int64_t capacity) const {
  kv_cache cache;
  const int64_t blocks = kv_blocks_for(capacity);
  cache.capacity = blocks * kv_block_tokens;
  for (int64_t b = 0; b < blocks; ++b)
    cache.blocks.push_back(static_cast<int32_t>(b));
  auto options = torch::TensorOptions().dtype(kv_dtype_).device(device_);
  for (int64_t l = 0; l < config_.num_layers; ++l) {
    cache.k.push_back(
        torch::empty({config_.num_kv_heads, cache.capacity, config_.head_dim}, options));
    cache.v.push_back(
        torch::empty({config_.num_kv_heads, cache.capacity, config_.head_dim}, options));
  }
  return cache;
}

kv_pool::kv_pool(const llama_model& model, int64_t tokens, bool prefix_cache)
    : device_(model.device()), blocks_(kv_blocks_for(tokens), prefix_cache) {
  const auto& c = model.config();
  auto options = torch::TensorOptions().dtype(model.kv_dtype()).device(model.device());
  for (int64_t l = 0; l < c.num_layers; ++l) {
    k_.push_back(torch::empty({c.num_kv_heads, this->tokens(), c.head_dim}, options));
    v_.push_back(torch::empty({c.num_kv_heads, this->tokens(), c.head_dim}, options));
  }
}

std::optional<kv_cache> kv_pool::take(int64_t tokens, const kv_owner& owner,
                                      const std::vector<int32_t>* prompt, int64_t reusable) {
  if (prompt != nullptr)
    reusable = std::min<int64_t>(reusable, static_cast<int64_t>(prompt->size()));
  auto taken = blocks_.take(tokens, owner, prompt != nullptr ? prompt->data() : nullptr, reusable);
  if (!taken)
    return std::nullopt;
  kv_cache cache;
  cache.k = k_;
  cache.v = v_;
  cache.blocks = std::move(taken->blocks);
  cache.length = taken->reused_tokens;
  cache.pooled = true;
  index_slots(cache);
  return cache;
}

void kv_pool::index_slots(kv_cache& cache) const {
  cache.capacity = static_cast<int64_t>(cache.blocks.size()) * kv_block_tokens;
  std::vector<int64_t> slots(static_cast<size_t>(cache.capacity));
  for (int64_t t = 0; t < cache.capacity; ++t)
    slots[static_cast<size_t>(t)] = cache.slot(t);
  cache.slot_index = torch::tensor(slots, torch::kInt64).to(device_);
}

bool kv_pool::grow(kv_cache& cache) {
  if (!cache.pooled)
    return false;
  auto more = blocks_.take_blocks(1);
  if (!more)
    return false;
  cache.blocks.push_back(more->front());
  index_slots(cache);
  return true;
}

int64_t kv_pool::adopt(kv_cache& cache, const kv_owner& owner, const std::vector<int32_t>& prompt) {
  if (!cache.pooled)
    return 0;
  const auto before = cache.length;
  cache.length = blocks_.adopt(cache.blocks, owner, prompt.data(), cache.length,
                               static_cast<int64_t>(prompt.size()) - 1);
  if (cache.length > before)
    index_slots(cache);
  return cache.length - before;
}

void kv_pool::publish(const kv_cache& cache, const kv_owner& owner,
                      const std::vector<int32_t>& tokens, int64_t filled) {
  if (cache.pooled)
    blocks_.publish(cache.blocks, owner, tokens.data(),
                    std::min<int64_t>(filled, static_cast<int64_t>(tokens.size())));
}

void kv_pool::give_back(const kv_cache& cache) {
  if (cache.pooled)
    blocks_.give_back(cache.blocks);
}

bool kv_pool::fits(int64_t tokens) const {
  return blocks_.fits(tokens);
}

namespace {

// Tokens [start, start + t) of one layer's cache tensor from src [kv_heads, t, head_dim].
void write_kv(torch::Tensor& layer, const kv_cache& cache, int64_t start, int64_t t,
              const torch::Tensor& src) {
  if (cache.in_order())
    layer.narrow(1, start, t).copy_(src);
  else
    layer.index_copy_(1, cache.slot_index.narrow(0, start, t), src.to(layer.scalar_type()));
}

// Tokens [0, total) of one layer's cache tensor, in order: [kv_heads, total, head_dim].
torch::Tensor read_kv(const torch::Tensor& layer, const kv_cache& cache, int64_t total) {
  return cache.in_order() ? layer.narrow(1, 0, total)
                          : layer.index_select(1, cache.slot_index.narrow(0, 0, total));
}

}  // namespace

torch::Tensor llama_model::attention(const torch::Tensor& x, size_t layer, kv_cache& cache,
                                     const lora_weights* lora, const torch::Tensor& cos,
                                     const torch::Tensor& sin) const {
  const auto& w = weights_.layers[layer];
  const int64_t t = x.size(0), heads = config_.num_heads, kv = config_.num_kv_heads;
  const int64_t d = config_.head_dim, group = heads / kv, start = cache.length;
  auto q = project(x, w.linear[0], lora_for(lora, layer, proj::q)).view({t, heads, d});
  auto k = project(x, w.linear[1], lora_for(lora, layer, proj::k)).view({t, kv, d});
  auto v = project(x, w.linear[2], lora_for(lora, layer, proj::v)).view({t, kv, d});
  // Rotary embedding and attention run in fp32 whatever the compute dtype: they are a
  // small share of the work and most of the half-precision error.
  q = apply_rope(q.to(torch::kFloat32), cos, sin);
  k = apply_rope(k.to(torch::kFloat32), cos, sin);
  write_kv(cache.k[layer], cache, start, t, k.transpose(0, 1));
  write_kv(cache.v[layer], cache, start, t, v.transpose(0, 1));
  const int64_t total = start + t;
  auto keys = read_kv(cache.k[layer], cache, total).to(torch::kFloat32);    // [kv, total, d]
  auto values = read_kv(cache.v[layer], cache, total).to(torch::kFloat32);  // [kv, total, d]
  // Query head h reads key/value head h / group (transformers' repeat_kv), so grouping
  // the queries by kv head lets one batched matmul serve every head without copies.
  auto qg = q.view({t, kv, group, d}).permute({1, 2, 0, 3}).reshape({kv, group * t, d});
  auto scores = torch::bmm(qg, keys.transpose(1, 2)).mul_(1.0 / std::sqrt(static_cast<double>(d)));
  const int64_t window = config_.sliding_window;
  if (t > 1 || (window > 0 && total > window)) {
    auto index = torch::TensorOptions().dtype(torch::kInt64).device(device_);
    auto rows = torch::arange(start, total, index).unsqueeze(1);
    auto cols = torch::arange(0, total, index).unsqueeze(0);
    auto hidden = cols > rows;  // [t, total]: the future
    if (window > 0)
      hidden = hidden.logical_or(cols <= rows - window);  // outside Mistral's window
    scores = scores.view({kv, group, t, total})
               .masked_fill(hidden, -std::numeric_limits<float>::infinity())
               .view({kv, group * t, total});
  }
  auto out = torch::bmm(torch::softmax(scores, -1), values);  // [kv, group*t, d]
  out = out.view({kv, group, t, d}).permute({2, 0, 1, 3}).reshape({t, heads * d}).to(dtype_);
  return project(out, w.linear[3], lora_for(lora, layer, proj::o));
}

torch::Tensor llama_model::forward(const torch::Tensor& ids, kv_cache& cache,
                                   const lora_weights* lora) const {
  require_libtorch_weights("this forward pass");
  const int64_t t = ids.size(0);
  if (activation_limit_bytes_ > 0
      && static_cast<size_t>(t * config_.intermediate_size * 3) * c10::elementSize(dtype_)
           > activation_limit_bytes_)
    throw std::bad_alloc();  // injected: behaves like a failed allocation
  auto x = weights_.embed.index_select(0, ids);
  auto cos = cos_.narrow(0, cache.length, t).unsqueeze(1);
  auto sin = sin_.narrow(0, cache.length, t).unsqueeze(1);
  const double eps = config_.rms_norm_eps;
  for (size_t l = 0; l < weights_.layers.size(); ++l) {
    const auto& w = weights_.layers[l];
    x = x + attention(rms_norm(x, w.input_norm, eps), l, cache, lora, cos, sin);
    auto h = rms_norm(x, w.post_attention_norm, eps);
    auto gate = project(h, w.linear[4], lora_for(lora, l, proj::gate));
    auto up = project(h, w.linear[5], lora_for(lora, l, proj::up));
    x = x + project(torch::silu(gate) * up, w.linear[6], lora_for(lora, l, proj::down));
  }
  cache.length += t;
  return rms_norm(x, weights_.final_norm, eps);
}

torch::Tensor llama_model::logits(const torch::Tensor& hidden) const {
  require_libtorch_weights("these logits");
  return torch::linear(hidden, weights_.lm_head);
}

// Base weight once for every row; then, per distinct adapter, its rows' LoRA term.
torch::Tensor llama_model::project_rows(const torch::Tensor& x, size_t layer, proj p,
                                        const std::vector<const lora_weights*>& loras) const {
  const auto& w = weights_.layers[layer].linear[static_cast<size_t>(p)];
  auto y = torch::linear(x, w.weight, w.bias);
  std::vector<const lora_pair*> done;
  for (size_t row = 0; row < loras.size(); ++row) {
    const auto* pair = lora_for(loras[row], layer, p);
    if (pair == nullptr || std::find(done.begin(), done.end(), pair) != done.end())
      continue;
    done.push_back(pair);
    std::vector<int64_t> rows;
    for (size_t r = row; r < loras.size(); ++r)
      if (lora_for(loras[r], layer, p) == pair)
        rows.push_back(static_cast<int64_t>(r));
    auto index = torch::tensor(rows, torch::kInt64).to(device_);
    auto delta = torch::linear(torch::linear(x.index_select(0, index), pair->a), pair->b);
    y.index_add_(0, index, delta.mul_(pair->scale));
  }
  return y;
}

torch::Tensor llama_model::decode_batch(const std::vector<int64_t>& ids,
                                        const std::vector<kv_cache*>& caches,
                                        const std::vector<const lora_weights*>& loras) const {
  const auto rows = static_cast<int64_t>(ids.size());
  const int64_t heads = config_.num_heads, kv = config_.num_kv_heads, d = config_.head_dim;
  const double eps = config_.rms_norm_eps;
  if (activation_limit_bytes_ > 0
      && static_cast<size_t>(rows * config_.intermediate_size * 3) * c10::elementSize(dtype_)
           > activation_limit_bytes_)
    throw std::bad_alloc();  // injected: behaves like a failed allocation
  if (cpu_decode_ready(loras))
    return decode_batch_cpu(ids, caches, loras);
  require_libtorch_weights("this decode step");
  std::vector<int64_t> positions;
  for (auto* c : caches)
    positions.push_back(c->length);
  auto index = torch::TensorOptions().dtype(torch::kInt64).device(device_);
  auto pos = torch::tensor(positions, torch::kInt64).to(device_);
  auto cos = cos_.index_select(0, pos).unsqueeze(1);  // [rows, 1, d]
  auto sin = sin_.index_select(0, pos).unsqueeze(1);
  auto x = weights_.embed.index_select(0, torch::tensor(ids, torch::kInt64).to(device_));
  for (size_t l = 0; l < weights_.layers.size(); ++l) {
    const auto& w = weights_.layers[l];
    auto h = rms_norm(x, w.input_norm, eps);
    auto q = apply_rope(project_rows(h, l, proj::q, loras).view({rows, heads, d}).to(torch::kFloat32), cos, sin);
    auto k = apply_rope(project_rows(h, l, proj::k, loras).view({rows, kv, d}).to(torch::kFloat32), cos, sin);
    auto v = project_rows(h, l, proj::v, loras).view({rows, kv, d});
    std::vector<torch::Tensor> outs;
    for (int64_t r = 0; r < rows; ++r) {
      auto& cache = *caches[static_cast<size_t>(r)];
      const int64_t at = cache.length, total = at + 1;
      write_kv(cache.k[l], cache, at, 1, k[r].unsqueeze(1));
      write_kv(cache.v[l], cache, at, 1, v[r].unsqueeze(1));
      auto keys = read_kv(cache.k[l], cache, total).to(torch::kFloat32);
      auto values = read_kv(cache.v[l], cache, total).to(torch::kFloat32);
      auto scores = torch::bmm(q[r].view({kv, heads / kv, d}), keys.transpose(1, 2))
                      .mul_(1.0 / std::sqrt(static_cast<double>(d)));
      const int64_t window = config_.sliding_window;
      if (window > 0 && total > window) {
        auto cols = torch::arange(0, total, index);
        scores.masked_fill_(cols <= at - window, -std::numeric_limits<float>::infinity());
      }
      outs.push_back(torch::bmm(torch::softmax(scores, -1), values).reshape({heads * d}));
    }
    auto attn = torch::stack(outs).to(dtype_);
    x = x + project_rows(attn, l, proj::o, loras);
    auto post = rms_norm(x, w.post_attention_norm, eps);
    auto gate = project_rows(post, l, proj::gate, loras);
    auto up = project_rows(post, l, proj::up, loras);
    x = x + project_rows(torch::silu(gate) * up, l, proj::down, loras);
  }
  for (auto* c : caches)
    ++c->length;
  return logits(rms_norm(x, weights_.final_norm, eps));
}

}  // namespace adapterd::model
