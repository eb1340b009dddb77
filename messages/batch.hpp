#pragma once
// The batch family: what the gpu-owner's step loop reports to the monitor for /health.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "caf/meta/type_name.hpp"

namespace adapterd::messages {

/// A cumulative histogram, as Prometheus keeps one: counts[i] observations <= bounds[i]
/// (the last count is everything above the last bound).
struct histogram {
  std::vector<double> bounds;
  std::vector<uint64_t> counts;
  double sum = 0;
  uint64_t count = 0;

  histogram() = default;
  explicit histogram(std::vector<double> b) : bounds(std::move(b)), counts(bounds.size() + 1, 0) {}
  void observe(double x) {
    size_t i = 0;
    while (i < bounds.size() && x > bounds[i])
      ++i;
    ++counts[i];
    sum += x;
    ++count;
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, histogram& x) {
  return f(caf::meta::type_name("adapterd::histogram"), x.bounds, x.counts, x.sum, x.count);
}

/// Requests of one adapter ("" for the base model alone) waiting and running.
struct adapter_load {
  std::string adapter;  // the name requests give it: its id, or its path
  uint32_t waiting = 0;
  uint32_t running = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, adapter_load& x) {
  return f(caf::meta::type_name("adapterd::adapter_load"), x.adapter, x.waiting, x.running);
}

struct batch_state {
  uint32_t waiting = 0;         // requests queued, not yet admitted
  uint32_t running = 0;         // sequences in the batch
  uint32_t max_batch_size = 0;  // the configured bound
  uint32_t max_queue = 0;       // the configured bound on waiting
  uint32_t last_batch_size = 0; // sequences in the latest step
  uint64_t steps = 0;           // decode steps run
  uint64_t step_rows = 0;       // sum of the steps' batch sizes (mean = step_rows / steps)
  int64_t kv_pool_tokens = 0;
  int64_t kv_pool_used = 0;
  int64_t kv_blocks_total = 0;   // the pool in blocks of 16 tokens
  int64_t kv_blocks_used = 0;    // held by running sequences
  int64_t kv_blocks_cached = 0;  // held by the prefix cache alone, taken back when needed
  uint64_t prefix_lookups = 0;   // admitted prompts long enough to share a block
  uint64_t prefix_hits = 0;      // those that found one
  uint64_t cached_tokens = 0;    // prompt tokens not prefilled: their KV was cached
  uint64_t rejected = 0;        // 429s
  uint64_t cancelled = 0;       // clients that went away
  uint64_t timed_out = 0;       // requests past their timeout_s
  uint64_t preempted = 0;       // times a sequence gave its KV blocks back for others to grow
  uint64_t fair_pauses = 0;     // times a sequence gave its place to a flow that had none
  uint64_t prompt_tokens = 0;    // prompt tokens prefilled
  uint64_t generated_tokens = 0; // tokens decoded
  double prefill_seconds = 0;    // time in steps' prompt slices (chunked prefill)
  double decode_seconds = 0;     // time in steps' decode of the running rows
  std::vector<adapter_load> adapters;  // by name; only those with requests waiting or running
  histogram batch_sizes{{1, 2, 4, 8, 16, 32, 64, 128, 256}};                       // rows per decode step
  histogram ttft_s{{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}};  // arrival to first token
  histogram itl_s{{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}};  // between tokens
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, batch_state& x) {
  return f(caf::meta::type_name("adapterd::batch_state"), x.waiting, x.running, x.max_batch_size,
           x.max_queue, x.last_batch_size, x.steps, x.step_rows, x.kv_pool_tokens, x.kv_pool_used,
           x.kv_blocks_total, x.kv_blocks_used, x.kv_blocks_cached, x.prefix_lookups, x.prefix_hits,
           x.cached_tokens, x.rejected, x.cancelled, x.timed_out, x.preempted, x.fair_pauses,
           x.prompt_tokens, x.generated_tokens, x.prefill_seconds, x.decode_seconds, x.adapters,
           x.batch_sizes, x.ttft_s, x.itl_s);
}

}  // namespace adapterd::messages
