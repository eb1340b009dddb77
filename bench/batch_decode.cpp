// adapterd-batch-decode MODEL_DIR [ADAPTER_DIR...]: decode tokens/s of the model layer at
// batch sizes 1, 4 and 16 (or $BATCHES, e.g. BATCHES=1 for a profile of batch 1) (rows cycling
// through the adapters and the base model), measured in one run. Model compute only: no HTTP, no
// actors. CONTEXT=N makes each prompt N tokens long (the sentence repeated), so attention reads a
// long cache. BREAKDOWN=1 prints, per batch size, where a step's time goes: matrices,
// attention, LoRA, the rest of the layers (norms, RoPE, KV writes, residuals) and sampling,
// in ms per step and as shares (model/step_profile.hpp). Each batch's line also gives the
// GFLOP/s of its weight products (2 x the matrices' weights per row) against the fp32 FMA
// peak of the pool's threads, measured at the start of the run (bench/fma_peak.hpp).
//
// WEIGHTS=f32|bf16|int8|q4 picks the weight format (default auto).
//
// KV chooses where each sequence's cache lives:
//   own     (default) each sequence allocates its own contiguous cache;
//   pooled  each sequence takes blocks of the model's paged pool, scattered between other
//           sequences' blocks (as a busy server's are);
//   ab      both, in one process: the two batches take turns step by step, so the host's noise
//           (steal, frequency) falls on both alike, and the ratio pooled/own is printed.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include "bench/fma_peak.hpp"
#include "model/base_model.hpp"
#include "model/llama/spin_pool.hpp"
#include "model/step_profile.hpp"

using namespace adapterd::model;

namespace {

using clock_type = std::chrono::steady_clock;

// Multiply-adds x 2 of one row through every weight matrix (attention, MLP, output head).
double flops_per_row(const model_config& c) {
  const double h = static_cast<double>(c.hidden_size),
               q = static_cast<double>(c.num_heads * c.head_dim),
               kv = static_cast<double>(c.num_kv_heads * c.head_dim);
  const double layer = h * (q + 2 * kv) + q * h + 3 * h * static_cast<double>(c.intermediate_size);
  return 2 * (static_cast<double>(c.num_layers) * layer + h * static_cast<double>(c.vocab_size));
}

struct batch_under_test {
  std::vector<std::unique_ptr<generation>> gens, between;
  std::vector<generation*> rows;
  double seconds = 0;
};

std::vector<int> batch_sizes() {
  std::vector<int> batches{1, 4, 16};
  if (const char* env = std::getenv("BATCHES")) {
    batches.clear();
    for (const char* p = env; *p;) {
      char* end = nullptr;
      long v = std::strtol(p, &end, 10);
      if (end == p || v < 1 || v > 256)
        return {};
      batches.push_back(static_cast<int>(v));
      p = *end == ',' ? end + 1 : end;
    }
  }
  return batches;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: adapterd-batch-decode MODEL_DIR [ADAPTER_DIR...]\n";
    return 2;
  }
  const std::string kv = std::getenv("KV") ? std::getenv("KV") : "own";
  if (kv != "own" && kv != "pooled" && kv != "ab") {
    std::cerr << "adapterd-batch-decode: KV must be own, pooled or ab\n";
    return 2;
  }
  const auto batches = batch_sizes();
  if (batches.empty()) {
    std::cerr << "adapterd-batch-decode: BATCHES must be a list of 1 to 256, like 1,4,16\n";
    return 2;
  }
  std::vector<bool> kinds;  // pooled_kv of each batch under test, in turn order
  if (kv != "pooled")
    kinds.push_back(false);
  if (kv != "own")
    kinds.push_back(true);
  load_options options{"auto", 0};
  options.kv_pool_tokens = kv != "own" ? 65536 : 0;
  if (const char* weights = std::getenv("WEIGHTS"))
    options.weights = weights;
  auto model = base_model::load(argv[1], options);
  if (!model) {
    std::cerr << "adapterd-batch-decode: " << model.err().message << "\n";
    return 1;
  }
  std::vector<std::shared_ptr<const lora_adapter>> adapters{nullptr};
  for (int i = 2; i < argc; ++i) {
    auto a = (*model)->load_adapter(argv[i]);
    if (!a) {
      std::cerr << "adapterd-batch-decode: " << a.err().message << "\n";
      return 1;
    }
    adapters.push_back(*a);
  }
  std::cout << "model " << argv[1] << ": " << ((*model)->weight_bytes() >> 20) << " MiB on "
            << (*model)->device() << ", " << adapters.size() - 1 << " adapters, KV " << kv << "\n";
  const int steps = std::getenv("STEPS") ? std::atoi(std::getenv("STEPS")) : 32;
  auto prompt = (*model)->tok().encode("The quick brown fox jumps over the lazy dog.", true);
  if (const char* env = std::getenv("CONTEXT")) {
    const auto sentence = prompt;
    while (static_cast<long>(prompt.size()) < std::atol(env))
      prompt.insert(prompt.end(), sentence.begin() + 1, sentence.end());
    prompt.resize(static_cast<size_t>(std::max(1L, std::atol(env))));
  }
  const bool breakdown = std::getenv("BREAKDOWN") && std::string(std::getenv("BREAKDOWN")) == "1";
  const double peak = static_cast<double>(spin_pool::instance().parts())
                      * adapterd::bench::fma_peak_per_core(__builtin_cpu_supports("avx512f"));
  std::cout << "fp32 FMA peak " << peak << " GFLOP/s (" << spin_pool::instance().parts()
            << " threads, measured now)\n";
  std::vector<double> batch1(kinds.size(), 0);
  for (int rows : batches) {
    std::vector<batch_under_test> under_test(kinds.size());
    for (size_t k = 0; k < kinds.size(); ++k) {
      auto& b = under_test[k];
      generation_params params;
      params.max_new_tokens = steps + 1;
      params.ignore_eos = true;  // every step makes a token for every row (tokens/s counts them)
      params.pooled_kv = kinds[k];
      if (kinds[k]) {  // every other pair of blocks held by an idle sequence: the batch's lie
                       // between
        for (int r = 0; r < 2 * rows; ++r)
          if (auto g = (*model)->begin(prompt, params, nullptr))
            b.between.push_back(std::move(*g));
        for (size_t r = 0; r < b.between.size(); r += 2)
          b.between[r].reset();
      }
      for (int r = 0; r < rows; ++r) {
        auto g = (*model)->begin(prompt, params,
                                 adapters[static_cast<size_t>(r) % adapters.size()].get());
        if (!g) {
          std::cerr << "adapterd-batch-decode: " << g.err().message << "\n";
          return 1;
        }
        b.gens.push_back(std::move(*g));
        b.rows.push_back(b.gens.back().get());
      }
    }
    enable_step_profile(breakdown);
    (void)take_step_profile();  // prefill's phases are not the step's
    for (int s = 0; s < steps; ++s)
      for (auto& b : under_test) {
        auto start = clock_type::now();
        if (auto failed = (*model)->step(b.rows)) {
          std::cerr << "adapterd-batch-decode: " << failed->message << "\n";
          return 1;
        }
        b.seconds += std::chrono::duration<double>(clock_type::now() - start).count();
      }
    // The first token comes from begin(), one more from each step: a sequence that ended
    // sooner made steps that did no work, which the figures would count.
    for (auto& b : under_test)
      for (auto& g : b.gens)
        if (const auto& out = g->output();
            out.output_ids.size() != static_cast<size_t>(steps) + 1) {
          std::cerr << "adapterd-batch-decode: a sequence ended (" << out.finish_reason
                    << ") after " << out.output_ids.size() << " tokens, before its " << steps
                    << " steps (STEPS past the model's context?)\n";
          return 1;
        }
    std::cout << "batch " << rows << ":";
    for (size_t k = 0; k < kinds.size(); ++k) {
      const double tps = rows * steps / under_test[k].seconds;
      if (rows == 1)
        batch1[k] = tps;
      const double gflops = tps * flops_per_row((*model)->config()) / 1e9;
      std::cout << (kinds.size() > 1 ? (kinds[k] ? " pooled " : " own ") : " ") << tps
                << " tokens/s (" << tps / batch1[k] << "x batch 1), " << gflops << " GFLOP/s, "
                << 100 * gflops / peak << " % of peak";
    }
    if (kinds.size() > 1)
      std::cout << ", speed pooled/own " << under_test[0].seconds / under_test[1].seconds;
    std::cout << "\n";
    if (breakdown) {
      const auto p = take_step_profile();
      double wall = 0;
      for (const auto& b : under_test)
        wall += b.seconds;
      const double n = std::max<uint64_t>(1, p.steps);
      const double charged = p.matrices_s + p.attention_s + p.lora_s + p.other_s + p.sampling_s;
      auto part = [&](const char* name, double s) {
        std::printf("  %-10s %8.3f ms/step %5.1f %%\n", name, 1e3 * s / n, 100 * s / wall);
      };
      std::printf("  step time, batch %d (%llu steps):\n", rows,
                  static_cast<unsigned long long>(p.steps));
      part("matrices", p.matrices_s);
      part("attention", p.attention_s);
      part("lora", p.lora_s);
      part("layers", p.other_s);
      part("sampling", p.sampling_s);
      part("other", wall - charged);  // outside the decode: step bookkeeping, KV growth
      part("total", wall);
    }
  }
  return 0;
}
