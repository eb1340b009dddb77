#pragma once
// Process and device memory figures, and the flush that hands cached allocator memory
// back (CUDA's caching allocator on GPU, glibc's heap via malloc_trim on CPU).
// Weights are never touched by a flush.
#include <cstdint>

namespace adapterd::model {

struct memory_figures {
  uint64_t rss_bytes = 0;
  bool gpu_available = false;
  double gpu_allocated_mb = 0;
  double gpu_reserved_mb = 0;
};

memory_figures read_memory_figures();

/// Returns cached memory to the system; returns the figures after the flush. With a
/// `slack_bytes` above 0, caches holding less than that are left alone: the flush after
/// every request then costs next to nothing while memory stays bounded by the slack.
memory_figures flush_allocator_caches(uint64_t slack_bytes = 0);

/// Bytes the allocators hold but do not use (glibc free chunks; CUDA reserved - allocated).
uint64_t cached_free_bytes();

// Implemented by gpu_memory_cuda.cpp where libtorch has CUDA, else by a CPU stub.
bool gpu_present();
void gpu_read(double& allocated_mb, double& reserved_mb);
void gpu_empty_cache();
uint64_t gpu_cached_free_bytes();

}  // namespace adapterd::model
