#pragma once
// The Llama-family decoder in libtorch. Internal to model/: only model/*.cpp include
// this header (it pulls in libtorch, ~18 s per translation unit).
#include <array>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "model/llama/kv_blocks.hpp"
#include "model/llama/model_config.hpp"
#include "model/quant/dense.hpp"
#include "model/result.hpp"

namespace adapterd::model {

enum class proj : size_t { q, k, v, o, gate, up, down };
constexpr size_t proj_count = 7;
const char* proj_module(proj p);  // "self_attn.q_proj", ...
/// The [out, in] shape of one projection's weight in a model of config c.
std::pair<int64_t, int64_t> linear_shape(const model_config& c, proj p);

struct linear_weights {
  torch::Tensor weight;  // [out, in]
  torch::Tensor bias;    // undefined when the layer has none
};

struct layer_weights {
  torch::Tensor input_norm, post_attention_norm;
  std::array<linear_weights, proj_count> linear;
};

struct llama_weights {
  torch::Tensor embed, final_norm, lm_head;
  std::vector<layer_weights> layers;
};

/// One LoRA pair of an unmerged adapter: y += scale * B(A x).
struct lora_pair {
  torch::Tensor a;  // [r, in]
  torch::Tensor b;  // [out, r]
  double scale = 1.0;
};

struct lora_weights {
  std::vector<std::array<std::optional<lora_pair>, proj_count>> layers;
  size_t bytes = 0;
  kv_owner content;  // a hash of every pair's numbers: what KV computed under it depends on
};

/// Keys and values of every layer for one sequence, in blocks of kv_block_tokens slots:
/// token t lies in slot blocks[t / 16] * 16 + t % 16 of each layer's tensor. A pooled
/// cache's tensors are the pool's and its blocks anywhere in them; a cache of its own has
/// its own tensors and blocks 0, 1, 2 ... in order.
struct kv_cache {
  std::vector<torch::Tensor> k, v;  // [kv_heads, slots, head_dim]
  std::vector<int32_t> blocks;      // the block table
  torch::Tensor slot_index;         // slot(t) for every t < capacity, on the cache's device
  int64_t capacity = 0;             // tokens the blocks hold
  int64_t length = 0;
  bool pooled = false;

  int64_t slot(int64_t t) const {
    return static_cast<int64_t>(blocks[static_cast<size_t>(t / kv_block_tokens)]) * kv_block_tokens
           + t % kv_block_tokens;
  }
  /// Whether token t lies in slot t for every t (a cache of its own): reads need no gather.
  bool in_order() const { return !pooled; }
};

class llama_model {
 public:
  /// weights: the format the CPU kernels hold the linear weights in. Anything but f32
  /// needs the CPU with fp32 compute, and then only the kernels run the model: the
  /// libtorch copies of the quantised weights are released (forward() and logits() refuse).
  llama_model(model_config config, llama_weights weights, torch::Device device,
              torch::ScalarType dtype, size_t activation_limit_bytes = 0,
              quant::weight_format weights_format = quant::weight_format::f32,
              std::optional<torch::ScalarType> kv_dtype = std::nullopt);  // none: the compute dtype

  const model_config& config() const { return config_; }
  const llama_weights& weights() const { return weights_; }
  torch::Device device() const { return device_; }
  torch::ScalarType dtype() const { return dtype_; }
  quant::weight_format weights_format() const { return weights_format_; }
  torch::ScalarType kv_dtype() const { return kv_dtype_; }
  /// Bytes the weights take as held: the packed matrices plus what stays in libtorch.
  size_t resident_weight_bytes() const;

  kv_cache make_cache(int64_t capacity) const;
  /// Runs `ids` (positions cache.length ...) through the decoder and returns the final
  /// hidden states [T, hidden]; the cache grows by T.
  torch::Tensor forward(const torch::Tensor& ids, kv_cache& cache, const lora_weights* lora) const;
  /// Vocabulary logits of hidden states.
  torch::Tensor logits(const torch::Tensor& hidden) const;

  /// One decode step for several sequences: row i feeds ids[i] at position
  /// caches[i]->length through its own adapter loras[i] (or none). The linear layers run
  /// once for all rows (each adapter's rows add their LoRA term); attention runs per row
  /// over that row's cache. Returns the logits [rows, vocab]; every cache grows by one.
  torch::Tensor decode_batch(const std::vector<int64_t>& ids, const std::vector<kv_cache*>& caches,
                             const std::vector<const lora_weights*>& loras) const;

  /// Prefill through the CPU decode kernels: `ids` run at positions cache.length ...
  /// (causal within them) and the logits of the last one come back [1, vocab] (of every
  /// one [ids.size(), vocab] with all_logits); the cache grows by ids.size(). Null when
  /// this model or adapter cannot use them (see forward()).
  std::optional<torch::Tensor> prefill_cpu(const std::vector<int64_t>& ids, kv_cache& cache,
                                           const lora_weights* lora, bool all_logits = false) const;

  /// A decode step and prompt slices in one pass through the CPU kernels: row i feeds
  /// ids[i] at the next position of caches[i] (a slice's rows share its cache, causal
  /// within them), and the logits of `logit_rows` come back [logit_rows.size(), vocab].
  /// Every row's result is what decode_batch or prefill_cpu would give it alone. Null when
  /// the CPU kernels cannot run these rows.
  std::optional<torch::Tensor> mixed_batch_cpu(const std::vector<int64_t>& ids,
                                               const std::vector<kv_cache*>& caches,
                                               const std::vector<const lora_weights*>& loras,
                                               const std::vector<size_t>& logit_rows) const;

  /// Teacher-forced logits [ids.size(), vocab] of one sequence through the CPU kernels
  /// (any weight format); null when they cannot run this model or adapter.
  std::optional<torch::Tensor> sequence_logits_cpu(const std::vector<int64_t>& ids,
                                                   const lora_weights* lora) const;

 private:
  // The CPU fp32 decode path (decode_cpu.cpp; its products in dense_parallel.cpp).
  struct cpu_scratch {
    std::vector<float> x, norm, qkv, attn, proj, gate_up, lora_in, lora_mid, lora_out;
    quant::activations act;
    std::vector<int64_t> position;
    std::vector<std::pair<kv_cache*, int64_t>> next_position;
    std::vector<const lora_pair*> lora_done;
    std::vector<size_t> lora_rows;
  };
  struct packed_layer {
    torch::Tensor qkv_bias, gate_up_bias;  // fused; undefined when the model has none
    quant::matrix qkv, o, gate_up, down;   // q|k|v and gate|up as one matrix each
  };
  void pack_for_cpu();
  void require_libtorch_weights(const char* what) const;  // throws for a quantised model
  bool cpu_decode_ready(const std::vector<const lora_weights*>& loras) const;
  /// Row i feeds ids[i] through loras[i] at the next free position of caches[i]; rows
  /// that share a cache are consecutive positions of one sequence, each attending to
  /// those before it. Logits for the rows in `logit_rows` (all when empty).
  torch::Tensor decode_batch_cpu(const std::vector<int64_t>& ids,
                                 const std::vector<kv_cache*>& caches,
                                 const std::vector<const lora_weights*>& loras,
                                 const std::vector<size_t>& logit_rows = {}) const;
  void add_lora_cpu(const float* x, size_t ldx, size_t rows, size_t layer, proj p,
                    const std::vector<const lora_weights*>& loras, float* y, size_t ldy,
                    cpu_scratch& s) const;

  torch::Tensor project_rows(const torch::Tensor& x, size_t layer, proj p,
                             const std::vector<const lora_weights*>& loras) const;
  torch::Tensor attention(const torch::Tensor& x, size_t layer, kv_cache& cache,
                          const lora_weights* lora, const torch::Tensor& cos,
                          const torch::Tensor& sin) const;

  model_config config_;
  llama_weights weights_;
  torch::Device device_;
  torch::ScalarType dtype_;
  size_t activation_limit_bytes_;  // fault injection, see load_options
  torch::Tensor cos_, sin_;        // [max_positions, head_dim], in the compute dtype
  quant::weight_format weights_format_;
  torch::ScalarType kv_dtype_;
  std::shared_ptr<float> arena_;        // CPU: every linear weight in its format, in huge pages
  std::vector<packed_layer> packed_;    // empty: decode runs through libtorch
  quant::matrix embed_rows_, lm_head_;  // the token table (rows dequantised on lookup), the head
};

/// The LoRA pair of `lora` for one module, or null.
const lora_pair* lora_for(const lora_weights* lora, size_t layer, proj p);

/// One KV arena for all the sequences of a model, allocated once: per layer
/// [kv_heads, blocks x 16, head_dim]. A sequence's cache is a table of its blocks, so
/// serving allocates no KV memory per request, the pool's size bounds it, and freed
/// blocks serve any later sequence whatever their places.
class kv_pool {
 public:
  /// `tokens`: rounded up to whole blocks; `prefix_cache`: full blocks are kept for later
  /// sequences that begin with the same tokens under the same adapter (kv_blocks).
  kv_pool(const llama_model& model, int64_t tokens, bool prefix_cache = false);
  /// A cache of at least `tokens` tokens from the pool; nullopt when too few blocks can be
  /// had. With `prompt`, its longest cached prefix under `owner` (at most `reusable`
  /// tokens) is already in the cache: its length says how many tokens were reused.
  std::optional<kv_cache> take(int64_t tokens, const kv_owner& owner = {},
                               const std::vector<int32_t>* prompt = nullptr, int64_t reusable = 0);
  /// The prompt tokens take() would find cached now under `owner` (the last one never).
  int64_t cached_prefix(const kv_owner& owner, const std::vector<int32_t>& prompt) const {
    return blocks_.cached_prefix(owner, prompt.data(), static_cast<int64_t>(prompt.size()) - 1);
  }
  /// Swaps the cache's fresh blocks after its length for cached blocks of `prompt` under
  /// `owner` that other sequences computed since (kv_blocks::adopt); the last prompt token
  /// is never taken from the cache. Returns the tokens gained.
  int64_t adopt(kv_cache& cache, const kv_owner& owner, const std::vector<int32_t>& prompt);
  /// Offers the cache's full blocks of its first `filled` tokens to later sequences.
  void publish(const kv_cache& cache, const kv_owner& owner, const std::vector<int32_t>& tokens,
               int64_t filled);
  void give_back(const kv_cache& cache);
  /// One more block at the end of a pooled cache (a sequence grows a block at a time);
  /// false when no block can be had now.
  bool grow(kv_cache& cache);
  bool fits(int64_t tokens) const;
  void drop_cached() { blocks_.drop_cached(); }
  int64_t tokens() const { return blocks_.count() * kv_block_tokens; }
  int64_t tokens_used() const { return blocks_.used() * kv_block_tokens; }
  kv_block_stats stats() const { return blocks_.stats(); }

 private:
  void index_slots(kv_cache& cache) const;  // capacity and slot_index from the block table

  std::vector<torch::Tensor> k_, v_;
  torch::Device device_;
  kv_blocks blocks_;
};

/// The rotary inverse frequencies, computed in fp32 exactly as transformers does,
/// including `linear` and `llama3` scaling.
torch::Tensor rope_inv_freq(const model_config& config);
/// RMSNorm in fp32 whatever the compute dtype, as transformers' LlamaRMSNorm.
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps);
/// Rotary embedding, transformers' rotate_half convention.
torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos,
                         const torch::Tensor& sin);

/// Reads every weight of `dir` (single or sharded safetensors, F32/F16/BF16) onto
/// `device` in `dtype`; weights already stored in `dtype` stay in the memory-mapped file
/// on the CPU.
result<llama_weights> load_llama_weights(const std::string& dir, const model_config& config,
                                         torch::Device device, torch::ScalarType dtype);

/// Reads a PEFT adapter for `model`; every shape must fit the base model.
result<lora_weights> load_lora_weights(const std::string& dir, const llama_model& model);

}  // namespace adapterd::model
