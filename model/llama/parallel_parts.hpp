#pragma once
// Work split over the decode kernels' pool (spin_pool) in chunks the threads claim.
#include <algorithm>
#include <atomic>
#include <cstddef>

#include "model/llama/spin_pool.hpp"

namespace adapterd::model {

// Runs body(begin, end) over [0, n) on the pool's threads, in chunks that each thread
// claims as it gets to them, so that a thread that is held up does not hold up the rest.
// The chunks shrink as the work runs out (a share of what is left, down to min_chunk):
// large ones keep the weight streams long, small last ones leave no thread waiting long
// for the other at the end (equal eighths left ~6 % of a decode step to spinning).
// set_up() runs once on each thread that takes part, before its first chunk.
template <class SetUp, class Body>
void parallel_set_up(size_t n, size_t min_per_part, const SetUp& set_up, const Body& body,
                     size_t min_chunk) {
  auto& pool = spin_pool::instance();
  const size_t parts =
      std::min(pool.parts(), std::max<size_t>(1, n / std::max<size_t>(1, min_per_part)));
  if (parts <= 1) {
    set_up();
    return body(0, n);
  }
  std::atomic<size_t> next{0};
  pool.run([&](size_t part) {
    if (part >= parts)
      return;  // a thread beyond spin_pool::set_limit()
    set_up();
    size_t begin = next.load(std::memory_order_relaxed);
    while (begin < n) {
      const size_t end = std::min(n, begin + std::max(min_chunk, (n - begin) / (2 * parts)));
      if (next.compare_exchange_weak(begin, end, std::memory_order_relaxed)) {
        body(begin, end);
        begin = next.load(std::memory_order_relaxed);
      }
    }
  });
}

template <class Body>
void parallel(size_t n, size_t min_per_part, const Body& body, size_t min_chunk = 1) {
  parallel_set_up(
      n, min_per_part, [] {}, body, min_chunk);
}

}  // namespace adapterd::model
