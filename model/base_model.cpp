// Over 600 lines on purpose: the layer's one face (loading, adapters, KV pool and prefix
// cache, batched generation and its KV lifecycle: prefill slices, alone or in a decode
// step's pass, growth, preemption) over llama/. Each part is small; they share
// base_model::impl and generation::impl (the model, its pool and the pool's lock; a
// sequence's cache, sampler, logprobs and JSON matcher), which a split would have to
// expose in a header. The generation lifecycle is the piece to move out first; the
// grammar and logprob work already lives in grammar/ and llama/.
#include "model/base_model.hpp"

#include <chrono>
#include <cstring>
#include <limits>
#include <mutex>
#include <thread>

#include "model/io/weights.hpp"
#include "model/llama/llama.hpp"
#include "model/llama/spin_pool.hpp"
#include "model/quant/dense.hpp"
#include "model/step_profile.hpp"
#include "model/text_generation.hpp"

namespace adapterd::model {

struct base_model::impl {
  std::string path;
  std::shared_ptr<const tokenizer> tok;
  llama_model model;
  size_t weight_bytes = 0;
  std::unique_ptr<kv_pool> pool;  // null: every generation allocates its own cache
  mutable std::mutex pool_mutex;
  mutable std::mutex constraints_mutex{};
  mutable std::unique_ptr<constraint_cache> constraints =
      nullptr;  // made on the first JSON request
};

struct lora_adapter::impl {
  std::string path;
  lora_weights weights;
};

size_t lora_adapter::bytes() const { return impl_->weights.bytes; }
const std::string& lora_adapter::path() const { return impl_->path; }
std::string lora_adapter::device() const {
  for (const auto& layer : impl_->weights.layers)
    for (const auto& pair : layer)
      if (pair)
        return pair->a.device().str();
  return "cpu";
}

namespace {

using clock_type = std::chrono::steady_clock;

double ms_since(clock_type::time_point t) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - t).count();
}

bool is_oom_text(const std::string& what) {
  for (const char* needle : {"out of memory", "can't allocate memory", "not enough memory"})
    if (what.find(needle) != std::string::npos)
      return true;
  return false;
}

// The exception firewall of the model layer: libtorch failures become error values.
template <class F>
auto guarded(const char* what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const c10::OutOfMemoryError& e) {
    return make_error(errc::out_of_memory, std::string(what) + ": " + e.what_without_backtrace());
  } catch (const c10::Error& e) {
    std::string msg = e.what_without_backtrace();
    return make_error(is_oom_text(msg) ? errc::out_of_memory : errc::internal,
                      std::string(what) + ": " + msg);
  } catch (const std::bad_alloc&) {
    return make_error(errc::out_of_memory, std::string(what) + ": allocation failed");
  } catch (const std::exception& e) {
    return make_error(errc::internal, std::string(what) + ": " + e.what());
  }
}

result<torch::Device> pick_device(const std::string& name) {
  if (name == "cpu")
    return torch::Device(torch::kCPU);
  bool cuda = torch::cuda::is_available();
  if (name == "cuda" || name.rfind("cuda:", 0) == 0) {
    if (!cuda)
      return make_error(errc::invalid_argument, "device '" + name + "' requested but libtorch sees no CUDA device");
    return name == "cuda" ? torch::Device(torch::kCUDA, 0) : torch::Device(name);
  }
  if (name == "auto")
    return cuda ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  return make_error(errc::invalid_argument, "device must be auto, cpu or cuda, not '" + name + "'");
}

result<torch::ScalarType> pick_dtype(const std::string& name, torch::Device device) {
  if (name == "auto")
    return device.is_cuda() ? torch::kBFloat16 : torch::kFloat32;
  if (name == "float32" || name == "fp32")
    return torch::kFloat32;
  if (name == "bfloat16" || name == "bf16")
    return torch::kBFloat16;
  if (name == "float16" || name == "fp16") {
    if (!device.is_cuda())
      return make_error(errc::invalid_argument, "float16 compute needs CUDA; use bfloat16 or float32 on the CPU");
    return torch::kFloat16;
  }
  return make_error(errc::invalid_argument, "dtype must be auto, float32, bfloat16 or float16, not '" + name + "'");
}

struct placement {
  torch::Device device;
  torch::ScalarType dtype;
  quant::weight_format weights;
  torch::ScalarType kv_dtype;
};

result<placement> pick_placement(const load_options& options) {
  auto device = pick_device(options.device);
  if (!device)
    return device.err();
  auto dtype = pick_dtype(options.dtype, *device);
  if (!dtype)
    return dtype.err();
  // auto is f32: what the goldens check bit for bit; the smaller formats are a choice.
  auto weights = options.weights == "auto" ? quant::weight_format::f32
                                           : quant::weight_format_from_name(options.weights);
  if (!weights)
    return make_error(errc::invalid_argument,
                      "weights must be auto, f32, bf16, int8 or q4, not '" + options.weights + "'");
  if (*weights != quant::weight_format::f32 && (!device->is_cpu() || *dtype != torch::kFloat32))
    return make_error(errc::invalid_argument, std::string("--weights=") + quant::name_of(*weights)
                                                + " runs on the CPU kernels: it needs --device=cpu and "
                                                  "float32 compute");
  torch::ScalarType kv = *dtype;
  if (options.kv_dtype != "auto") {
    auto picked = pick_dtype(options.kv_dtype, *device);
    if (!picked || *picked == torch::kFloat16)
      return make_error(errc::invalid_argument, "kv_dtype must be auto, float32 or bfloat16, not '"
                                                    + options.kv_dtype + "'");
    kv = *picked;
  }
  return placement{*device, *dtype, *weights, kv};
}

// The longest prompt + output a generation with `params` may reach.
int64_t context_tokens(const model_config& c, const generation_params& params) {
  return params.max_context_tokens > 0 ? std::min(params.max_context_tokens, c.max_position_embeddings)
                                       : c.max_position_embeddings;
}

std::vector<float> to_host(const torch::Tensor& t) {
  auto host = t.to(torch::kCPU, torch::kFloat32).contiguous();
  std::vector<float> out(static_cast<size_t>(host.numel()));
  std::memcpy(out.data(), host.data_ptr<float>(), out.size() * sizeof(float));
  return out;
}

torch::Tensor ids_tensor(const std::vector<int32_t>& ids, torch::Device device) {
  std::vector<int64_t> wide(ids.begin(), ids.end());
  return torch::tensor(wide, torch::kInt64).to(device);
}

std::optional<error> check_ids(const std::vector<int32_t>& ids, const model_config& c) {
  for (auto id : ids)
    if (id < 0 || id >= c.vocab_size)
      return make_error(errc::invalid_argument, "token id " + std::to_string(id)
                                                  + " is outside the vocabulary of "
                                                  + std::to_string(c.vocab_size));
  return std::nullopt;
}

// Bytes one stored tensor takes once loaded: the linear weights (and the head and token
// table, see llama_model::pack_for_cpu) in the weight format, the rest in the dtype.
size_t packed_bytes(const std::string& name, const std::vector<int64_t>& shape,
                    const model_config& c, torch::ScalarType dtype, quant::weight_format format) {
  size_t numel = 1;
  for (auto d : shape)
    numel *= static_cast<size_t>(d);
  const bool matrix =
      shape.size() == 2 && name.size() > 7 && name.compare(name.size() - 7, 7, ".weight") == 0;
  if (format == quant::weight_format::f32 || !matrix)
    return numel * c10::elementSize(dtype);
  const bool head =
      name == "lm_head.weight" || (c.tie_word_embeddings && name == "model.embed_tokens.weight");
  const auto cols = static_cast<size_t>(shape[1]);
  return static_cast<size_t>(shape[0])
         * quant::row_bytes(quant::stored_format(format, cols, head), cols);
}

}  // namespace

void set_cpu_threads(int threads) {
  spin_pool::instance().set_limit(static_cast<size_t>(std::max(1, threads)));
}

result<std::string> resolve_device(const std::string& name) {
  auto device = pick_device(name);
  if (!device)
    return device.err();
  return device->str();
}

base_model::base_model(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
base_model::~base_model() = default;

const std::string& base_model::path() const { return impl_->path; }
const model_config& base_model::config() const { return impl_->model.config(); }
const tokenizer& base_model::tok() const { return *impl_->tok; }
std::string base_model::device() const { return impl_->model.device().str(); }
namespace {
std::string dtype_name(torch::ScalarType t) {
  switch (t) {
    case torch::kBFloat16: return "bfloat16";
    case torch::kFloat16: return "float16";
    default: return "float32";
  }
}
}  // namespace

std::string base_model::dtype() const {
  return dtype_name(impl_->model.dtype());
}
std::string base_model::kv_dtype() const {
  return dtype_name(impl_->model.kv_dtype());
}
size_t base_model::weight_bytes() const { return impl_->weight_bytes; }
std::string base_model::weights_format() const {
  return quant::name_of(impl_->model.weights_format());
}

result<std::shared_ptr<const base_model>> base_model::load(const std::string& dir,
                                                           const load_options& options) {
  return guarded("loading model", [&]() -> result<std::shared_ptr<const base_model>> {
    auto where = pick_placement(options);
    if (!where)
      return where.err();
    // 0: one per CPU. libtorch's own default counts physical cores through cpuinfo, which
    // finds one on some virtual machines that have two, and then decodes on one thread.
    const int threads = options.threads > 0 ? options.threads
                                            : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    if (torch::get_num_threads() != threads)
      torch::set_num_threads(threads);
    spin_pool::size_instance(static_cast<size_t>(threads));
    auto config = load_model_config(dir);
    if (!config)
      return config.err();
    auto tok = tokenizer::load(dir);
    if (!tok)
      return tok.err();
    auto weights = load_llama_weights(dir, *config, where->device, where->dtype);
    if (!weights)
      return weights.err();
    std::unique_ptr<impl> p(
        new impl{dir,
                 *tok,
                 llama_model(*config, std::move(*weights), where->device, where->dtype,
                             options.activation_limit_bytes, where->weights, where->kv_dtype),
                 0,
                 nullptr,
                 {}});
    p->weight_bytes = p->model.resident_weight_bytes();
    if (options.kv_pool_tokens > 0)
      p->pool = std::make_unique<kv_pool>(p->model, options.kv_pool_tokens, options.prefix_cache);
    return std::shared_ptr<const base_model>(std::make_shared<base_model>(std::move(p)));
  });
}

result<std::shared_ptr<json_constraint>> base_model::json_constraint_for(
    const std::string& schema_text) const {
  std::unique_lock<std::mutex> lock(impl_->constraints_mutex);
  if (!impl_->constraints)
    impl_->constraints =
        std::make_unique<constraint_cache>(impl_->tok, static_cast<size_t>(config().vocab_size));
  lock.unlock();
  return impl_->constraints->get(schema_text);
}

result<std::shared_ptr<const lora_adapter>> base_model::load_adapter(const std::string& dir) const {
  return guarded("loading adapter", [&]() -> result<std::shared_ptr<const lora_adapter>> {
    auto weights = load_lora_weights(dir, impl_->model);
    if (!weights)
      return weights.err();
    auto p = std::make_shared<const lora_adapter::impl>(lora_adapter::impl{dir, std::move(*weights)});
    return std::make_shared<const lora_adapter>(p);
  });
}

result<size_t> estimate_weight_bytes(const std::string& dir, const load_options& options) {
  return guarded("estimating model size", [&]() -> result<size_t> {
    auto where = pick_placement(options);
    if (!where)
      return where.err();
    auto index = open_tensors(dir, "model.safetensors");
    if (!index)
      return index.err();
    auto config = load_model_config(dir);
    if (!config)
      return config.err();
    size_t bytes = 0;
    for (const auto& [name, view] : index->by_name)
      bytes += packed_bytes(name, view->shape, *config, where->dtype, where->weights);
    return bytes;
  });
}

result<size_t> estimate_kv_bytes(const std::string& dir, const load_options& options,
                                 int64_t tokens) {
  auto where = pick_placement(options);
  if (!where)
    return where.err();
  auto c = load_model_config(dir);
  if (!c)
    return c.err();
  return static_cast<size_t>(2 * c->num_layers * c->num_kv_heads * c->head_dim * tokens)
         * c10::elementSize(where->kv_dtype);
}

result<size_t> base_model::estimate_adapter_bytes(const std::string& dir) const {
  auto index = open_tensors(dir, "adapter_model.safetensors");
  if (!index)
    return make_error(errc::invalid_adapter, index.err().message);
  size_t bytes = 0;
  for (const auto& [name, view] : index->by_name)
    bytes += static_cast<size_t>(view->numel()) * c10::elementSize(impl_->model.dtype());
  return bytes;
}

result<std::shared_ptr<const lora_adapter>> base_model::move_adapter(const lora_adapter& adapter,
                                                                     bool to_host) const {
  return guarded("moving adapter", [&]() -> result<std::shared_ptr<const lora_adapter>> {
    torch::InferenceMode guard;
    auto target = to_host ? torch::Device(torch::kCPU) : impl_->model.device();
    auto moved = adapter.get().weights;
    for (auto& layer : moved.layers)
      for (auto& pair : layer)
        if (pair) {
          pair->a = pair->a.to(target);
          pair->b = pair->b.to(target);
        }
    auto p = std::make_shared<const lora_adapter::impl>(lora_adapter::impl{adapter.path(), std::move(moved)});
    return std::make_shared<const lora_adapter>(p);
  });
}

int64_t base_model::kv_tokens_needed(size_t prompt_tokens, const generation_params& params) const {
  const auto context = context_tokens(config(), params);
  const auto prompt = static_cast<int64_t>(prompt_tokens);
  if (prompt == 0 || prompt >= context)
    return 0;  // begin() refuses it
  return prompt + std::min<int64_t>(params.max_new_tokens, context - prompt);
}

int64_t base_model::kv_pool_tokens() const { return impl_->pool ? impl_->pool->tokens() : 0; }

int64_t base_model::kv_pool_tokens_used() const {
  std::lock_guard<std::mutex> lock(impl_->pool_mutex);
  return impl_->pool ? impl_->pool->tokens_used() : 0;
}

size_t base_model::kv_pool_bytes() const { return kv_cache_bytes(kv_pool_tokens()); }

bool base_model::kv_pool_fits(int64_t tokens) const {
  std::lock_guard<std::mutex> lock(impl_->pool_mutex);
  return impl_->pool && impl_->pool->fits(tokens);
}

int64_t base_model::cached_prefix_tokens(const std::vector<int32_t>& prompt_ids,
                                         const lora_adapter* adapter) const {
  std::lock_guard<std::mutex> lock(impl_->pool_mutex);
  if (!impl_->pool)
    return 0;
  return impl_->pool->cached_prefix(
      adapter != nullptr ? adapter->get().weights.content : kv_owner{}, prompt_ids);
}

kv_block_stats base_model::kv_pool_stats() const {
  std::lock_guard<std::mutex> lock(impl_->pool_mutex);
  return impl_->pool ? impl_->pool->stats() : kv_block_stats{};
}

void base_model::drop_prefix_cache() const {
  std::lock_guard<std::mutex> lock(impl_->pool_mutex);
  if (impl_->pool)
    impl_->pool->drop_cached();
}

size_t base_model::kv_cache_bytes(int64_t tokens) const {
  const auto& c = config();
  return static_cast<size_t>(2 * c.num_layers * c.num_kv_heads * c.head_dim * tokens)
         * c10::elementSize(impl_->model.kv_dtype());
}

result<generation_output> base_model::generate(const std::string& prompt,
                                               const generation_params& params,
                                               const lora_adapter* adapter) const {
  auto ids = impl_->tok->encode(prompt, true);
  auto g = text_generation::start(*this, ids, params, adapter);
  if (!g)
    return g.err();
  while (!(*g)->finished())
    if (auto failed = step({&(*g)->tokens()}))
      return *failed;
  return (*g)->output();
}

struct generation::impl {
  ~impl() {
    if (pool != nullptr) {
      std::lock_guard<std::mutex> lock(*pool_mutex);
      // The keys and values of every token before cache.length are whole: the prompt and
      // all but the last token sampled (history holds both, in order).
      pool->publish(cache, owner(), history, cache.length);
      pool->give_back(cache);
    }
  }
  kv_owner owner() const { return lora != nullptr ? lora->content : kv_owner{}; }

  generation_params params;
  const lora_weights* lora = nullptr;
  kv_pool* pool = nullptr;  // where `cache` came from, if from a pool
  std::mutex* pool_mutex = nullptr;
  std::function<bool(int32_t)> on_token;
  kv_cache cache;
  sampler pick;
  std::vector<int32_t> history;
  std::vector<float> logits;  // for the next token
  int64_t budget = 0;
  generation_output out;
  bool finished = false;
  clock_type::time_point decode_start;
  bool preempted = false;   // its blocks went back to the pool; restore() computes them again
  bool prefilling = false;  // prompt tokens are left to compute (prefill_some)

  std::optional<json_matcher> matcher =
      std::nullopt;  // where the output stands in params.constraint's JSON

  // Structured output: every token that cannot continue the JSON goes to -inf, and end of
  // sequence only where the JSON is whole.
  // False when no token may come next (a schema the vocabulary cannot spell further).
  bool constrain(const model_config& c) {
    if (!matcher)
      matcher = params.constraint->start();
    const auto allowed = params.constraint->allowed(*matcher);
    std::vector<std::pair<size_t, float>> eos;  // kept where the JSON may end here
    if (matcher->can_end())
      for (auto id : c.eos_ids)
        if (id >= 0 && static_cast<size_t>(id) < logits.size())
          eos.emplace_back(static_cast<size_t>(id), logits[static_cast<size_t>(id)]);
    allowed->apply(logits.data(), logits.size());
    for (const auto& [id, logit] : eos)
      logits[id] = logit;
    return !eos.empty() || allowed->any();
  }

  void end_now(const char* reason) {
    out.finish_reason = reason;
    finished = true;
    out.decode_ms = ms_since(decode_start);
  }

  // The prompt's blocks computed so far: later sequences, and those begun with it, may
  // share them now.
  void publish_prompt() {
    if (pool == nullptr)
      return;
    std::lock_guard<std::mutex> lock(*pool_mutex);
    pool->publish(cache, owner(), out.prompt_ids, cache.length);
  }

  // The whole prompt is computed: its last row's logits give the first new token.
  void start_decoding(std::vector<float> last_logits, const model_config& c) {
    prefilling = false;
    logits = std::move(last_logits);
    decode_start = clock_type::now();
    take_token(c);
  }

  // Samples the next token from `logits` and decides whether the sequence is done.
  void take_token(const model_config& c) {
    if (params.constraint && !constrain(c))
      return end_now("stop");
    if (out.output_ids.size() < params.min_tokens) {  // vLLM's min_tokens: no EOS or stop id yet
      auto ban = [&](const std::vector<int32_t>& ids) {
        for (auto id : ids)
          if (id >= 0 && static_cast<size_t>(id) < logits.size())
            logits[static_cast<size_t>(id)] = -std::numeric_limits<float>::infinity();
      };
      ban(c.eos_ids);
      ban(params.stop_ids);
    }
    auto next = pick.next(logits, history, out.output_ids);
    if (params.logprobs >= 0)  // the logits as the draw saw them (pick.next processed them)
      out.logprobs.push_back(
          logprob_of(logits.data(), logits.size(), next, static_cast<uint32_t>(params.logprobs)));
    out.output_ids.push_back(next);
    history.push_back(next);
    const bool eos = std::find(c.eos_ids.begin(), c.eos_ids.end(), next) != c.eos_ids.end();
    // The mask allowed only continuations, so the feed cannot fail; if it did, the JSON
    // would end here rather than go on unchecked.
    const bool json_ends =
        matcher && !eos && (!matcher->feed(params.constraint->bytes(next)) || matcher->finished());
    if (!params.ignore_eos && eos)
      out.finish_reason = "eos";
    else if (std::find(params.stop_ids.begin(), params.stop_ids.end(), next)
             != params.stop_ids.end())
      out.finish_reason = "stop";
    else if (on_token && !on_token(next))
      out.finish_reason = "stop";
    else if (json_ends)  // after on_token: the last token's text still streams
      out.finish_reason = "stop";
    else if (static_cast<int64_t>(out.output_ids.size()) >= budget)
      out.finish_reason = "length";
    finished = !out.finish_reason.empty();
    if (finished)
      out.decode_ms = ms_since(decode_start);
  }
};

generation::generation(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
generation::~generation() = default;
bool generation::finished() const { return impl_->finished; }
bool generation::preempted() const {
  return impl_->preempted;
}
bool generation::prefilling() const {
  return impl_->prefilling;
}
int64_t generation::prefill_left() const {
  return impl_->prefilling
             ? static_cast<int64_t>(impl_->out.prompt_ids.size()) - impl_->cache.length
             : 0;
}
const generation_output& generation::output() const { return impl_->out; }

namespace {

// Teacher-forced logprobs of the prompt tokens after each row of `logits` (rows for
// positions from, from + 1, ...): row k predicts ids[from + k + 1].
void record_prompt_logprobs(const torch::Tensor& logits, const std::vector<int32_t>& ids,
                            int64_t from, generation::impl& g) {
  const auto host = logits.to(torch::kCPU, torch::kFloat32).contiguous();
  const auto vocab = static_cast<size_t>(host.size(1));
  const float* data = host.data_ptr<float>();
  const auto top = static_cast<uint32_t>(std::max(0, g.params.logprobs));
  for (int64_t k = 0; k < host.size(0) && from + k + 1 < static_cast<int64_t>(ids.size()); ++k)
    g.out.prompt_logprobs.push_back(logprob_of(data + static_cast<size_t>(k) * vocab, vocab,
                                               ids[static_cast<size_t>(from + k + 1)], top));
}

// Computes the keys and values of ids[cache.length, end) into the generation's cache, in one
// pass or `chunk` tokens at a time (less activation memory, same result); the logits after
// the last of them. With `prompt_logprobs`, every row's logits are kept as those (a
// prompt's first pass only, not a restore's).
torch::Tensor prefill(const llama_model& model, const std::vector<int32_t>& ids, int64_t end,
                      int64_t chunk, generation::impl& g, bool prompt_logprobs = false) {
  const int64_t from = g.cache.length;
  if (chunk <= 0)
    chunk = end - from;
  torch::Tensor last;
  for (int64_t at = from; at < end; at += chunk) {
    auto n = std::min(chunk, end - at);
    std::vector<int64_t> part(ids.begin() + at, ids.begin() + at + n);
    if (auto fast =
            model.prefill_cpu(part, g.cache, g.lora, prompt_logprobs)) {  // CPU: the decode kernels
      if (prompt_logprobs)
        record_prompt_logprobs(*fast, ids, at, g);
      last = fast->narrow(0, fast->size(0) - 1, 1);
      continue;
    }
    auto hidden =
        model.forward(torch::tensor(part, torch::kInt64).to(model.device()), g.cache, g.lora);
    if (prompt_logprobs) {
      auto all = model.logits(hidden);
      record_prompt_logprobs(all, ids, at, g);
      last = all.narrow(0, all.size(0) - 1, 1);
    } else {
      last = model.logits(hidden.narrow(0, hidden.size(0) - 1, 1));
    }
  }
  return last;
}

}  // namespace

bool base_model::make_room(generation& generation) const {
  auto& g = generation.get();
  if (g.finished || g.prefilling || g.cache.length < g.cache.capacity)
    return !g.preempted;  // a prompt's blocks were taken with it
  if (g.pool == nullptr || g.preempted)
    return false;
  std::lock_guard<std::mutex> lock(*g.pool_mutex);
  return g.pool->grow(g.cache);
}

void base_model::preempt(generation& generation) const {
  auto& g = generation.get();
  if (g.pool == nullptr || g.preempted || g.prefilling)
    return;
  std::lock_guard<std::mutex> lock(*g.pool_mutex);
  g.pool->publish(g.cache, g.owner(), g.history, g.cache.length);  // restore() may find them
  g.pool->give_back(g.cache);
  g.cache.blocks.clear();
  g.cache.capacity = 0;
  g.cache.length = 0;
  g.preempted = true;
}

std::optional<error> base_model::restore(generation& generation) const {
  auto& g = generation.get();
  if (!g.preempted)
    return std::nullopt;
  // Keys and values for every token but the last sampled one, which the next step feeds.
  const auto computed = static_cast<int64_t>(g.history.size()) - 1;
  {
    std::lock_guard<std::mutex> lock(*g.pool_mutex);
    auto cache = g.pool->take(computed + 1, g.owner(), &g.history, computed);
    if (!cache)
      return error{errc::out_of_memory, "the KV pool has no free blocks for "
                                            + std::to_string(computed + 1) + " tokens"};
    g.cache = std::move(*cache);
  }
  g.preempted = false;
  auto done = guarded("restoring a preempted generation", [&]() -> result<bool> {
    torch::InferenceMode guard;
    if (g.cache.length < computed)
      prefill(impl_->model, g.history, computed, g.params.prefill_chunk, g);
    return true;
  });
  if (!done) {
    preempt(generation);
    return done.err();
  }
  return std::nullopt;
}

result<std::unique_ptr<generation>> base_model::begin(const std::vector<int32_t>& prompt_ids,
                                                      const generation_params& params,
                                                      const lora_adapter* adapter,
                                                      std::function<bool(int32_t)> on_token) const {
  const auto& c = config();
  if (prompt_ids.empty())
    return make_error(errc::invalid_argument, "the prompt encodes to no tokens");
  if (params.max_new_tokens == 0)
    return make_error(errc::invalid_argument, "max_new_tokens must be at least 1");
  if (auto bad = validate(params.sampling, c.vocab_size))
    return *bad;
  for (auto id : params.stop_ids)
    if (id < 0 || id >= c.vocab_size)
      return make_error(errc::invalid_argument, "stop_token_ids names token " + std::to_string(id)
                                                    + ", outside the vocabulary of "
                                                    + std::to_string(c.vocab_size));
  if (auto bad = check_ids(prompt_ids, c))
    return *bad;
  const auto context = context_tokens(c, params);
  const auto prompt_len = static_cast<int64_t>(prompt_ids.size());
  if (prompt_len >= context)
    return make_error(errc::context_overflow, "the prompt has " + std::to_string(prompt_len)
                                                + " tokens; the model's context is "
                                                + std::to_string(context));
  return guarded("generation", [&]() -> result<std::unique_ptr<generation>> {
    torch::InferenceMode guard;
    const auto& model = impl_->model;
    std::unique_ptr<generation::impl> g(new generation::impl{
      params, adapter ? &adapter->get().weights : nullptr, nullptr, nullptr, std::move(on_token), {},
      sampler(params.sampling), prompt_ids, {}, std::min<int64_t>(params.max_new_tokens, context - prompt_len),
      {}, false, {}});
    g->out.prompt_ids = prompt_ids;
    if (params.pooled_kv && impl_->pool) {
      std::lock_guard<std::mutex> lock(impl_->pool_mutex);
      // The last prompt token is always prefilled: its logits give the first new token.
      // Blocks for the prompt and the first new token; make_room() adds more as it grows.
      // Prompt logprobs need every prompt row computed: nothing reused for them.
      auto cache = impl_->pool->take(prompt_len + 1, g->owner(), &prompt_ids,
                                     params.prompt_logprobs ? 0 : prompt_len - 1);
      if (!cache)
        return make_error(errc::out_of_memory, "the KV pool has no free blocks for "
                                                   + std::to_string(prompt_len + 1) + " tokens");
      g->cache = std::move(*cache);
      g->pool = impl_->pool.get();
      g->pool_mutex = &impl_->pool_mutex;
    } else {
      g->cache = model.make_cache(prompt_len + g->budget);
    }
    g->out.cached_tokens = g->cache.length;
    g->prefilling = true;
    auto out = std::make_unique<generation>(std::move(g));
    if (!params.defer_prefill) {
      auto done = prefill_some(*out, prompt_len);
      if (!done)
        return done.err();
    }
    return out;
  });
}

int64_t base_model::adopt_cached_prefix(generation& generation) const {
  auto& g = generation.get();
  if (!g.prefilling || g.pool == nullptr || g.params.prompt_logprobs)
    return 0;
  std::lock_guard<std::mutex> lock(*g.pool_mutex);
  const auto gained = g.pool->adopt(g.cache, g.owner(), g.out.prompt_ids);
  g.out.cached_tokens += gained;
  return gained;
}

result<bool> base_model::prefill_some(generation& generation, int64_t max_tokens) const {
  auto& g = generation.get();
  if (!g.prefilling)
    return true;
  return guarded("prefill", [&]() -> result<bool> {
    torch::InferenceMode guard;
    const auto& prompt = g.out.prompt_ids;
    const auto prompt_len = static_cast<int64_t>(prompt.size());
    const auto end = std::min(prompt_len, g.cache.length + std::max<int64_t>(1, max_tokens));
    auto start = clock_type::now();
    auto last =
        prefill(impl_->model, prompt, end, g.params.prefill_chunk, g, g.params.prompt_logprobs);
    g.out.prefill_ms += ms_since(start);
    g.publish_prompt();
    if (end < prompt_len)
      return false;
    g.start_decoding(to_host(last), config());
    return true;
  });
}

namespace {

// The generations of a batch that take a token this step.
std::vector<generation*> decoding(const std::vector<generation*>& batch) {
  std::vector<generation*> live;
  for (auto* g : batch)
    if (!g->finished() && !g->prefilling())
      live.push_back(g);
  return live;
}

// The rows of one pass: the token each feeds, the cache it grows, its adapter.
struct pass_rows {
  std::vector<int64_t> ids;
  std::vector<kv_cache*> caches;
  std::vector<const lora_weights*> loras;
  void add(int64_t id, generation::impl& g) {
    ids.push_back(id);
    caches.push_back(&g.cache);
    loras.push_back(g.lora);
  }
};

// Each decoding generation's logits (rows 0, 1, ... of `logits`) and its next token.
void take_tokens(const std::vector<generation*>& live, const float* logits, size_t vocab,
                 const model_config& c) {
  for (size_t r = 0; r < live.size(); ++r) {
    auto& g = live[r]->get();
    g.logits.assign(logits + r * vocab, logits + (r + 1) * vocab);
    g.take_token(c);
  }
}

}  // namespace

std::optional<error> base_model::step(const std::vector<generation*>& batch) const {
  const auto live = decoding(batch);
  if (live.empty())
    return std::nullopt;
  auto done = guarded("decode step", [&]() -> result<bool> {
    torch::InferenceMode guard;
    pass_rows rows;
    for (auto* g : live) {
      // A row without a slot for its next token would write past its blocks.
      if (!make_room(*g))
        throw std::runtime_error("the KV pool has no block for the next token");
      rows.add(g->get().out.output_ids.back(), g->get());
    }
    auto decoded = impl_->model.decode_batch(rows.ids, rows.caches, rows.loras);
    step_timer timer;  // from here on: the logits read out and each row's token drawn
    auto logits = decoded.to(torch::kCPU, torch::kFloat32).contiguous();
    take_tokens(live, logits.data_ptr<float>(), static_cast<size_t>(logits.size(1)), config());
    timer.mark(step_phase::sampling);
    count_step();
    return true;
  });
  if (!done)
    return done.err();
  return std::nullopt;
}

std::optional<result<std::vector<bool>>> base_model::step_with_prompts(
    const std::vector<generation*>& batch, const std::vector<prompt_slice>& slices) const {
  const auto live = decoding(batch);
  pass_rows rows;
  std::vector<size_t> logit_rows;
  for (auto* g : live) {
    logit_rows.push_back(rows.ids.size());
    rows.add(g->get().out.output_ids.back(), g->get());
  }
  struct slice_rows {
    generation::impl* g;
    int64_t begin, end;  // the prompt's tokens computed before and after the pass
  };
  std::vector<slice_rows> planned;
  for (const auto& sl : slices) {
    auto& g = sl.g->get();
    const auto& prompt = g.out.prompt_ids;
    const auto end = std::min(static_cast<int64_t>(prompt.size()),
                              g.cache.length + std::max<int64_t>(1, sl.max_tokens));
    if (!g.prefilling || g.params.prompt_logprobs
        || (g.params.prefill_chunk > 0 && end - g.cache.length > g.params.prefill_chunk))
      return std::nullopt;
    for (int64_t t = g.cache.length; t < end; ++t)
      rows.add(prompt[static_cast<size_t>(t)], g);
    planned.push_back({&g, g.cache.length, end});
    if (end == static_cast<int64_t>(prompt.size()))
      logit_rows.push_back(rows.ids.size() - 1);
  }
  if (rows.ids.empty())
    return std::nullopt;
  for (auto* g : live)  // a row without a slot for its next token would write past its blocks
    if (!make_room(*g))
      return std::nullopt;
  std::optional<result<std::vector<bool>>> answer;
  auto done = guarded("decode step with prompt slices", [&]() -> result<bool> {
    torch::InferenceMode guard;
    const auto start = clock_type::now();
    auto decoded = impl_->model.mixed_batch_cpu(rows.ids, rows.caches, rows.loras, logit_rows);
    if (!decoded)
      return false;    // the CPU kernels cannot run these rows: nothing was computed
    step_timer timer;  // from here on: the logits read out and each row's token drawn
    const double pass_ms = ms_since(start);
    auto logits = decoded->contiguous();
    const auto vocab = static_cast<size_t>(logits.size(1));
    const float* row = logits.data_ptr<float>();
    take_tokens(live, row, vocab, config());
    row += live.size() * vocab;  // then the rows of the prompts done now, in slice order
    std::vector<bool> prompts_done;
    for (const auto& p : planned) {
      auto& g = *p.g;
      // the pass's time, in the share of its rows that were this prompt's
      g.out.prefill_ms +=
          pass_ms * static_cast<double>(p.end - p.begin) / static_cast<double>(rows.ids.size());
      g.publish_prompt();
      const bool whole = p.end == static_cast<int64_t>(g.out.prompt_ids.size());
      if (whole) {
        g.start_decoding(std::vector<float>(row, row + vocab), config());
        row += vocab;
      }
      prompts_done.push_back(whole);
    }
    timer.mark(step_phase::sampling);
    if (!live.empty())
      count_step();
    answer = std::move(prompts_done);
    return true;
  });
  if (!done)
    return result<std::vector<bool>>(done.err());
  return answer;
}

result<generation_output> base_model::generate_ids(const std::vector<int32_t>& prompt_ids,
                                                   const generation_params& params,
                                                   const lora_adapter* adapter,
                                                   const std::function<bool(int32_t)>& on_token) const {
  auto g = begin(prompt_ids, params, adapter, on_token);
  if (!g)
    return g.err();
  while (!(*g)->finished())
    if (auto failed = step({g->get()}))
      return *failed;
  return (*g)->output();
}

result<std::vector<float>> base_model::logits(const std::vector<int32_t>& ids,
                                              const lora_adapter* adapter, bool incremental) const {
  if (ids.empty() || static_cast<int64_t>(ids.size()) > config().max_position_embeddings)
    return make_error(errc::invalid_argument, "need between 1 and max_position_embeddings ids");
  if (auto bad = check_ids(ids, config()))
    return *bad;
  return guarded("logits", [&]() -> result<std::vector<float>> {
    torch::InferenceMode guard;
    const auto& model = impl_->model;
    const auto* lora = adapter ? &adapter->get().weights : nullptr;
    if (model.weights_format()
        != quant::weight_format::f32) {  // only the CPU kernels hold these weights
      auto all = model.sequence_logits_cpu(std::vector<int64_t>(ids.begin(), ids.end()), lora);
      if (!all)
        return make_error(errc::invalid_argument,
                          "these logits need the CPU kernels, which cannot run this adapter");
      return to_host(*all);
    }
    auto cache = model.make_cache(static_cast<int64_t>(ids.size()));
    if (!incremental)
      return to_host(model.logits(model.forward(ids_tensor(ids, model.device()), cache, lora)));
    std::vector<torch::Tensor> rows;
    for (auto id : ids)
      rows.push_back(model.logits(model.forward(ids_tensor({id}, model.device()), cache, lora)));
    return to_host(torch::cat(rows, 0));
  });
}

result<std::shared_ptr<const base_model>> base_model::merged_with(const lora_adapter& adapter) const {
  if (impl_->model.weights_format() != quant::weight_format::f32)
    return make_error(errc::invalid_argument,
                      "merging an adapter needs the f32 weights (--weights=f32)");
  return guarded("merging adapter", [&]() -> result<std::shared_ptr<const base_model>> {
    torch::InferenceMode guard;
    auto weights = impl_->model.weights();  // tensors are shared; replaced ones are new
    const auto& lora = adapter.get().weights;
    for (size_t l = 0; l < lora.layers.size(); ++l)
      for (size_t p = 0; p < proj_count; ++p)
        if (const auto& pair = lora.layers[l][p]) {
          auto& w = weights.layers[l].linear[p].weight;
          w = w + pair->scale * torch::matmul(pair->b, pair->a);
        }
    std::unique_ptr<impl> p(
      new impl{impl_->path, impl_->tok,
               llama_model(config(), std::move(weights), impl_->model.device(), impl_->model.dtype()),
               impl_->weight_bytes, nullptr, {}});
    return std::shared_ptr<const base_model>(std::make_shared<base_model>(std::move(p)));
  });
}

}  // namespace adapterd::model
