#pragma once
// The memory family: cleanup requests (after each request and on demand) and their answer.
#include <cstdint>
#include <string>
#include <vector>

#include "caf/meta/type_name.hpp"

namespace adapterd::messages {

/// Why a cleanup runs: after each request (the seed's flush), asked for, or a model idle
/// past --idle-unload-after.
enum class cleanup_reason : uint8_t { after_request, manual, idle_unload };
/// How much a manual cleanup gives up: the allocator cache, also idle adapters, or also models.
enum class cleanup_level : uint8_t { flush, adapters, all };

struct cleanup_request {
  std::string request_id;
  cleanup_reason reason = cleanup_reason::manual;
  cleanup_level level = cleanup_level::flush;
  std::string node;             // a router: only this worker (name or address); empty: all
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cleanup_request& x) {
  return f(caf::meta::type_name("adapterd::cleanup_request"), x.request_id, x.reason, x.level, x.node);
}

/// What an eviction gave up.
struct freed_report {
  uint32_t adapters = 0;
  uint64_t adapter_bytes = 0;
  uint32_t models = 0;
  uint64_t model_bytes = 0;
  uint32_t kv_blocks = 0;  // cached KV blocks of prompt prefixes forgotten
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, freed_report& x) {
  return f(caf::meta::type_name("adapterd::freed_report"), x.adapters, x.adapter_bytes, x.models,
           x.model_bytes, x.kv_blocks);
}

struct cleanup_reply {
  std::string status;   // "success"
  std::string message;  // the seed's wording
  bool gpu_available = false;
  double gpu_allocated_mb = 0;
  double gpu_reserved_mb = 0;
  uint64_t rss_before_bytes = 0;
  uint64_t rss_after_bytes = 0;
  bool model_unloaded = false;
  cleanup_level level = cleanup_level::flush;
  freed_report freed;
  std::string node;                 // which worker answered (through a router)
  std::string error;                // that worker's failure, when it failed
  std::vector<cleanup_reply> nodes; // a router: each worker's answer; the totals above
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cleanup_reply& x) {
  return f(caf::meta::type_name("adapterd::cleanup_reply"), x.status, x.message, x.gpu_available,
           x.gpu_allocated_mb, x.gpu_reserved_mb, x.rss_before_bytes, x.rss_after_bytes,
           x.model_unloaded, x.level, x.freed, x.node, x.error, x.nodes);
}

}  // namespace adapterd::messages
