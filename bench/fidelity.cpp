// adapterd-fidelity MODEL_DIR TEXT_FILE [--tail=0.05] [--windows=16] [--weights=bf16,int8,q4]
//   [--adapter=DIR] [--kv-dtype=bfloat16]: what each weight format (and a bf16 KV cache, for
// every format but the reference) does to a model, against f32 on the same
// weights: perplexity on held-back text (the last --tail of TEXT_FILE's tokens, which is
// what adapterd-train holds back), teacher-forced top-1 agreement with f32, and the max
// and mean absolute logit error. The text is cut into windows of the model's context (at
// most 256 tokens); each window is one teacher-forced pass.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <vector>

#include "bench/stats.hpp"
#include "model/base_model.hpp"

using namespace adapterd;

namespace {

struct fidelity {
  double nll = 0, max_error = 0, error_sum = 0;
  size_t predictions = 0, agree = 0, logits = 0;
};

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> positional, formats{"bf16", "int8", "q4"};
  double tail = 0.05;
  int max_windows = 16;
  std::string adapter_dir, kv_dtype = "auto";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--weights=", 0) == 0)
      formats = bench::split_list(a.substr(10));
    else if (a.rfind("--tail=", 0) == 0)
      tail = std::atof(a.c_str() + 7);
    else if (a.rfind("--windows=", 0) == 0)
      max_windows = std::atoi(a.c_str() + 10);
    else if (a.rfind("--kv-dtype=", 0) == 0)
      kv_dtype = a.substr(11);
    else if (a.rfind("--adapter=", 0) == 0)
      adapter_dir = a.substr(10);
    else if (a[0] == '-')
      positional.assign(3, "");  // refused below
    else
      positional.push_back(a);
  }
  if (positional.size() != 2 || !(tail > 0 && tail <= 1) || max_windows < 1) {
    std::cerr << "usage: adapterd-fidelity MODEL_DIR TEXT_FILE [--tail=0.05] [--windows=16] "
                 "[--weights=bf16,int8,q4] [--adapter=DIR] [--kv-dtype=bfloat16]\n";
    return 2;
  }
  std::ifstream in(positional[1], std::ios::binary);
  if (!in) {
    std::cerr << "adapterd-fidelity: cannot read " << positional[1] << "\n";
    return 1;
  }
  std::stringstream text;
  text << in.rdbuf();
  formats.insert(formats.begin(), "f32");
  std::vector<std::shared_ptr<const model::base_model>> models;
  std::vector<std::shared_ptr<const model::lora_adapter>> adapters;
  for (size_t f = 0; f < formats.size(); ++f) {
    const auto& name = formats[f];
    model::load_options options;
    options.device = "cpu";
    options.weights = name;
    options.kv_dtype = f == 0 ? "auto" : kv_dtype;  // the reference keeps an fp32 cache
    auto m = model::base_model::load(positional[0], options);
    if (!m) {
      std::cerr << "adapterd-fidelity: " << name << ": " << m.err().message << "\n";
      return 1;
    }
    models.push_back(*m);
    if (!adapter_dir.empty()) {
      auto a = (*m)->load_adapter(adapter_dir);
      if (!a) {
        std::cerr << "adapterd-fidelity: " << a.err().message << "\n";
        return 1;
      }
      adapters.push_back(*a);
    }
  }
  const auto& tok = models[0]->tok();
  auto all = tok.encode(text.str(), false);
  const auto held =
      std::max<size_t>(2, static_cast<size_t>(static_cast<double>(all.size()) * tail));
  std::vector<int32_t> ids(all.end() - static_cast<std::ptrdiff_t>(std::min(held, all.size())),
                           all.end());
  const size_t window =
      static_cast<size_t>(std::min<int64_t>(256, models[0]->config().max_position_embeddings));
  const size_t vocab = static_cast<size_t>(models[0]->config().vocab_size);
  std::vector<fidelity> results(formats.size());
  int windows = 0;
  for (size_t at = 0; at + 1 < ids.size() && windows < max_windows; at += window, ++windows) {
    std::vector<int32_t> piece(
        ids.begin() + static_cast<std::ptrdiff_t>(at),
        ids.begin() + static_cast<std::ptrdiff_t>(std::min(ids.size(), at + window)));
    std::vector<std::vector<float>> logits;
    for (size_t f = 0; f < formats.size(); ++f) {
      auto l = models[f]->logits(piece, adapters.empty() ? nullptr : adapters[f].get());
      if (!l) {
        std::cerr << "adapterd-fidelity: " << formats[f] << ": " << l.err().message << "\n";
        return 1;
      }
      logits.push_back(std::move(*l));
    }
    for (size_t f = 0; f < formats.size(); ++f) {
      auto& r = results[f];
      for (size_t t = 0; t + 1 < piece.size(); ++t) {
        const float* row = &logits[f][t * vocab];
        const float* ref = &logits[0][t * vocab];
        const double top = *std::max_element(row, row + vocab);
        double sum = 0;
        for (size_t v = 0; v < vocab; ++v)
          sum += std::exp(row[v] - top);
        r.nll += top + std::log(sum) - row[static_cast<size_t>(piece[t + 1])];
        r.agree +=
            std::max_element(row, row + vocab) - row == std::max_element(ref, ref + vocab) - ref;
        ++r.predictions;
        for (size_t v = 0; v < vocab; ++v) {
          const double e = std::fabs(static_cast<double>(row[v]) - ref[v]);
          r.max_error = std::max(r.max_error, e);
          r.error_sum += e;
        }
        r.logits += vocab;
      }
    }
  }
  std::printf("KV cache of the compared formats: %s\n", kv_dtype.c_str());
  std::printf("model %s%s%s, %zu held-back tokens of %s (last %.1f %%), %d windows of <= %zu\n",
              positional[0].c_str(), adapter_dir.empty() ? "" : " + ", adapter_dir.c_str(),
              ids.size(), positional[1].c_str(), 100 * tail, windows, window);
  std::printf(
      "weights  MB       perplexity  x f32    top-1 = f32  max |logit err|  mean |logit err|\n");
  const double f32_ppl = std::exp(results[0].nll / static_cast<double>(results[0].predictions));
  for (size_t f = 0; f < formats.size(); ++f) {
    const auto& r = results[f];
    const double ppl = std::exp(r.nll / static_cast<double>(r.predictions));
    std::printf("%-7s  %7.1f  %10.4f  %7.4f  %9.2f %%  %15.4f  %16.5f\n", formats[f].c_str(),
                static_cast<double>(models[f]->weight_bytes()) / 1e6, ppl, ppl / f32_ppl,
                100.0 * static_cast<double>(r.agree) / static_cast<double>(r.predictions),
                r.max_error, r.error_sum / static_cast<double>(r.logits));
  }
  return 0;
}
