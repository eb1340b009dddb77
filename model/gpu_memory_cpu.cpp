// The CPU-only build: there is no device allocator to ask or flush.
#include "model/memory_stats.hpp"

namespace adapterd::model {

bool gpu_present() { return false; }
void gpu_read(double& allocated_mb, double& reserved_mb) { allocated_mb = reserved_mb = 0; }
void gpu_empty_cache() {}
uint64_t gpu_cached_free_bytes() { return 0; }

}  // namespace adapterd::model
