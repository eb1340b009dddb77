// Decode on the CPU in fp32 without libtorch's per-op overhead: the weights packed into one
// huge-page arena (q/k/v and gate/up adjacent, so each pair runs as one matrix), the
// linear layers through cpu::dense_rows, and RMSNorm, RoPE, one-token attention and
// SwiGLU as plain loops over reused buffers. Same arithmetic as the libtorch path up to
// summation order; each row is computed alone, so a batch never changes a row's result.
#include <cmath>
#include <cstring>
#include <limits>

#include "model/llama/attention_cpu.hpp"
#include "model/llama/cpu_kernels.hpp"
#include "model/llama/dense_parallel.hpp"
#include "model/llama/llama.hpp"
#include "model/llama/parallel_parts.hpp"
#include "model/step_profile.hpp"

namespace adapterd::model {

namespace {

// Parallel over output columns; the per-element order does not depend on the split.
void dense(const float* x, size_t rows, size_t ldx, const float* w, size_t k, const float* bias,
           float* y, size_t ldy, size_t n) {
  parallel(
      n, 32,
      [&](size_t begin, size_t end) {
        cpu::dense_rows(x, rows, ldx, w, k, bias, y, ldy, begin, end);
      },
      16);
}

const float* ptr(const torch::Tensor& t) {
  return t.defined() ? t.data_ptr<float>() : nullptr;
}

bool packable(const torch::Tensor& t) {
  return t.defined() && t.device().is_cpu() && t.scalar_type() == torch::kFloat32
         && t.is_contiguous();
}

}  // namespace

void llama_model::pack_for_cpu() {
  using quant::weight_format;
  const bool kernels = device_.is_cpu() && dtype_ == torch::kFloat32 && cpu::kernels_available();
  if (!kernels) {
    if (weights_format_ != weight_format::f32)
      throw std::invalid_argument(std::string("--weights=") + quant::name_of(weights_format_)
                                  + " needs the CPU, float32 compute and a CPU with AVX2");
    return;
  }
  const bool tied = weights_.lm_head.data_ptr() == weights_.embed.data_ptr();
  const bool quantised = weights_format_ != weight_format::f32;
  // Which matrices keep a wider format: quant::stored_format.
  auto format_of = [&](const torch::Tensor& t, bool head) {
    return quant::stored_format(weights_format_, static_cast<size_t>(t.size(1)), head);
  };
  auto bytes_of = [](const torch::Tensor& t, weight_format f) {
    return static_cast<size_t>(t.size(0)) * quant::row_bytes(f, static_cast<size_t>(t.size(1)));
  };
  size_t bytes = 0;
  for (const auto& layer : weights_.layers)
    for (const auto& lin : layer.linear)
      bytes += bytes_of(lin.weight, format_of(lin.weight, false));
  bytes += bytes_of(weights_.lm_head, format_of(weights_.lm_head, true));
  if (quantised && !tied)
    bytes += bytes_of(weights_.embed, format_of(weights_.embed, false));
  arena_ = cpu::allocate_huge((bytes + sizeof(float) - 1) / sizeof(float));
  auto keep = arena_;
  auto* base = reinterpret_cast<uint8_t*>(arena_.get());
  size_t at = 0;
  // Packs `parts` (one matrix, or matrices of one width that run as one: q/k/v, gate/up)
  // into the arena as one matrix, so that its groups and bands run on from one part into
  // the next. f32 leaves each part a view of its copy (libtorch still runs the model:
  // training merges, the golden checks); other formats release them.
  auto move_in_rows = [&](std::initializer_list<torch::Tensor*> parts, bool head) {
    std::vector<torch::Tensor> sources;
    std::vector<quant::row_source> rows;
    for (auto* t : parts) {
      if (t->dim() != 2 || t->size(1) != (*parts.begin())->size(1))
        throw std::invalid_argument("projections that run as one matrix differ in width");
      sources.push_back(t->to(torch::kFloat32).contiguous());
      rows.push_back({sources.back().data_ptr<float>(), static_cast<size_t>(t->size(0))});
    }
    const auto m = quant::pack_matrix(format_of(sources.front(), head), rows,
                                      static_cast<size_t>(sources.front().size(1)), base + at);
    size_t row = 0;
    for (auto* t : parts) {
      const auto rows = static_cast<size_t>(t->size(0));
      if (quantised)
        *t = torch::Tensor();
      else
        *t = torch::from_blob(
            base + at + row * m.stride, {t->size(0), t->size(1)}, [keep](void*) {},
            torch::TensorOptions().dtype(torch::kFloat32));
      row += rows;
    }
    at += m.rows * m.stride;
    return m;
  };
  auto move_in = [&](torch::Tensor& t, bool head) { return move_in_rows({&t}, head); };
  packed_.clear();
  for (auto& layer : weights_.layers) {
    auto& l = layer.linear;
    packed_layer p;
    p.qkv = move_in_rows({&l[0].weight, &l[1].weight, &l[2].weight}, false);
    p.o = move_in(l[3].weight, false);
    p.gate_up = move_in_rows({&l[4].weight, &l[5].weight}, false);
    p.down = move_in(l[6].weight, false);
    packed_.push_back(std::move(p));
  }
  lm_head_ = move_in(weights_.lm_head, true);
  if (tied) {
    weights_.embed = weights_.lm_head;
    embed_rows_ = lm_head_;
  } else if (quantised) {
    embed_rows_ = move_in(weights_.embed, false);
  }
  // The rest leaves the memory-mapped file too, so that the mapping (and the page cache
  // the copy touched, which counts as resident) goes away.
  auto own = [](torch::Tensor& t) {
    if (t.defined())
      t = t.clone();
  };
  if (!tied && !quantised)
    own(weights_.embed);
  own(weights_.final_norm);
  for (auto& layer : weights_.layers) {
    own(layer.input_norm);
    own(layer.post_attention_norm);
    for (auto& lin : layer.linear)
      own(lin.bias);
  }
  if (!tied && !quantised)
    embed_rows_ = quant::matrix{weight_format::f32,
                                static_cast<size_t>(weights_.embed.size(0)),
                                static_cast<size_t>(weights_.embed.size(1)),
                                static_cast<size_t>(weights_.embed.size(1)) * sizeof(float),
                                0,
                                reinterpret_cast<const uint8_t*>(weights_.embed.data_ptr<float>())};
  auto fuse_bias = [](const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& c) {
    std::vector<torch::Tensor> parts{a, b};
    if (c.defined())
      parts.push_back(c);
    return a.defined() ? torch::cat(parts).to(torch::kFloat32).contiguous() : torch::Tensor();
  };
  for (size_t i = 0; i < weights_.layers.size(); ++i) {
    const auto& l = weights_.layers[i].linear;
    packed_[i].qkv_bias = fuse_bias(l[0].bias, l[1].bias, l[2].bias);
    packed_[i].gate_up_bias = fuse_bias(l[4].bias, l[5].bias, torch::Tensor());
  }
  bool ok = packable(weights_.final_norm) && packable(cos_) && packable(sin_);
  for (const auto& layer : weights_.layers)
    ok = ok && packable(layer.input_norm) && packable(layer.post_attention_norm);
  if (!ok) {
    if (quantised)
      throw std::invalid_argument(std::string("--weights=") + quant::name_of(weights_format_)
                                  + ": this model's layout does not fit the CPU kernels");
    packed_.clear();
  }
}

size_t llama_model::resident_weight_bytes() const {
  size_t bytes = 0;
  auto count = [&](const torch::Tensor& t) {
    if (t.defined())
      bytes += static_cast<size_t>(t.numel()) * t.element_size();
  };
  const bool tied =
      weights_.lm_head.defined() && weights_.lm_head.data_ptr() == weights_.embed.data_ptr();
  count(weights_.final_norm);
  for (const auto& layer : weights_.layers) {
    count(layer.input_norm);
    count(layer.post_attention_norm);
    for (const auto& lin : layer.linear) {
      count(lin.weight);
      count(lin.bias);
    }
  }
  count(weights_.lm_head);
  if (!tied)
    count(weights_.embed);
  if (weights_format_ == quant::weight_format::f32)
    return bytes;  // the linear weights are libtorch views of the arena: counted above
  for (const auto& p : packed_)
    for (const auto* m : {&p.qkv, &p.o, &p.gate_up, &p.down})
      bytes += m->rows * m->stride;
  bytes += lm_head_.rows * lm_head_.stride;
  if (embed_rows_.data != lm_head_.data)
    bytes += embed_rows_.rows * embed_rows_.stride;
  return bytes;
}

bool llama_model::cpu_decode_ready(const std::vector<const lora_weights*>& loras) const {
  if (packed_.empty())
    return false;
  for (const auto* lora : loras)
    if (lora != nullptr)
      for (const auto& layer : lora->layers)
        for (const auto& pair : layer)
          if (pair && !(packable(pair->a) && packable(pair->b)))
            return false;
  return true;
}

// Adds each adapter's LoRA term for its rows: y[row] += scale * B (A x[row]).
void llama_model::add_lora_cpu(const float* x, size_t ldx, size_t rows, size_t layer, proj p,
                               const std::vector<const lora_weights*>& loras, float* y, size_t ldy,
                               cpu_scratch& s) const {
  auto& done = s.lora_done;
  done.clear();
  for (size_t row = 0; row < rows; ++row) {
    const auto* pair = lora_for(loras[row], layer, p);
    if (pair == nullptr || std::find(done.begin(), done.end(), pair) != done.end())
      continue;
    done.push_back(pair);
    const size_t in = static_cast<size_t>(pair->a.size(1)),
                 r = static_cast<size_t>(pair->a.size(0));
    const size_t out = static_cast<size_t>(pair->b.size(0));
    auto& members = s.lora_rows;
    members.clear();
    for (size_t i = row; i < rows; ++i)
      if (lora_for(loras[i], layer, p) == pair)
        members.push_back(i);
    s.lora_in.resize(members.size() * in);
    for (size_t m = 0; m < members.size(); ++m)
      std::memcpy(&s.lora_in[m * in], x + members[m] * ldx, in * sizeof(float));
    s.lora_mid.resize(members.size() * r);
    s.lora_out.resize(members.size() * out);
    cpu::dense_rows(s.lora_in.data(), members.size(), in, ptr(pair->a), in, nullptr,
                    s.lora_mid.data(), r, 0, r);
    dense(s.lora_mid.data(), members.size(), r, ptr(pair->b), r, nullptr, s.lora_out.data(), out,
          out);
    const auto scale = static_cast<float>(pair->scale);
    for (size_t m = 0; m < members.size(); ++m) {
      float* dst = y + members[m] * ldy;
      const float* delta = &s.lora_out[m * out];
      for (size_t j = 0; j < out; ++j)
        dst[j] += delta[j] * scale;
    }
  }
}

std::optional<torch::Tensor> llama_model::sequence_logits_cpu(const std::vector<int64_t>& ids,
                                                              const lora_weights* lora) const {
  std::vector<const lora_weights*> loras(ids.size(), lora);
  if (ids.empty() || !cpu_decode_ready(loras))
    return std::nullopt;
  auto cache = make_cache(static_cast<int64_t>(ids.size()));
  std::vector<kv_cache*> caches(ids.size(), &cache);
  return decode_batch_cpu(ids, caches, loras);
}

std::optional<torch::Tensor> llama_model::prefill_cpu(const std::vector<int64_t>& ids,
                                                      kv_cache& cache, const lora_weights* lora,
                                                      bool all_logits) const {
  std::vector<size_t> logit_rows;
  for (size_t r = all_logits ? 0 : std::max<size_t>(1, ids.size()) - 1; r < ids.size(); ++r)
    logit_rows.push_back(r);
  return mixed_batch_cpu(ids, std::vector<kv_cache*>(ids.size(), &cache),
                         std::vector<const lora_weights*>(ids.size(), lora), logit_rows);
}

std::optional<torch::Tensor> llama_model::mixed_batch_cpu(
    const std::vector<int64_t>& ids, const std::vector<kv_cache*>& caches,
    const std::vector<const lora_weights*>& loras, const std::vector<size_t>& logit_rows) const {
  if (ids.empty() || logit_rows.empty() || !cpu_decode_ready(loras))
    return std::nullopt;
  if (activation_limit_bytes_ > 0
      && ids.size() * static_cast<size_t>(config_.intermediate_size) * 3 * sizeof(float)
             > activation_limit_bytes_)
    throw std::bad_alloc();  // injected, as in forward()
  return decode_batch_cpu(ids, caches, loras, logit_rows);
}

torch::Tensor llama_model::decode_batch_cpu(const std::vector<int64_t>& ids,
                                            const std::vector<kv_cache*>& caches,
                                            const std::vector<const lora_weights*>& loras,
                                            const std::vector<size_t>& logit_rows) const {
  const size_t rows = ids.size();
  // Reused: no allocation per token once warm. The reference matters: inside the parallel
  // lambdas a thread_local name would mean each worker thread's own (empty) copy.
  thread_local cpu_scratch scratch;
  cpu_scratch& s = scratch;
  // Each row's position: after what its cache holds and the earlier rows of the same cache
  // (a prefill's rows share one cache; a decode step's rows have one each).
  auto& position = s.position;
  position.resize(rows);
  s.next_position.clear();
  for (size_t r = 0; r < rows; ++r) {
    auto it = std::find_if(s.next_position.begin(), s.next_position.end(),
                           [&](const auto& e) { return e.first == caches[r]; });
    if (it == s.next_position.end())
      it = s.next_position.insert(it, {caches[r], caches[r]->length});
    position[r] = it->second++;
  }
  const size_t h = static_cast<size_t>(config_.hidden_size),
               d = static_cast<size_t>(config_.head_dim);
  const size_t heads = static_cast<size_t>(config_.num_heads),
               kvh = static_cast<size_t>(config_.num_kv_heads);
  const size_t q_out = heads * d, kv_out = kvh * d, qkv_n = q_out + 2 * kv_out;
  const size_t inter = static_cast<size_t>(config_.intermediate_size), group = heads / kvh,
               half = d / 2;
  const double eps = config_.rms_norm_eps;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));
  const int64_t window = config_.sliding_window;
  const bool kv_bf16 = kv_dtype_ == torch::kBFloat16;
  s.x.resize(rows * h);
  s.norm.resize(rows * h);
  s.qkv.resize(rows * qkv_n);
  s.attn.resize(rows * q_out);
  s.proj.resize(rows * h);
  s.gate_up.resize(rows * 2 * inter);
  for (size_t r = 0; r < rows; ++r)
    quant::dequantize_row(embed_rows_, static_cast<size_t>(ids[r]), &s.x[r * h]);
  const float* cos_all = ptr(cos_);
  const float* sin_all = ptr(sin_);
  // Attention query by query, or (attend_many) in blocks of rows that share a cache, one
  // block per KV head: the heads of a group and a prompt's rows then load each key once.
  const bool many_queries = cpu::attend_many_available(d);
  struct query_block {
    size_t row_begin, row_end, kv_head;
  };
  thread_local std::vector<query_block> query_blocks;  // reused, as `scratch`
  auto& blocks = query_blocks;
  blocks.clear();
  if (many_queries) {
    const size_t rows_per_block = std::max<size_t>(1, 8 / group);
    for (size_t r = 0; r < rows;) {
      size_t end = r + 1;
      while (end < rows && end - r < rows_per_block && caches[end] == caches[r])
        ++end;
      for (size_t g = 0; g < kvh; ++g)
        blocks.push_back({r, end, g});
      r = end;
    }
  }
  // The first key a query at position `at` reads: a sliding window starts later.
  auto first_key_of = [&](int64_t at) -> int64_t {
    return window > 0 && at + 1 > window ? at - window + 1 : 0;
  };
  auto attend_groups = [&](size_t l) {
    parallel(blocks.size(), 1, [&](size_t begin, size_t end) {
      thread_local std::vector<int64_t> key_at, value_at;
      thread_local std::vector<cpu::attention_query> queries;
      thread_local std::vector<float> scores;
      for (size_t item = begin; item < end; ++item) {
        const auto& b = blocks[item];
        const auto& cache = *caches[b.row_begin];
        const auto& kt = cache.k[l];
        const auto& vt = cache.v[l];
        queries.clear();
        int64_t first_key = std::numeric_limits<int64_t>::max(), end_key = 0;
        for (size_t r = b.row_begin; r < b.row_end; ++r) {
          const int64_t total = position[r] + 1, first = first_key_of(position[r]);
          first_key = std::min(first_key, first);
          end_key = std::max(end_key, total);
          for (size_t head = b.kv_head * group; head < (b.kv_head + 1) * group; ++head)
            queries.push_back(
                {&s.qkv[r * qkv_n + head * d], first, total, &s.attn[r * q_out + head * d]});
        }
        key_at.resize(static_cast<size_t>(end_key - first_key));
        value_at.resize(key_at.size());
        const int64_t k_head = static_cast<int64_t>(b.kv_head) * kt.stride(0),
                      v_head = static_cast<int64_t>(b.kv_head) * vt.stride(0);
        for (int64_t t = first_key; t < end_key; ++t) {
          key_at[static_cast<size_t>(t - first_key)] = k_head + cache.slot(t) * kt.stride(1);
          value_at[static_cast<size_t>(t - first_key)] = v_head + cache.slot(t) * vt.stride(1);
        }
        const cpu::attention_cache keys{kt.data_ptr(), vt.data_ptr(),   kv_bf16,
                                        key_at.data(), value_at.data(), first_key};
        cpu::attend_many(keys, queries.data(), queries.size(), d, scale, scores);
      }
    });
  };
  // One-token attention for every (row, head): scores, softmax, weighted values.
  auto attend_each = [&](size_t l) {
    parallel(rows * heads, 1, [&](size_t begin, size_t end) {
      thread_local std::vector<float> p;  // this worker's scores, reused
      for (size_t item = begin; item < end; ++item) {
        const size_t r = item / heads, head = item % heads;
        const auto& cache = *caches[r];
        const int64_t at = position[r], total = at + 1;
        const auto& kt = cache.k[l];
        const auto& vt = cache.v[l];
        const size_t g = head / group;
        const int64_t k_head = static_cast<int64_t>(g) * kt.stride(0),
                      v_head = static_cast<int64_t>(g) * vt.stride(0);
        // The row's keys and values in the cache's type: fp32, or bf16 (--kv-dtype). The
        // tensors' pointers and strides are read once here: per token they were ~3 % of a
        // chat load's profile.
        const void* keys = kt.data_ptr();
        const void* values = vt.data_ptr();
        const int64_t key_stride = kt.stride(1), value_stride = vt.stride(1);
        auto key_dot = [&](const float* q, int64_t t) {
          const int64_t at_key = k_head + cache.slot(t) * key_stride;
          return kv_bf16 ? cpu::dot(q, static_cast<const uint16_t*>(keys) + at_key, d)
                         : cpu::dot(q, static_cast<const float*>(keys) + at_key, d);
        };
        const float* q = &s.qkv[r * qkv_n + head * d];
        const int64_t first = first_key_of(at);
        p.assign(static_cast<size_t>(total - first), 0);
        float top = -std::numeric_limits<float>::infinity();
        for (int64_t t = first; t < total; ++t) {
          const float dot = key_dot(q, t) * scale;
          p[static_cast<size_t>(t - first)] = dot;
          top = std::max(top, dot);
        }
        cpu::softmax_weights(p.data(), p.size(), top);
        float* out = &s.attn[r * q_out + head * d];
        std::fill(out, out + d, 0.0f);
        const auto stride = static_cast<size_t>(value_stride);
        // block by block: each block's slots are consecutive
        for (int64_t t = first; t < total;) {
          const int64_t run = std::min(total, (t / kv_block_tokens + 1) * kv_block_tokens) - t;
          const int64_t at_value = v_head + cache.slot(t) * value_stride;
          const float* weights = p.data() + (t - first);
          if (kv_bf16)
            cpu::weighted_rows(weights, static_cast<const uint16_t*>(values) + at_value, stride,
                               static_cast<size_t>(run), out, d);
          else
            cpu::weighted_rows(weights, static_cast<const float*>(values) + at_value, stride,
                               static_cast<size_t>(run), out, d);
          t += run;
        }
      }
    });
  };
  step_timer timer;  // bench programs' per-phase breakdown (model/step_profile.hpp)
  using phase = step_phase;
  for (size_t l = 0; l < weights_.layers.size(); ++l) {
    const auto& w = weights_.layers[l];
    const auto& pk = packed_[l];
    parallel(rows, 4, [&](size_t a, size_t b) {
      for (size_t r = a; r < b; ++r)
        cpu::rms_norm_row(&s.x[r * h], ptr(w.input_norm), h, eps, &s.norm[r * h]);
    });
    timer.mark(phase::other);
    dense_parallel(pk.qkv, s.norm.data(), rows, h, ptr(pk.qkv_bias), s.qkv.data(), qkv_n, s.act);
    timer.mark(phase::matrices);
    add_lora_cpu(s.norm.data(), h, rows, l, proj::q, loras, s.qkv.data(), qkv_n, s);
    add_lora_cpu(s.norm.data(), h, rows, l, proj::k, loras, s.qkv.data() + q_out, qkv_n, s);
    add_lora_cpu(s.norm.data(), h, rows, l, proj::v, loras, s.qkv.data() + q_out + kv_out, qkv_n,
                 s);
    timer.mark(phase::lora);
    // RoPE (transformers' rotate_half) on q and k, then k and v into the row's cache.
    for (size_t r = 0; r < rows; ++r) {
      auto& cache = *caches[r];
      const int64_t pos = position[r];
      const float* c = cos_all + static_cast<size_t>(pos) * d;
      const float* sn = sin_all + static_cast<size_t>(pos) * d;
      float* row = &s.qkv[r * qkv_n];
      for (size_t hd = 0; hd < heads + kvh; ++hd) {
        float* v = row + hd * d;
        for (size_t i = 0; i < half; ++i) {
          const float x1 = v[i], x2 = v[i + half];
          v[i] = x1 * c[i] - x2 * sn[i];
          v[i + half] = x2 * c[i + half] + x1 * sn[i + half];
        }
      }
      auto& kt = cache.k[l];
      auto& vt = cache.v[l];
      const auto ks0 = kt.stride(0), ks1 = kt.stride(1), vs0 = vt.stride(0), vs1 = vt.stride(1);
      for (size_t g = 0; g < kvh; ++g) {
        const int64_t k_at = static_cast<int64_t>(g) * ks0 + cache.slot(pos) * ks1,
                      v_at = static_cast<int64_t>(g) * vs0 + cache.slot(pos) * vs1;
        if (kv_bf16) {
          auto* kp = reinterpret_cast<uint16_t*>(kt.data_ptr()) + k_at;
          auto* vp = reinterpret_cast<uint16_t*>(vt.data_ptr()) + v_at;
          for (size_t i = 0; i < d; ++i) {
            kp[i] = quant::f32_to_bf16(row[q_out + g * d + i]);
            vp[i] = quant::f32_to_bf16(row[q_out + kv_out + g * d + i]);
          }
        } else {
          std::memcpy(kt.data_ptr<float>() + k_at, row + q_out + g * d, d * sizeof(float));
          std::memcpy(vt.data_ptr<float>() + v_at, row + q_out + kv_out + g * d, d * sizeof(float));
        }
      }
    }
    timer.mark(phase::other);
    if (many_queries)
      attend_groups(l);
    else
      attend_each(l);
    timer.mark(phase::attention);
    dense_parallel(pk.o, s.attn.data(), rows, q_out, ptr(w.linear[3].bias), s.proj.data(), h,
                   s.act);
    timer.mark(phase::matrices);
    add_lora_cpu(s.attn.data(), q_out, rows, l, proj::o, loras, s.proj.data(), h, s);
    timer.mark(phase::lora);
    for (size_t i = 0; i < rows * h; ++i)
      s.x[i] += s.proj[i];
    parallel(rows, 4, [&](size_t a, size_t b) {
      for (size_t r = a; r < b; ++r)
        cpu::rms_norm_row(&s.x[r * h], ptr(w.post_attention_norm), h, eps, &s.norm[r * h]);
    });
    timer.mark(phase::other);
    dense_parallel(pk.gate_up, s.norm.data(), rows, h, ptr(pk.gate_up_bias), s.gate_up.data(),
                   2 * inter, s.act);
    timer.mark(phase::matrices);
    add_lora_cpu(s.norm.data(), h, rows, l, proj::gate, loras, s.gate_up.data(), 2 * inter, s);
    add_lora_cpu(s.norm.data(), h, rows, l, proj::up, loras, s.gate_up.data() + inter, 2 * inter,
                 s);
    timer.mark(phase::lora);
    // In pieces of a row, so that a decode step's one row is not left to one thread.
    const size_t piece = 512, pieces = (inter + piece - 1) / piece;
    parallel(rows * pieces, 2, [&](size_t a, size_t b) {
      for (size_t item = a; item < b; ++item) {
        const size_t r = item / pieces, from = item % pieces * piece;
        float* gate = &s.gate_up[r * 2 * inter];
        cpu::silu_mul(gate + from, gate + inter + from, std::min(piece, inter - from));
      }
    });
    timer.mark(phase::other);
    dense_parallel(pk.down, s.gate_up.data(), rows, 2 * inter, ptr(w.linear[6].bias), s.proj.data(),
                   h, s.act);
    timer.mark(phase::matrices);
    add_lora_cpu(s.gate_up.data(), 2 * inter, rows, l, proj::down, loras, s.proj.data(), h, s);
    timer.mark(phase::lora);
    for (size_t i = 0; i < rows * h; ++i)
      s.x[i] += s.proj[i];
  }
  for (auto* c : caches)
    ++c->length;
  std::vector<size_t> out_rows = logit_rows;
  if (out_rows.empty())
    for (size_t r = 0; r < rows; ++r)
      out_rows.push_back(r);
  for (size_t i = 0; i < out_rows.size(); ++i)
    cpu::rms_norm_row(&s.x[out_rows[i] * h], ptr(weights_.final_norm), h, eps, &s.norm[i * h]);
  const auto vocab = lm_head_.rows;
  auto logits = torch::empty({static_cast<int64_t>(out_rows.size()), static_cast<int64_t>(vocab)},
                             torch::kFloat32);
  timer.mark(phase::other);
  dense_parallel(lm_head_, s.norm.data(), out_rows.size(), h, nullptr, logits.data_ptr<float>(),
                 vocab, s.act);
  timer.mark(phase::matrices);
  return logits;
}

}  // namespace adapterd::model
