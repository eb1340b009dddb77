// adapterd-roofline MODEL_DIR [ROUNDS]: batch-1 decode tokens/s as a fraction of what this
// machine's memory bandwidth allows for the model's weights (bandwidth / weight bytes), with
// the GEMM rate for scale. Each round measures all three one after another, so that the
// noise of a shared machine hits them alike; the report gives every round and the medians.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>
#include <vector>

#include "bench/stats.hpp"
#include "model/base_model.hpp"
#include "model/llama/cpu_kernels.hpp"
#include "model/llama/gemm_probe.hpp"

using namespace adapterd;
using clock_type = std::chrono::steady_clock;

namespace {

// Read bandwidth: every thread sums its share of a 1 GiB huge-page buffer; best of 5.
double read_bandwidth_gbs(int threads) {
  const size_t floats = (size_t(1) << 30) / sizeof(float);
  auto buffer = model::cpu::allocate_huge(floats);
  for (size_t i = 0; i < floats; ++i)
    buffer.get()[i] = static_cast<float>(i & 1023);
  double best = 0;
  std::vector<float> sums(static_cast<size_t>(threads));
  for (int rep = 0; rep < 5; ++rep) {
    auto start = clock_type::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        size_t share = floats / static_cast<size_t>(threads);
        sums[static_cast<size_t>(t)] = model::cpu::sum_floats(buffer.get() + share * static_cast<size_t>(t), share);
      });
    for (auto& p : pool)
      p.join();
    double s = std::chrono::duration<double>(clock_type::now() - start).count();
    best = std::max(best, static_cast<double>(floats * sizeof(float)) / s / 1e9);
  }
  if (sums[0] == -1)
    std::cout << "";  // keeps the sums alive
  return best;
}

double decode_tokens_per_s(const model::base_model& m, int tokens) {
  model::generation_params p;
  p.max_new_tokens = static_cast<uint32_t>(tokens + 1);
  auto ids = m.tok().encode("The roofline of a decoder is the speed of its memory", true);
  auto g = m.begin(ids, p, nullptr);
  if (!g)
    throw std::runtime_error(g.err().message);
  for (int i = 0; i < 4; ++i)  // warm
    m.step({g->get()});
  auto start = clock_type::now();
  int done = 0;
  for (; done < tokens - 4 && !(*g)->finished(); ++done)
    if (auto e = m.step({g->get()}))
      throw std::runtime_error(e->message);
  return done / std::chrono::duration<double>(clock_type::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argv[1][0] == '-') {
    std::cerr << "usage: adapterd-roofline MODEL_DIR [ROUNDS]\n";
    return 2;
  }
  int rounds = argc > 2 ? std::atoi(argv[2]) : 5;
  if (rounds < 1 || rounds > 100) {
    std::cerr << "adapterd-roofline: ROUNDS must be 1 to 100\n";
    return 2;
  }
  auto m = model::base_model::load(argv[1], model::load_options{"cpu", 0});
  if (!m) {
    std::cerr << "adapterd-roofline: " << m.err().message << "\n";
    return 1;
  }
  const double bytes = static_cast<double>((*m)->weight_bytes());
  const int threads = static_cast<int>(std::thread::hardware_concurrency());
  std::printf("model %s: %.1f MB of weights (%s), %d threads, CPU kernels %s\n", argv[1], bytes / 1e6,
              (*m)->dtype().c_str(), threads, model::cpu::kernels_available() ? "on" : "off");
  std::printf("round  read GB/s  GEMM GFLOP/s  roofline tok/s  decode tok/s  fraction\n");
  std::vector<double> bw, gemm, roof, dec, frac;
  try {
    for (int r = 1; r <= rounds; ++r) {
      bw.push_back(read_bandwidth_gbs(threads));
      dec.push_back(decode_tokens_per_s(**m, 64));
      gemm.push_back(model::measure_gemm_gflops(1024, 5));
      roof.push_back(bw.back() * 1e9 / bytes);
      frac.push_back(dec.back() / roof.back());
      std::printf("%5d  %9.1f  %12.1f  %14.1f  %12.1f  %7.1f %%\n", r, bw.back(), gemm.back(), roof.back(),
                  dec.back(), 100 * frac.back());
    }
  } catch (const std::exception& e) {
    std::cerr << "adapterd-roofline: " << e.what() << "\n";
    return 1;
  }
  using bench::median;
  std::printf("median %9.1f  %12.1f  %14.1f  %12.1f  %7.1f %%\n", median(bw), median(gemm), median(roof),
              median(dec), 100 * median(frac));
  std::printf("fraction: median of the rounds' own fractions %.1f %%; median decode / median roofline %.1f %%\n",
              100 * median(frac), 100 * median(dec) / median(roof));
  return 0;
}
