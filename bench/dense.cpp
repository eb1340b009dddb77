// adapterd-dense [--weights=f32,bf16,int8,q4] [--rows=1,2,4,8,16,32,64] [--threads=1]:
// the linear-layer kernels alone, per weight format and number of activation rows, in one
// run. Each case multiplies rows by a [out, 2048] weight matrix twice over: one matrix of
// ~256 MB, read from memory (the decode case: its roofline is the read bandwidth), and one
// of ~256 KB, read from the cache (the compute ceiling of the kernel). Prints the weight
// bytes read per second and the GFLOP/s (2 x rows x out x 2048 per product), beside the
// machine's read bandwidth (adapterd-roofline's probe) and fp32 FMA peak, measured here.
// A third case reads ~256 MB of matrices in the shapes of the ~0.5 B bench model's layers
// (qkv, o, gate+up, down: rows of 1536 and 4096 weights), one product after another as a
// decode step does: shorter rows restart the streams more often than the 2048-wide one.
// Beside it, the same bytes read with plain loads in the same split ("of plain": how close
// the kernels come to reading alone, whatever the host's bandwidth is at the moment), and
// the same products as the decoder runs them (dense_parallel: each thread's own
// activations, shrinking chunks), all three taking turns; then the probe again ("probe
// now"), against which the plain reads are the ceiling of any decode step's products.
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench/fma_peak.hpp"
#include "bench/read_bandwidth.hpp"
#include "bench/stats.hpp"
#include "model/llama/cpu_kernels.hpp"
#include "model/llama/dense_parallel.hpp"
#include "model/llama/spin_pool.hpp"
#include "model/quant/dense.hpp"

using namespace adapterd::model;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr size_t dense_cols = 2048;

double read_bandwidth_gbs(size_t threads) {
  const size_t floats = (size_t(1) << 28) / sizeof(float);  // 256 MB
  static auto buffer = [&] {
    auto b = cpu::allocate_huge(floats);
    std::fill(b.get(), b.get() + floats, 1.0f);
    return b;
  }();
  return adapterd::bench::read_bandwidth_gbs(buffer.get(), floats, static_cast<int>(threads));
}

struct packed_matrix {
  std::shared_ptr<float> storage;  // huge pages
  quant::matrix m;
};

packed_matrix make_matrix(quant::weight_format f, size_t out_rows, size_t cols = dense_cols) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0, 0.05f);
  std::vector<float> w(out_rows * cols);
  for (auto& v : w)
    v = normal(rng);
  packed_matrix p;
  p.storage = cpu::allocate_huge((quant::row_bytes(f, cols) * out_rows + 3) / 4);
  p.m =
      quant::pack_matrix(f, w.data(), out_rows, cols, reinterpret_cast<uint8_t*>(p.storage.get()));
  return p;
}

// One product over all out rows, split in runs of whole bands (at least 16 rows) over the
// decode's own thread pool.
void product(const packed_matrix& p, const quant::activations& a, std::vector<float>& y) {
  auto& pool = spin_pool::instance();
  const size_t unit = std::max<size_t>(16, quant::band_rows_of(p.m));
  const size_t parts = pool.parts(), per = (p.m.rows / parts + unit - 1) / unit * unit;
  pool.run([&](size_t part) {
    if (part >= parts)
      return;
    const size_t begin = std::min(p.m.rows, part * per), end = std::min(p.m.rows, begin + per);
    quant::dense_rows(p.m, a, nullptr, y.data(), p.m.rows, begin, end);
  });
}

// Seconds per product, the best of `passes`.
double product_seconds(const packed_matrix& p, const quant::activations& a, std::vector<float>& y,
                       int passes) {
  double best = 1e30;
  for (int pass = 0; pass < passes; ++pass) {
    auto start = clock_type::now();
    product(p, a, y);
    best = std::min(best, std::chrono::duration<double>(clock_type::now() - start).count());
  }
  return best;
}

// The ~0.5 B bench model's layers (adapterd-make-tiny-model ... half), as [out, in], repeated
// to ~256 MB.
struct model_layers {
  std::vector<packed_matrix> matrices;
  double bytes = 0;
  model_layers(quant::weight_format f) {
    const std::pair<size_t, size_t> layer[] = {
        {2304, 1536}, {1536, 1536}, {8192, 1536}, {1536, 4096}};
    while (bytes < double(size_t(256) << 20))
      for (auto [out, in] : layer) {
        matrices.push_back(make_matrix(f, out, in));
        bytes += double(quant::row_bytes(f, in) * out);
      }
  }
  // Seconds for all the products in turn (each with its own activations), the best of `passes`.
  double seconds(const std::vector<float>& x, size_t rows, int passes) const {
    quant::activations narrow, wide;
    quant::prepare(narrow, matrices[0].m.format, x.data(), rows, 4096, 1536);
    quant::prepare(wide, matrices[0].m.format, x.data(), rows, 4096, 4096);
    std::vector<float> y(rows * 8192);
    double best = 1e30;
    for (int pass = 0; pass < passes; ++pass) {
      auto start = clock_type::now();
      for (const auto& m : matrices)
        product(m, m.m.cols == 4096 ? wide : narrow, y);
      best = std::min(best, std::chrono::duration<double>(clock_type::now() - start).count());
    }
    return best;
  }
  // The same products as the decoder runs them (dense_parallel): each thread prepares its own
  // activations and claims shrinking chunks.
  double model_seconds(const std::vector<float>& x, size_t rows, int passes) const {
    quant::activations act;
    std::vector<float> y(rows * 8192);
    double best = 1e30;
    for (int pass = 0; pass < passes; ++pass) {
      auto start = clock_type::now();
      for (const auto& m : matrices)
        dense_parallel(m.m, x.data(), rows, 4096, nullptr, y.data(), 8192, act);
      best = std::min(best, std::chrono::duration<double>(clock_type::now() - start).count());
    }
    return best;
  }
  // The same bytes read with plain loads (the probe's sum, one stream), split as product()
  // splits them: what the layers column would read if the kernel cost nothing.
  double plain_seconds(int passes) const {
    auto& pool = spin_pool::instance();
    const size_t parts = pool.parts();
    std::vector<float> sums(parts);
    double best = 1e30;
    for (int pass = 0; pass < passes; ++pass) {
      auto start = clock_type::now();
      for (const auto& m : matrices) {
        const size_t floats = quant::row_bytes(m.m.format, m.m.cols) * m.m.rows / sizeof(float),
                     per = (floats / parts + 15) / 16 * 16;
        pool.run([&](size_t part) {
          if (part >= parts)
            return;
          const size_t begin = std::min(floats, part * per), end = std::min(floats, begin + per);
          sums[part] += cpu::sum_floats(m.storage.get() + begin, end - begin, 1);
        });
      }
      best = std::min(best, std::chrono::duration<double>(clock_type::now() - start).count());
    }
    volatile float keep = sums[0];  // the sums stay computed
    (void)keep;
    return best;
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> formats{"f32", "bf16", "int8", "q4"};
  std::vector<size_t> row_counts{1, 2, 4, 8, 16, 32, 64};
  size_t threads = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--weights=", 0) == 0) {
      formats = adapterd::bench::split_list(a.substr(10));
    } else if (a.rfind("--rows=", 0) == 0) {
      row_counts.clear();
      for (const auto& r : adapterd::bench::split_list(a.substr(7)))
        row_counts.push_back(
            static_cast<size_t>(std::max(1L, std::min(256L, std::atol(r.c_str())))));
    } else if (a.rfind("--threads=", 0) == 0) {
      threads = static_cast<size_t>(std::max(1L, std::min(64L, std::atol(a.c_str() + 10))));
    } else {
      std::cerr << "usage: adapterd-dense [--weights=f32,bf16,int8,q4] [--rows=1,2,4,...] "
                   "[--threads=N]\n";
      return 2;
    }
  }
  spin_pool::instance().set_limit(threads);
  const bool avx512 = __builtin_cpu_supports("avx512f");
  const double peak = threads * adapterd::bench::fma_peak_per_core(avx512);
  const double bandwidth = read_bandwidth_gbs(threads);
  std::printf("kernels %s, %zu thread(s): fp32 FMA peak %.1f GFLOP/s, read bandwidth %.1f GB/s\n",
              quant::kernel_isa(), threads, peak, bandwidth);
  std::printf("%-6s %5s  %12s %10s %8s  %12s %10s %8s  %12s %8s  %11s %9s  %10s %8s  %9s %10s\n",
              "format", "rows", "memory GB/s", "of read", "GFLOP/s", "cache GB/s", "GFLOP/s",
              "of peak", "layers GB/s", "of read", "plain GB/s", "of plain", "model GB/s",
              "of plain", "probe now", "plain/probe");
  for (const auto& name : formats) {
    const auto f = quant::weight_format_from_name(name);
    if (!f) {
      std::cerr << "adapterd-dense: unknown format " << name << "\n";
      return 2;
    }
    const size_t row_bytes = quant::row_bytes(*f, dense_cols);
    auto big = make_matrix(*f, std::max<size_t>(64, (size_t(256) << 20) / row_bytes / 64 * 64));
    auto small = make_matrix(*f, std::max<size_t>(16, (size_t(256) << 10) / row_bytes / 16 * 16));
    const model_layers layers(*f);
    for (size_t rows : row_counts) {
      std::vector<float> x(rows * 4096);  // enough for the widest layer
      std::mt19937 rng(static_cast<uint32_t>(rows));
      std::uniform_real_distribution<float> u(-1, 1);
      for (auto& v : x)
        v = u(rng);
      quant::activations a;
      quant::prepare(a, *f, x.data(), rows, 4096, dense_cols);
      std::vector<float> y(rows * std::max(big.m.rows, small.m.rows));
      product_seconds(big, a, y, 1);  // its pages touched, the pool's threads awake
      const double memory_s = product_seconds(big, a, y, 3);
      // enough passes over the small matrix for ~20 ms
      const int passes = static_cast<int>(
          std::clamp(2e-2 / std::max(1e-7, product_seconds(small, a, y, 1)), 5.0, 2000.0));
      const double cache_s = product_seconds(small, a, y, passes);
      const double big_bytes = static_cast<double>(row_bytes * big.m.rows),
                   small_bytes = static_cast<double>(row_bytes * small.m.rows);
      const double big_flops = 2.0 * rows * big.m.rows * dense_cols,
                   small_flops = 2.0 * rows * small.m.rows * dense_cols;
      layers.seconds(x, rows, 1);  // pages touched
      // the kernels, the decoder's way and plain reads in turn: the host's swings hit all alike
      double layers_s = 1e30, plain_s = 1e30, model_s = 1e30;
      for (int turn = 0; turn < 3; ++turn) {
        layers_s = std::min(layers_s, layers.seconds(x, rows, 1));
        model_s = std::min(model_s, layers.model_seconds(x, rows, 1));
        plain_s = std::min(plain_s, layers.plain_seconds(1));
      }
      // The probe again, right after: plain reads in the product structure, with no
      // arithmetic and nothing between products, are the most a decode step can read.
      const double probe_now = read_bandwidth_gbs(threads);
      const double layers_gbs = layers.bytes / layers_s / 1e9,
                   plain_gbs = layers.bytes / plain_s / 1e9,
                   model_gbs = layers.bytes / model_s / 1e9;
      std::printf(
          "%-6s %5zu  %12.1f %9.0f %% %8.1f  %12.1f %10.1f %7.0f %%  %12.1f %6.0f %%  %11.1f "
          "%7.0f %%  %9.1f %7.0f %%  %9.1f %8.0f %%\n",
          name.c_str(), rows, big_bytes / memory_s / 1e9,
          100 * big_bytes / memory_s / 1e9 / bandwidth, big_flops / memory_s / 1e9,
          small_bytes / cache_s / 1e9, small_flops / cache_s / 1e9,
          100 * small_flops / cache_s / 1e9 / peak, layers_gbs, 100 * layers_gbs / bandwidth,
          plain_gbs, 100 * layers_gbs / plain_gbs, model_gbs, 100 * model_gbs / plain_gbs,
          probe_now, 100 * plain_gbs / probe_now);
    }
  }
  return 0;
}
