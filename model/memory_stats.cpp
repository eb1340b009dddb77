#include "model/memory_stats.hpp"

#include <malloc.h>
#include <unistd.h>

#include <fstream>

namespace adapterd::model {

namespace {

uint64_t read_rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

}  // namespace

memory_figures read_memory_figures() {
  memory_figures f;
  f.rss_bytes = read_rss_bytes();
  f.gpu_available = gpu_present();
  if (f.gpu_available)
    gpu_read(f.gpu_allocated_mb, f.gpu_reserved_mb);
  return f;
}

uint64_t cached_free_bytes() {
  auto info = mallinfo2();
  return static_cast<uint64_t>(info.fordblks) + (gpu_present() ? gpu_cached_free_bytes() : 0);
}

memory_figures flush_allocator_caches(uint64_t slack_bytes) {
  bool gpu = gpu_present();
  if (gpu && gpu_cached_free_bytes() >= slack_bytes)
    gpu_empty_cache();
  if (slack_bytes == 0 || mallinfo2().fordblks >= slack_bytes)
    malloc_trim(0);
  return read_memory_figures();
}

}  // namespace adapterd::model
