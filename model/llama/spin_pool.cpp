#include "model/llama/spin_pool.hpp"

#include <pthread.h>

#include <immintrin.h>

#include <chrono>

namespace adapterd::model {

namespace {
std::atomic<size_t> instance_parts{0};
}

void spin_pool::size_instance(size_t parts) { instance_parts = parts; }

spin_pool& spin_pool::instance() {
  static spin_pool pool(instance_parts > 0 ? instance_parts.load()
                                           : std::max(1u, std::thread::hardware_concurrency()));
  return pool;
}

spin_pool::spin_pool(size_t parts) {
  for (size_t i = 1; i < parts; ++i)
    helpers_.emplace_back([this, i] {
      pthread_setname_np(pthread_self(), "adapterd-kernel");  // how tests and top tell them apart
      helper_loop(i);
    });
}

spin_pool::~spin_pool() {
  {
    std::lock_guard<std::mutex> lock(sleep_mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : helpers_)
    t.join();
}

void spin_pool::run(const std::function<void(size_t)>& part) {
  if (helpers_.empty()) {
    part(0);
    return;
  }
  std::lock_guard<std::mutex> caller(mutex_);
  job_ = &part;
  pending_.store(helpers_.size(), std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(sleep_mutex_);
    epoch_.fetch_add(1, std::memory_order_release);
  }
  cv_.notify_all();
  part(0);
  while (pending_.load(std::memory_order_acquire) != 0)
    _mm_pause();
}

void spin_pool::helper_loop(size_t index) {
  uint64_t seen = 0;
  for (;;) {
    // Spin about 0.2 ms for the next part (the gap between a token's regions), then sleep.
    auto spin_until = std::chrono::steady_clock::now() + std::chrono::microseconds(200);
    while (epoch_.load(std::memory_order_acquire) == seen && !stop_.load(std::memory_order_relaxed)) {
      // The epoch is read after every pause: a pause takes ~65 cycles on AMD Zen (~140 on
      // recent Intel), and 64 of them before each look had the helper start its part of a
      // decode product 1.2-2 us after the caller (~120 regions a token).
      for (int i = 0; i < 64 && epoch_.load(std::memory_order_acquire) == seen; ++i)
        _mm_pause();
      if (std::chrono::steady_clock::now() > spin_until) {
        std::unique_lock<std::mutex> lock(sleep_mutex_);
        cv_.wait(lock, [&] { return epoch_.load(std::memory_order_acquire) != seen || stop_; });
      }
    }
    if (stop_)
      return;
    seen = epoch_.load(std::memory_order_acquire);
    (*job_)(index);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

}  // namespace adapterd::model
