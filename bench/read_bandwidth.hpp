#pragma once
// The read-bandwidth probe of the bench programs (adapterd-roofline, adapterd-dense): every
// thread sums its share of a huge-page buffer as 1, 2, 4 and 8 streams side by side (a core
// keeps more lines in flight over several); the best of 3 passes of each, and the best of
// those. A roofline is the fastest read the machine shows, not one access pattern's.
#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include "model/llama/cpu_kernels.hpp"

namespace adapterd::bench {

// One pass: every thread sums its share as `streams` streams side by side. Seconds.
inline double read_pass_seconds(const float* buffer, size_t floats, int threads, int streams) {
  using clock_type = std::chrono::steady_clock;
  std::vector<float> sums(static_cast<size_t>(threads));
  auto start = clock_type::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      const size_t share = floats / static_cast<size_t>(threads);
      sums[static_cast<size_t>(t)] =
          model::cpu::sum_floats(buffer + share * static_cast<size_t>(t), share, streams);
    });
  for (auto& p : pool)
    p.join();
  const double seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  volatile float keep = sums[0];  // the sums stay computed
  (void)keep;
  return seconds;
}

constexpr int read_stream_counts[] = {1, 2, 4, 8};

inline double read_bandwidth_gbs(const float* buffer, size_t floats, int threads) {
  double best = 0;
  for (int streams : read_stream_counts)
    for (int rep = 0; rep < 3; ++rep)
      best = std::max(best, static_cast<double>(floats * sizeof(float))
                                / read_pass_seconds(buffer, floats, threads, streams) / 1e9);
  return best;
}

}  // namespace adapterd::bench
