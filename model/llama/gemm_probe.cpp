#include "model/llama/gemm_probe.hpp"

#include <chrono>

#include <torch/torch.h>

namespace adapterd::model {

double measure_gemm_gflops(int n, int reps) {
  torch::InferenceMode guard;
  auto a = torch::rand({n, n});
  auto b = torch::rand({n, n});
  auto c = torch::mm(a, b);  // warm
  double best = 0;
  for (int i = 0; i < reps; ++i) {
    auto start = std::chrono::steady_clock::now();
    c = torch::mm(a, b);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, 2.0 * n * n * n / s / 1e9);
  }
  return best;
}

}  // namespace adapterd::model
