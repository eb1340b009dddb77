#include "actors/monitor_actor.hpp"

#include <chrono>

#include "actors/core/timestamp.hpp"
#include "actors/handler_firewall.hpp"
#include "model/memory_stats.hpp"

namespace adapterd::actors {

struct monitor_state {
  static inline const char* name = "monitor";
  monitor_state() = default;  // non-aggregate: CAF 0.17's C++20 state trap

  cleanup_policy policy = cleanup_policy::flush;
  node_role role = node_role::standalone;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  uint64_t served = 0, failed = 0, flushes = 0;
  messages::batch_state batch;
  uint64_t oom_recoveries = 0, oom_failures = 0, kv_cache_bytes_last = 0;
  messages::model_state model;
  uint32_t training_jobs = 0;
};

namespace {

messages::monitor_actor::behavior_type monitor_behavior(
  messages::monitor_actor::stateful_pointer<monitor_state> self, cleanup_policy policy,
  node_role role) {
  self->state.policy = policy;
  self->state.role = role;
  return guarded_behavior<messages::monitor_actor::behavior_type>(
    "monitor",
    [=](messages::report_atom, const messages::request_event& e) {
      auto& st = self->state;
      switch (e.kind) {
        case messages::request_event::finished:
          ++st.served;
          st.kv_cache_bytes_last = e.kv_cache_bytes;
          break;
        case messages::request_event::oom_recovered: ++st.oom_recoveries; break;
        case messages::request_event::oom_failed: ++st.oom_failures; break;
        case messages::request_event::failed: ++st.failed; break;
        default: break;
      }
    },
    [=](messages::report_atom, const messages::model_state& m) { self->state.model = m; },
    [=](messages::report_atom, const messages::flush_event&) { ++self->state.flushes; },
    [=](messages::report_atom, const messages::batch_state& b) { self->state.batch = b; },
    [=](messages::report_atom, const messages::job_list& jobs) {
      uint32_t active = 0;
      for (const auto& j : jobs.jobs)
        active += j.state == "queued" || j.state == "running" ? 1 : 0;
      self->state.training_jobs = active;
    },
    [=](messages::health_atom) {
      const auto& st = self->state;
      auto mem = model::read_memory_figures();
      messages::health_report r;
      r.status = "healthy";
      r.timestamp = local_timestamp();
      r.role = to_string(st.role);
      r.running = st.batch.running;
      r.queue_depth = st.batch.waiting;
      r.training_jobs = st.training_jobs;
      r.active_jobs = r.running + st.training_jobs;  // the seed's count: generations, now also training
      r.batch = st.batch;
      r.gpu_available = mem.gpu_available;
      r.gpu_allocated_mb = mem.gpu_allocated_mb;
      r.gpu_reserved_mb = mem.gpu_reserved_mb;
      r.rss_bytes = mem.rss_bytes;
      r.uptime_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - st.started).count();
      r.model = st.model;
      r.requests_served = st.served;
      r.requests_failed = st.failed;
      r.flushes = st.flushes;
      r.oom_recoveries = st.oom_recoveries;
      r.oom_failures = st.oom_failures;
      r.kv_cache_bytes_last = st.kv_cache_bytes_last;
      r.cleanup_policy = to_string(st.policy);
      return r;
    }
  );
}

}  // namespace

messages::monitor_actor spawn_monitor(caf::actor_system& sys, cleanup_policy policy, node_role role) {
  return sys.spawn(monitor_behavior, policy, role);
}

}  // namespace adapterd::actors
