#pragma once
// The model layer's public face, free of libtorch: a loaded base model (weights resident
// on its device, tokenizer, config), the LoRA adapters that run on it unmerged, and
// generation. Every failure is a `result` error; no exception leaves these calls.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/grammar/token_masks.hpp"
#include "model/llama/kv_blocks.hpp"
#include "model/llama/logprobs.hpp"
#include "model/llama/model_config.hpp"
#include "model/llama/sampler.hpp"
#include "model/result.hpp"
#include "model/tokenizer/tokenizer.hpp"

namespace adapterd::model {

struct load_options {
  std::string device = "auto";  // auto | cpu | cuda
  int threads = 0;              // intra-op threads; 0 keeps libtorch's default
  std::string dtype = "auto";   // auto (fp32 on CPU, bf16 on CUDA) | float32 | bfloat16 | float16
  /// Fault injection for tests of out-of-memory recovery: a forward pass whose MLP
  /// activations would exceed this many bytes fails as an allocation failure. 0: off.
  size_t activation_limit_bytes = 0;
  /// Tokens of the KV pool allocated with the model, shared by the sequences that run at
  /// once (generation_params::pooled_kv). 0: no pool.
  int64_t kv_pool_tokens = 0;
  /// How the CPU kernels hold the linear weights: auto (f32) | f32 | bf16 | int8 | q4.
  /// Quantised on load from the safetensors as saved; nothing converted is written.
  std::string weights = "auto";
  /// The KV cache's type: auto (the compute dtype) | float32 | bfloat16 (half the memory).
  std::string kv_dtype = "auto";
  /// Pooled sequences reuse the KV of a prompt prefix computed before under the same
  /// adapter (kv_blocks), and leave theirs for later ones.
  bool prefix_cache = false;
};

/// Bytes the weights of `dir` will take once loaded with `options` (from the safetensors
/// headers only; nothing is read).
result<size_t> estimate_weight_bytes(const std::string& dir, const load_options& options);

/// Bytes of the KV cache (or pool) of `tokens` tokens.
result<size_t> estimate_kv_bytes(const std::string& dir, const load_options& options,
                                 int64_t tokens);

/// Uses at most `threads` of the CPU decode pool from now on (benchmarks compare counts).
void set_cpu_threads(int threads);

/// The device a load_options::device name stands for here ("auto" -> "cuda:0" or "cpu").
result<std::string> resolve_device(const std::string& name);

/// An adapter's weights, resident on its base model's device. Opaque outside model/.
class lora_adapter {
public:
  struct impl;
  explicit lora_adapter(std::shared_ptr<const impl> p) : impl_(std::move(p)) {}
  size_t bytes() const;
  const std::string& path() const;
  std::string device() const;
  const impl& get() const { return *impl_; }

private:
  std::shared_ptr<const impl> impl_;
};

struct generation_params {
  uint32_t max_new_tokens = 64;
  sampling_params sampling;
  std::vector<std::string> stop;  // text that ends generation; not part of the output
  int64_t max_context_tokens = 0;  // prompt + output cap below the model's context; 0: none
  int64_t prefill_chunk = 0;       // prefill this many tokens per pass; 0: all at once
  bool pooled_kv = false;          // the KV cache comes from the model's pool, not a new allocation
  bool defer_prefill = false;      // begin() only takes the KV; prefill_some() computes the prompt
  bool ignore_eos = false;         // an end-of-sequence token is output like any other
  uint32_t min_tokens = 0;         // end-of-sequence tokens cannot be sampled before this many
  std::vector<int32_t> stop_ids;   // vLLM's stop_token_ids: generating one ends it ("stop"); it
                                   // is output (its text too, unless special), as vLLM does
  /// -1: none; N >= 0: each output token's logprob among the logits it was drawn from
  /// (after bias, penalties and temperature) and the N most likely tokens' (OpenAI's).
  int32_t logprobs = -1;
  /// The prompt's tokens' teacher-forced logprobs too (N as logprobs; raw logits), in
  /// generation_output::prompt_logprobs. Its KV is computed, never taken from the cache.
  bool prompt_logprobs = false;
  /// Structured output: only tokens that continue JSON this constraint accepts
  /// (base_model::json_constraint); it ends ("stop") once the JSON is whole.
  std::shared_ptr<json_constraint> constraint;
};

struct generation_output {
  std::vector<int32_t> prompt_ids;
  std::vector<int32_t> output_ids;
  std::string text;           // decoded output, special tokens skipped
  std::string finish_reason;  // "eos" | "length" | "stop"
  double prefill_ms = 0;
  double decode_ms = 0;
  int64_t cached_tokens = 0;  // prompt tokens whose KV came from the prefix cache, not prefill
  std::vector<token_logprob> logprobs;         // per output token (generation_params::logprobs)
  std::vector<token_logprob> prompt_logprobs;  // per prompt token after the first
};

/// One sequence in generation. base_model::begin prefills it and picks its first token;
/// base_model::step advances several at once, each with its own adapter and position.
class generation {
public:
  struct impl;
  explicit generation(std::unique_ptr<impl> p);
  ~generation();
  bool finished() const;
  /// Its KV blocks went back to the pool (base_model::preempt); it steps again after restore.
  bool preempted() const;
  /// Begun with defer_prefill, its prompt is not all computed yet (base_model::prefill_some).
  bool prefilling() const;
  int64_t prefill_left() const;  // prompt tokens still to compute
  /// The tokens so far; finish_reason is set once finished.
  const generation_output& output() const;
  impl& get() { return *impl_; }

private:
  std::unique_ptr<impl> impl_;
};

class base_model {
public:
  struct impl;

  static result<std::shared_ptr<const base_model>> load(const std::string& dir,
                                                        const load_options& options);
  explicit base_model(std::unique_ptr<impl> p);
  ~base_model();

  const std::string& path() const;
  const model_config& config() const;
  const tokenizer& tok() const;
  std::string device() const;  // "cpu", "cuda:0"
  std::string dtype() const;   // "float32", "bfloat16", "float16"
  std::string weights_format() const;  // "f32", "bf16", "int8", "q4" (load_options::weights)
  std::string kv_dtype() const;        // "float32", "bfloat16", "float16"
  size_t weight_bytes() const;

  result<std::shared_ptr<const lora_adapter>> load_adapter(const std::string& dir) const;
  /// The constraint for a JSON schema over this model's vocabulary (empty text: any JSON
  /// object), shared by every request that sends the same schema. errc::invalid_argument
  /// names what of a schema is not supported.
  result<std::shared_ptr<json_constraint>> json_constraint_for(
      const std::string& schema_text) const;
  /// Bytes the adapter in `dir` will take on this model's device.
  result<size_t> estimate_adapter_bytes(const std::string& dir) const;
  /// A copy of `adapter` in host memory (to_host) or back on this model's device.
  result<std::shared_ptr<const lora_adapter>> move_adapter(const lora_adapter& adapter,
                                                           bool to_host) const;
  /// Bytes of the KV cache for one sequence of `tokens` tokens.
  size_t kv_cache_bytes(int64_t tokens) const;
  /// The KV tokens a generation of `prompt_tokens` with `params` takes (prompt + output,
  /// within the context); 0 for a prompt that begin() refuses (empty, or past the context).
  int64_t kv_tokens_needed(size_t prompt_tokens, const generation_params& params) const;
  /// The KV pool: its size, what running generations hold, and whether `tokens` more fit
  /// in one free range now.
  int64_t kv_pool_tokens() const;
  int64_t kv_pool_tokens_used() const;
  size_t kv_pool_bytes() const;
  bool kv_pool_fits(int64_t tokens) const;
  /// Prompt tokens a pooled generation under `adapter` would take from the prefix cache now.
  int64_t cached_prefix_tokens(const std::vector<int32_t>& prompt_ids,
                               const lora_adapter* adapter) const;
  /// The pool's blocks (in use, cached, free) and what the prefix cache saved.
  kv_block_stats kv_pool_stats() const;
  /// Forgets every cached prefix; blocks in use stay with their sequences.
  void drop_prefix_cache() const;

  /// Tokenizes `prompt` (with BOS where the tokenizer adds one) and generates.
  result<generation_output> generate(const std::string& prompt, const generation_params& params,
                                     const lora_adapter* adapter) const;
  /// Generates from token ids; stops on any eos id of the config, at max_new_tokens, or
  /// when `on_token` (called with each non-eos id) returns false ("stop").
  result<generation_output> generate_ids(const std::vector<int32_t>& prompt_ids,
                                         const generation_params& params,
                                         const lora_adapter* adapter,
                                         const std::function<bool(int32_t)>& on_token = {}) const;

  /// Validates, prefills and picks the first token. `adapter` (and the model) must outlive
  /// the generation; `on_token` as for generate_ids.
  result<std::unique_ptr<generation>> begin(const std::vector<int32_t>& prompt_ids,
                                            const generation_params& params,
                                            const lora_adapter* adapter,
                                            std::function<bool(int32_t)> on_token = {}) const;
  /// A pooled generation holds KV blocks for what it has computed; before each step it needs
  /// a slot for one more token: make_room() takes a block when its blocks are full, and is
  /// false when the pool has none now. preempt() gives its blocks back (whole blocks stay
  /// cached) so that others can grow; restore() takes blocks again and computes what the
  /// prefix cache no longer has, after which it steps on as if nothing happened.
  bool make_room(generation& g) const;
  /// Computes up to `max_tokens` more of a deferred prompt (at least one); true once the
  /// prompt is done and the first new token is picked. Slices give the tokens of one pass.
  result<bool> prefill_some(generation& g, int64_t max_tokens) const;
  /// A deferred prompt takes the KV of its next blocks from the prefix cache, where another
  /// sequence computed them after this one began (one with the same start, a step ahead).
  /// Returns the prompt tokens it need not compute now.
  int64_t adopt_cached_prefix(generation& g) const;
  void preempt(generation& g) const;
  std::optional<error> restore(generation& g) const;
  /// A decode step for `batch` (as step()) and up to `max_tokens` more of each slice's
  /// prompt (as prefill_some()) in one pass, whose rows share every matrix call. Empty when
  /// these rows cannot share a pass here (not the CPU kernels, prompt logprobs, a prefill
  /// chunk smaller than the slice, a generation not in the state the two calls expect):
  /// then nothing changed, and step() and prefill_some() do it apart. Else, per slice,
  /// whether its prompt is done (its first token picked), or the pass's error, after which
  /// no generation has advanced.
  struct prompt_slice {
    generation* g = nullptr;
    int64_t max_tokens = 0;
  };
  std::optional<result<std::vector<bool>>> step_with_prompts(
      const std::vector<generation*>& batch, const std::vector<prompt_slice>& slices) const;
  /// One more token for every unfinished generation in `batch`, in one batched pass; a
  /// row's tokens do not depend on what else is in the batch. Each needs make_room() first.
  std::optional<error> step(const std::vector<generation*>& batch) const;

  /// Logits after every position of `ids`, row-major [ids.size(), vocab]: in one pass, or
  /// one token at a time through the KV cache (verification and tests).
  result<std::vector<float>> logits(const std::vector<int32_t>& ids, const lora_adapter* adapter,
                                    bool incremental = false) const;

  /// A new base model whose weights have the adapter merged in (W + s·BA).
  result<std::shared_ptr<const base_model>> merged_with(const lora_adapter& adapter) const;

private:
  std::unique_ptr<impl> impl_;
};

}  // namespace adapterd::model
