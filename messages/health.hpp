#pragma once
// The health family: the events the other actors report to the monitor, and the
// report /health renders.
#include <cstdint>
#include <string>
#include <vector>

#include "caf/meta/type_name.hpp"

#include "messages/batch.hpp"
#include "messages/cluster.hpp"
#include "messages/memory.hpp"
#include "messages/training.hpp"

namespace adapterd::messages {

/// A request's progress through the service, reported to the monitor.
struct request_event {
  enum kind_type : uint8_t { queued = 1, started, finished, failed, oom_recovered, oom_failed };
  uint8_t kind = queued;
  std::string request_id;
  uint64_t kv_cache_bytes = 0;  // finished: the KV cache the request used
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, request_event& x) {
  return f(caf::meta::type_name("adapterd::request_event"), x.kind, x.request_id, x.kv_cache_bytes);
}

/// One set of weights the supervisor holds.
struct resident_item {
  std::string kind;  // "model" | "adapter"
  std::string path;
  std::string device;
  std::string tier;  // "device" | "host"
  uint64_t bytes = 0;
  std::string weights;       // a model's weight format ("f32", "bf16", "int8", "q4"); adapters: ""
  uint64_t requests = 0;     // leases taken since it was loaded
  int64_t last_used_ms = 0;  // wall clock of the latest, Unix milliseconds
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, resident_item& x) {
  return f(caf::meta::type_name("adapterd::resident_item"), x.kind, x.path, x.device, x.tier,
           x.bytes, x.weights, x.requests, x.last_used_ms);
}

/// What the supervisor holds, reported whenever it changes.
struct model_state {
  bool loaded = false;  // the default (or last used) model
  std::string path;
  std::string device;
  std::string dtype;
  std::string weights;   // the weight format the CPU kernels hold (--weights)
  std::string kv_dtype;  // the KV cache's type (--kv-dtype)
  uint64_t weight_bytes = 0;
  uint32_t adapters_cached = 0;
  uint64_t adapter_bytes = 0;
  uint64_t model_loads = 0;
  uint64_t adapter_loads = 0;
  uint64_t evictions = 0;     // adapters moved to host or dropped, models dropped
  uint64_t host_reloads = 0;  // adapters brought back from host memory, not disk
  uint64_t kv_reserve_bytes = 0;
  uint64_t device_budget_bytes = 0;  // 0: unlimited
  std::vector<resident_item> resident;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, model_state& x) {
  return f(caf::meta::type_name("adapterd::model_state"), x.loaded, x.path, x.device, x.dtype,
           x.weights, x.kv_dtype, x.weight_bytes, x.adapters_cached, x.adapter_bytes, x.model_loads,
           x.adapter_loads, x.evictions, x.host_reloads, x.kv_reserve_bytes, x.device_budget_bytes,
           x.resident);
}

/// A flush the janitor ran.
struct flush_event {
  cleanup_reason reason = cleanup_reason::after_request;
  uint64_t rss_after_bytes = 0;
  cleanup_level level = cleanup_level::flush;  // what a manual cleanup also gave up
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, flush_event& x) {
  return f(caf::meta::type_name("adapterd::flush_event"), x.reason, x.rss_after_bytes, x.level);
}

struct health_report {
  std::string status = "healthy";
  std::string timestamp;  // ISO 8601, local time, as the seed printed it
  uint32_t active_jobs = 0;
  bool gpu_available = false;
  double gpu_allocated_mb = 0;
  double gpu_reserved_mb = 0;
  uint32_t queue_depth = 0;
  uint32_t running = 0;
  uint64_t rss_bytes = 0;
  double uptime_s = 0;
  model_state model;
  uint64_t requests_served = 0;
  uint64_t requests_failed = 0;
  uint64_t flushes = 0;
  uint64_t oom_recoveries = 0;
  uint64_t oom_failures = 0;
  uint64_t kv_cache_bytes_last = 0;
  std::string cleanup_policy;
  batch_state batch;
  std::string role = "standalone";  // standalone | worker | router
  std::vector<node_status> nodes;   // a router's workers
  uint32_t training_jobs = 0;       // queued or running (also counted in active_jobs)
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, health_report& x) {
  return f(caf::meta::type_name("adapterd::health_report"), x.status, x.timestamp, x.active_jobs,
           x.gpu_available, x.gpu_allocated_mb, x.gpu_reserved_mb, x.queue_depth, x.running,
           x.rss_bytes, x.uptime_s, x.model, x.requests_served, x.requests_failed, x.flushes,
           x.oom_recoveries, x.oom_failures, x.kv_cache_bytes_last, x.cleanup_policy, x.batch, x.role, x.nodes, x.training_jobs);
}

}  // namespace adapterd::messages
