// CUDA builds only (CMake adds this file when the Torch package has CUDA).
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <torch/cuda.h>

#include "model/memory_stats.hpp"

namespace adapterd::model {

namespace {
namespace cca = c10::cuda::CUDACachingAllocator;
// StatType::AGGREGATE (both pools together) is index 0 in every Torch; the enum itself moved
// between namespaces in Torch 2.x, so the index is spelled out.
constexpr size_t aggregate = 0;
constexpr double mib = 1024.0 * 1024.0;
}  // namespace

bool gpu_present() { return torch::cuda::is_available(); }

void gpu_read(double& allocated_mb, double& reserved_mb) {
  allocated_mb = reserved_mb = 0;
  try {  // the allocator asserts when CUDA has not been initialised yet
    auto stats = cca::getDeviceStats(0);
    allocated_mb = static_cast<double>(stats.allocated_bytes[aggregate].current) / mib;
    reserved_mb = static_cast<double>(stats.reserved_bytes[aggregate].current) / mib;
  } catch (const c10::Error&) {
  }
}

uint64_t gpu_cached_free_bytes() {
  try {
    auto stats = cca::getDeviceStats(0);
    auto reserved = stats.reserved_bytes[aggregate].current;
    auto allocated = stats.allocated_bytes[aggregate].current;
    return reserved > allocated ? static_cast<uint64_t>(reserved - allocated) : 0;
  } catch (const c10::Error&) {
    return 0;
  }
}

void gpu_empty_cache() {
  try {
    c10::cuda::device_synchronize();
    cca::emptyCache();
  } catch (const c10::Error&) {
  }
}

}  // namespace adapterd::model
