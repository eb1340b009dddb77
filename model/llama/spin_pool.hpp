#pragma once
// A small fork-join pool for the decode kernels: one part runs on the calling thread, the
// others on helpers that spin briefly between parts before they sleep. A token's decode
// is ~60 short parallel regions; libgomp, once a process has more OpenMP threads than
// CPUs, puts its workers to sleep after each one, and the wake-ups cost milliseconds per
// token. One caller at a time (the device owner).
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace adapterd::model {

class spin_pool {
public:
  /// The process-wide pool: one part per CPU, or as many as size_instance() asked for
  /// before its first use.
  static spin_pool& instance();
  /// Sets the process-wide pool's parts (the --threads option); no effect once it exists.
  static void size_instance(size_t parts);

  explicit spin_pool(size_t parts);
  ~spin_pool();
  spin_pool(const spin_pool&) = delete;
  spin_pool& operator=(const spin_pool&) = delete;

  /// The parts a caller should split work into: the threads, or fewer under set_limit().
  size_t parts() const {
    return std::min(helpers_.size() + 1, limit_.load(std::memory_order_relaxed));
  }
  /// Uses at most `n` threads from now on (a bench compares 1 and 2 threads in one run):
  /// run() still calls every part, and parts at or beyond parts() must return at once.
  void set_limit(size_t n) { limit_.store(std::max<size_t>(1, n), std::memory_order_relaxed); }
  /// Calls part(i) for every i < parts(), in parallel; returns when all have returned.
  void run(const std::function<void(size_t)>& part);

private:
  void helper_loop(size_t index);

  std::vector<std::thread> helpers_;
  std::mutex mutex_;  // serialises callers; with cv_, the helpers' sleep
  std::mutex sleep_mutex_;
  std::condition_variable cv_;
  const std::function<void(size_t)>* job_ = nullptr;
  std::atomic<uint64_t> epoch_{0};
  std::atomic<size_t> pending_{0};
  std::atomic<bool> stop_{false};
  std::atomic<size_t> limit_{~size_t(0)};
};

}  // namespace adapterd::model
