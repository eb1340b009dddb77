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

inline double read_bandwidth_gbs(const float* buffer, size_t floats, int threads) {
  using clock_type = std::chrono::steady_clock;
  double best = 0;
  std::vector<float> sums(static_cast<size_t>(threads));
  for (int streams : {1, 2, 4, 8})
    for (int rep = 0; rep < 3; ++rep) {
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
      const double s = std::chrono::duration<double>(clock_type::now() - start).count();
      best = std::max(best, static_cast<double>(floats * sizeof(float)) / s / 1e9);
    }
  volatile float keep = sums[0];  // the sums stay computed
  (void)keep;
  return best;
}

}  // namespace adapterd::bench
