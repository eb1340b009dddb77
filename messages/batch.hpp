#pragma once
// The batch family: what the gpu-owner's step loop reports to the monitor for /health.
#include <cstdint>

#include "caf/meta/type_name.hpp"

namespace adapterd::messages {

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
  uint64_t rejected = 0;        // 429s
  uint64_t cancelled = 0;       // clients that went away
  uint64_t timed_out = 0;       // requests past their timeout_s
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, batch_state& x) {
  return f(caf::meta::type_name("adapterd::batch_state"), x.waiting, x.running, x.max_batch_size,
           x.max_queue, x.last_batch_size, x.steps, x.step_rows, x.kv_pool_tokens, x.kv_pool_used,
           x.rejected, x.cancelled, x.timed_out);
}

}  // namespace adapterd::messages
