// Over 400 lines on purpose: the autograd Llama and the two loops that train it
// (pretraining and LoRA) share the model code and its checkpoint writing.
#include "model/train/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "model/io/hf_layout.hpp"
#include "model/io/safetensors.hpp"
#include "model/io/text_file.hpp"
#include "model/llama/llama.hpp"
#include "model/tokenizer/tokenizer.hpp"

namespace adapterd::model {

namespace {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

// --- data ---------------------------------------------------------------------------

result<std::vector<std::string>> read_documents(const dataset_source& src) {
  auto text = read_text_file(src.path);
  if (!text)
    return make_error(errc::not_found, "cannot read the dataset " + src.path);
  std::vector<std::string> docs;
  if (fs::path(src.path).extension() == ".jsonl") {
    size_t line_no = 0, start = 0;
    while (start < text->size()) {
      auto end = text->find('\n', start);
      if (end == std::string::npos)
        end = text->size();
      auto line = text->substr(start, end - start);
      start = end + 1;
      ++line_no;
      if (line.find_first_not_of(" \t\r") == std::string::npos)
        continue;
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.is_object() || !j.contains("text") || !j["text"].is_string())
        return make_error(errc::invalid_argument, src.path + ":" + std::to_string(line_no)
                                                    + ": each line must be a JSON object with a string \"text\"");
      docs.push_back(j["text"].get<std::string>());
    }
  } else {
    // Fortune files separate their entries with lines holding only "%".
    size_t start = 0;
    while (start <= text->size()) {
      auto end = text->find("\n%\n", start);
      auto doc = text->substr(start, end == std::string::npos ? std::string::npos : end - start + 1);
      if (doc.find_first_not_of(" \t\r\n%") != std::string::npos)
        docs.push_back(doc);
      if (end == std::string::npos)
        break;
      start = end + 3;
    }
  }
  if (docs.empty())
    return make_error(errc::invalid_argument, "the dataset " + src.path + " holds no text");
  return docs;
}

// The training text as one token stream, documents joined with EOS; the last 5 % (at
// least one window) are held back for eval_loss.
struct token_stream {
  std::vector<int64_t> train, held;
};

result<token_stream> tokenize_documents(const std::vector<std::string>& docs, const tokenizer& tok, int64_t window) {
  std::vector<int64_t> all;
  auto eos = tok.eos_id();
  for (const auto& d : docs) {
    for (auto id : tok.encode(d, true))
      all.push_back(id);
    if (eos)
      all.push_back(*eos);
  }
  if (static_cast<int64_t>(all.size()) < 3 * window)
    return make_error(errc::invalid_argument, "the dataset has " + std::to_string(all.size())
                                                + " tokens; training windows of " + std::to_string(window)
                                                + " need at least " + std::to_string(3 * window));
  auto held = std::max<int64_t>(window, static_cast<int64_t>(all.size()) / 20);
  token_stream out;
  out.train.assign(all.begin(), all.end() - held);
  out.held.assign(all.end() - held, all.end());
  return out;
}

torch::Tensor sample_batch(const std::vector<int64_t>& stream, int64_t batch, int64_t window, std::mt19937_64& rng) {
  std::uniform_int_distribution<int64_t> pick(0, static_cast<int64_t>(stream.size()) - window);
  auto out = torch::empty({batch, window}, torch::kInt64);
  auto* p = out.data_ptr<int64_t>();
  for (int64_t b = 0; b < batch; ++b) {
    auto start = pick(rng);
    std::memcpy(p + b * window, stream.data() + start, static_cast<size_t>(window) * sizeof(int64_t));
  }
  return out;
}

// --- the model under training -------------------------------------------------------

struct lora_param {
  torch::Tensor a, b;  // [r, in], [out, r]
  double scale = 1;
};

using lora_params = std::vector<std::map<proj, lora_param>>;

torch::Tensor linear_with(const torch::Tensor& x, const linear_weights& w, const lora_param* lora) {
  auto y = torch::linear(x, w.weight, w.bias.defined() ? w.bias : torch::Tensor());
  if (lora)
    y = y + lora->scale * torch::linear(torch::linear(x, lora->a), lora->b);
  return y;
}

// Logits [B, T, vocab] of ids [B, T]: the same computation as llama.cpp's inference
// forward (RMSNorm and attention in fp32, rotate_half RoPE, SwiGLU), with autograd.
torch::Tensor forward(const model_config& c, const llama_weights& w, const lora_params* loras,
                      const torch::Tensor& ids, const torch::Tensor& cos_all, const torch::Tensor& sin_all) {
  const int64_t b = ids.size(0), t = ids.size(1);
  const int64_t heads = c.num_heads, kv = c.num_kv_heads, d = c.head_dim;
  auto cos = cos_all.narrow(0, 0, t).view({1, 1, t, d});
  auto sin = sin_all.narrow(0, 0, t).view({1, 1, t, d});
  auto mask = torch::full({t, t}, -std::numeric_limits<float>::infinity()).triu(1);
  auto x = w.embed.index_select(0, ids.reshape({-1})).view({b, t, c.hidden_size});
  auto lora = [&](size_t layer, proj p) -> const lora_param* {
    if (!loras)
      return nullptr;
    auto it = (*loras)[layer].find(p);
    return it == (*loras)[layer].end() ? nullptr : &it->second;
  };
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const auto& lw = w.layers[l];
    auto h = rms_norm(x, lw.input_norm, c.rms_norm_eps);
    auto q = linear_with(h, lw.linear[0], lora(l, proj::q)).view({b, t, heads, d}).transpose(1, 2);
    auto k = linear_with(h, lw.linear[1], lora(l, proj::k)).view({b, t, kv, d}).transpose(1, 2);
    auto v = linear_with(h, lw.linear[2], lora(l, proj::v)).view({b, t, kv, d}).transpose(1, 2);
    q = apply_rope(q, cos, sin);
    k = apply_rope(k, cos, sin);
    if (kv != heads) {
      k = k.repeat_interleave(heads / kv, 1);
      v = v.repeat_interleave(heads / kv, 1);
    }
    auto scores = torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(static_cast<double>(d)) + mask;
    auto attn = torch::matmul(torch::softmax(scores, -1), v).transpose(1, 2).reshape({b, t, heads * d});
    x = x + linear_with(attn, lw.linear[3], lora(l, proj::o));
    h = rms_norm(x, lw.post_attention_norm, c.rms_norm_eps);
    auto gate = linear_with(h, lw.linear[4], lora(l, proj::gate));
    auto up = linear_with(h, lw.linear[5], lora(l, proj::up));
    x = x + linear_with(torch::silu(gate) * up, lw.linear[6], lora(l, proj::down));
  }
  return torch::linear(rms_norm(x, w.final_norm, c.rms_norm_eps), w.lm_head);
}

torch::Tensor next_token_loss(const torch::Tensor& logits, const torch::Tensor& ids) {
  auto t = ids.size(1);
  auto pred = logits.narrow(1, 0, t - 1).reshape({-1, logits.size(-1)});
  auto target = ids.narrow(1, 1, t - 1).reshape({-1});
  return torch::nn::functional::cross_entropy(pred, target);
}

tensor_blob to_blob(const std::string& name, const torch::Tensor& t) {
  auto c = t.detach().to(torch::kFloat32).contiguous();
  tensor_blob blob{name, dtype::f32, std::vector<int64_t>(c.sizes().begin(), c.sizes().end()),
                   std::vector<std::byte>(static_cast<size_t>(c.numel()) * 4)};
  std::memcpy(blob.bytes.data(), c.data_ptr<float>(), blob.bytes.size());
  return blob;
}

const std::vector<std::pair<std::string, proj>>& target_modules() {
  static const std::vector<std::pair<std::string, proj>> names{
    {"q_proj", proj::q}, {"k_proj", proj::k}, {"v_proj", proj::v}, {"o_proj", proj::o},
    {"gate_proj", proj::gate}, {"up_proj", proj::up}, {"down_proj", proj::down}};
  return names;
}

/// What both kinds of training share: the data, the optimizer loop, the progress.
class training_run : public trainer {
public:
  result<train_progress> step() override {
    try {
      auto started = clock_type::now();
      auto ids = sample_batch(data_.train, batch_, window_, rng_);
      optimizer_->zero_grad();
      auto loss = next_token_loss(forward(config_, weights_, loras(), ids, cos_, sin_), ids);
      loss.backward();
      torch::nn::utils::clip_grad_norm_(params_, 1.0);
      set_lr();
      optimizer_->step();
      ++step_;
      elapsed_s_ += std::chrono::duration<double>(clock_type::now() - started).count();
      train_progress p;
      p.step = step_;
      p.steps = steps_;
      p.loss = loss.item<double>();
      recent_.push_back(p.loss);
      if (recent_.size() > 20)
        recent_.pop_front();
      for (double x : recent_)
        p.loss_avg += x / static_cast<double>(recent_.size());
      p.elapsed_s = elapsed_s_;
      p.tokens_per_s = static_cast<double>(step_ * batch_ * window_) / std::max(1e-9, elapsed_s_);
      p.eta_s = elapsed_s_ / static_cast<double>(step_) * static_cast<double>(steps_ - step_);
      return p;
    } catch (const std::exception& e) {
      return make_error(errc::internal, std::string("training step: ") + e.what());
    }
  }

  bool done() const override { return step_ >= steps_; }

  double eval_loss(int batches) override {
    torch::NoGradGuard no_grad;
    std::mt19937_64 fixed(12345);
    double total = 0;
    for (int i = 0; i < batches; ++i) {
      auto ids = sample_batch(data_.held, std::min<int64_t>(batch_, 8), window_, fixed);
      total += next_token_loss(forward(config_, weights_, loras(), ids, cos_, sin_), ids).item<double>();
    }
    return total / batches;
  }

  std::vector<float> logits(const std::vector<int32_t>& ids) override {
    torch::NoGradGuard no_grad;
    auto t = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kInt64).view({1, -1});
    auto out = forward(config_, weights_, loras(), t, cos_, sin_).to(torch::kFloat32).contiguous();
    return std::vector<float>(out.data_ptr<float>(), out.data_ptr<float>() + out.numel());
  }

protected:
  void setup(int threads, uint64_t seed, int64_t steps, int64_t batch, int64_t seq_len, double lr) {
    torch::set_num_threads(threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
    torch::manual_seed(seed);
    rng_.seed(seed);
    steps_ = steps;
    batch_ = batch;
    window_ = seq_len + 1;
    lr_ = lr;
  }
  void make_rope() {
    auto inv_freq = rope_inv_freq(config_);
    auto positions = torch::arange(0, config_.max_position_embeddings, torch::kFloat32);
    auto freqs = torch::outer(positions, inv_freq);
    auto emb = torch::cat({freqs, freqs}, -1);
    cos_ = emb.cos();
    sin_ = emb.sin();
  }
  void make_optimizer(double weight_decay) {
    optimizer_ = std::make_unique<torch::optim::AdamW>(
      params_, torch::optim::AdamWOptions(lr_).weight_decay(weight_decay).betas({0.9, 0.95}));
  }
  virtual const lora_params* loras() const = 0;

  // Linear warm-up over 5 % of the steps, then cosine decay to a tenth.
  void set_lr() {
    double warm = std::max<double>(1, 0.05 * static_cast<double>(steps_));
    double s = static_cast<double>(step_);
    double f = s < warm ? (s + 1) / warm
                        : 0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * (s - warm) / std::max(1.0, static_cast<double>(steps_) - warm)));
    for (auto& group : optimizer_->param_groups())
      static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr_ * f);
  }

  model_config config_;
  llama_weights weights_;
  token_stream data_;
  torch::Tensor cos_, sin_;
  std::vector<torch::Tensor> params_;
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  std::mt19937_64 rng_;
  int64_t step_ = 0, steps_ = 0, batch_ = 0, window_ = 0;
  double lr_ = 0, elapsed_s_ = 0;
  std::deque<double> recent_;
};

class pretraining final : public training_run {
public:
  static result<std::unique_ptr<trainer>> start(const pretrain_spec& s, const std::string& work_dir) {
    if (s.hidden % s.heads != 0 || s.layers < 1 || s.steps < 1 || s.batch < 1 || s.seq_len < 2
        || s.seq_len > s.context || s.merges < 0)
      return make_error(errc::invalid_argument, "inconsistent model or training sizes");
    auto docs = read_documents(s.data);
    if (!docs)
      return docs.err();
    std::string corpus;
    for (const auto& d : *docs) {  // the tokenizer learns from the first megabyte
      if (corpus.size() > (1u << 20))
        break;
      corpus += d;
    }
    auto tok_files = write_byte_level_tokenizer(work_dir, corpus, s.merges, s.context);
    if (!tok_files)
      return tok_files.err();
    auto tok = tokenizer::load(work_dir);
    if (!tok)
      return tok.err();
    auto run = std::unique_ptr<pretraining>(new pretraining());
    run->spec_ = s;
    run->written_ = *tok_files;
    run->work_dir_ = work_dir;
    run->setup(s.threads, s.seed, s.steps, s.batch, s.seq_len, s.lr);
    auto data = tokenize_documents(*docs, **tok, run->window_);
    if (!data)
      return data.err();
    run->data_ = std::move(*data);
    auto& c = run->config_;
    c.architecture = "LlamaForCausalLM";
    c.hidden_size = s.hidden;
    c.intermediate_size = s.intermediate;
    c.num_layers = s.layers;
    c.num_heads = s.heads;
    c.num_kv_heads = s.heads;
    c.head_dim = s.hidden / s.heads;
    c.vocab_size = tok_files->vocab_size;
    c.max_position_embeddings = s.context;
    c.rms_norm_eps = 1e-5;
    c.rope.theta = 10000.0;
    run->make_rope();
    auto normal = [&](std::vector<int64_t> shape) {
      auto t = torch::randn(shape) * 0.02;
      run->params_.push_back(t.requires_grad_());
      return t;
    };
    auto ones = [&](int64_t n) {
      auto t = torch::ones({n});
      run->params_.push_back(t.requires_grad_());
      return t;
    };
    auto& w = run->weights_;
    w.embed = normal({c.vocab_size, s.hidden});
    w.lm_head = normal({c.vocab_size, s.hidden});
    w.final_norm = ones(s.hidden);
    for (int64_t l = 0; l < s.layers; ++l) {
      layer_weights lw;
      lw.input_norm = ones(s.hidden);
      lw.post_attention_norm = ones(s.hidden);
      for (auto p : {proj::q, proj::k, proj::v, proj::o})
        lw.linear[static_cast<size_t>(p)].weight = normal({s.hidden, s.hidden});
      lw.linear[static_cast<size_t>(proj::gate)].weight = normal({s.intermediate, s.hidden});
      lw.linear[static_cast<size_t>(proj::up)].weight = normal({s.intermediate, s.hidden});
      lw.linear[static_cast<size_t>(proj::down)].weight = normal({s.hidden, s.intermediate});
      w.layers.push_back(std::move(lw));
    }
    run->make_optimizer(0.1);
    return std::unique_ptr<trainer>(std::move(run));
  }

  result<bool> save(const std::string& dir) const override {
    std::error_code ec;
    fs::create_directories(dir, ec);
    for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
      if (fs::path(work_dir_) != fs::path(dir))
        fs::copy_file(fs::path(work_dir_) / f, fs::path(dir) / f, fs::copy_options::overwrite_existing, ec);
    llama_shape shape{spec_.hidden, spec_.intermediate, spec_.layers, spec_.heads, spec_.heads, spec_.context};
    if (auto ok = write_llama_config(dir, shape, written_); !ok)
      return ok.err();
    std::vector<tensor_blob> blobs;
    const auto& w = weights_;
    blobs.push_back(to_blob("model.embed_tokens.weight", w.embed));
    blobs.push_back(to_blob("lm_head.weight", w.lm_head));
    blobs.push_back(to_blob("model.norm.weight", w.final_norm));
    for (size_t l = 0; l < w.layers.size(); ++l) {
      auto p = "model.layers." + std::to_string(l) + ".";
      blobs.push_back(to_blob(p + "input_layernorm.weight", w.layers[l].input_norm));
      blobs.push_back(to_blob(p + "post_attention_layernorm.weight", w.layers[l].post_attention_norm));
      for (size_t k = 0; k < proj_count; ++k)
        blobs.push_back(to_blob(p + proj_module(static_cast<proj>(k)) + ".weight", w.layers[l].linear[k].weight));
    }
    return write_safetensors(dir + "/model.safetensors", blobs, {{"format", "pt"}});
  }

private:
  const lora_params* loras() const override { return nullptr; }
  pretrain_spec spec_;
  written_tokenizer written_;
  std::string work_dir_;
};

class lora_training final : public training_run {
public:
  static result<std::unique_ptr<trainer>> start(const lora_spec& s) {
    if (s.r < 1 || s.alpha <= 0 || s.steps < 1 || s.batch < 1 || s.seq_len < 2 || s.targets.empty())
      return make_error(errc::invalid_argument, "r, alpha, steps, batch and seq_len must be positive, and targets not empty");
    std::vector<proj> targets;
    for (const auto& name : s.targets) {
      auto it = std::find_if(target_modules().begin(), target_modules().end(), [&](const auto& m) { return m.first == name; });
      if (it == target_modules().end())
        return make_error(errc::invalid_argument, "unknown target module '" + name + "'");
      targets.push_back(it->second);
    }
    auto config = load_model_config(s.base_dir);
    if (!config)
      return config.err();
    if (s.seq_len > config->max_position_embeddings)
      return make_error(errc::invalid_argument, "seq_len is past the base model's context");
    if (config->sliding_window > 0 && s.seq_len > config->sliding_window)
      return make_error(errc::invalid_argument, "seq_len is past the base model's sliding window");
    auto tok = tokenizer::load(s.base_dir);
    if (!tok)
      return tok.err();
    auto docs = read_documents(s.data);
    if (!docs)
      return docs.err();
    auto run = std::unique_ptr<lora_training>(new lora_training());
    run->spec_ = s;
    run->setup(s.threads, s.seed, s.steps, s.batch, s.seq_len, s.lr);
    auto data = tokenize_documents(*docs, **tok, run->window_);
    if (!data)
      return data.err();
    run->data_ = std::move(*data);
    run->config_ = *config;
    auto weights = load_llama_weights(s.base_dir, *config, torch::kCPU, torch::kFloat32);
    if (!weights)
      return weights.err();
    // The loader makes inference tensors; autograd needs ordinary ones to save for backward.
    auto plain = [](torch::Tensor& t) {
      if (t.defined())
        t = t.clone();
    };
    auto& w = *weights;
    plain(w.embed);
    plain(w.final_norm);
    plain(w.lm_head);
    for (auto& lw : w.layers) {
      plain(lw.input_norm);
      plain(lw.post_attention_norm);
      for (auto& lin : lw.linear) {
        plain(lin.weight);
        plain(lin.bias);
      }
    }
    run->weights_ = std::move(w);
    run->make_rope();
    run->loras_.resize(run->weights_.layers.size());
    for (size_t l = 0; l < run->weights_.layers.size(); ++l)
      for (auto p : targets) {
        const auto& w = run->weights_.layers[l].linear[static_cast<size_t>(p)].weight;
        auto in = w.size(1), out = w.size(0);
        // PEFT's initialisation: A Kaiming-uniform (a = sqrt(5)), B zero, so training starts at the base model.
        auto bound = 1.0 / std::sqrt(static_cast<double>(in));
        lora_param lp{(torch::rand({s.r, in}) * 2 - 1) * bound, torch::zeros({out, s.r}), s.alpha / s.r};
        lp.a.requires_grad_();
        lp.b.requires_grad_();
        run->params_.push_back(lp.a);
        run->params_.push_back(lp.b);
        run->loras_[l][p] = lp;
      }
    run->make_optimizer(0.0);
    return std::unique_ptr<trainer>(std::move(run));
  }

  result<bool> save(const std::string& dir) const override {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (auto ok = write_peft_config(dir, spec_.r, spec_.alpha, spec_.targets,
                                    fs::path(spec_.base_dir).lexically_normal().filename().string());
        !ok)
      return ok.err();
    std::vector<tensor_blob> blobs;
    for (size_t l = 0; l < loras_.size(); ++l)
      for (const auto& [p, lp] : loras_[l]) {
        auto key = "base_model.model.model.layers." + std::to_string(l) + "." + proj_module(p);
        blobs.push_back(to_blob(key + ".lora_A.weight", lp.a));
        blobs.push_back(to_blob(key + ".lora_B.weight", lp.b));
      }
    return write_safetensors(dir + "/adapter_model.safetensors", blobs, {{"format", "pt"}});
  }

private:
  const lora_params* loras() const override { return &loras_; }
  lora_spec spec_;
  lora_params loras_;
};

}  // namespace

result<std::unique_ptr<trainer>> start_pretraining(const pretrain_spec& spec, const std::string& work_dir) {
  try {
    return pretraining::start(spec, work_dir);
  } catch (const std::exception& e) {
    return make_error(errc::internal, std::string("setting up pretraining: ") + e.what());
  }
}

result<std::unique_ptr<trainer>> start_lora_training(const lora_spec& spec) {
  try {
    return lora_training::start(spec);
  } catch (const std::exception& e) {
    return make_error(errc::internal, std::string("setting up LoRA training: ") + e.what());
  }
}

const std::vector<std::string>& lora_target_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& m : target_modules())
      out.push_back(m.first);
    return out;
  }();
  return names;
}

}  // namespace adapterd::model
