#include "actors/monitor_actor.hpp"

#include <chrono>

#include "actors/core/console_history.hpp"
#include "actors/core/timestamp.hpp"
#include "actors/error_mapping.hpp"
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
  messages::job_list jobs;  // as the gpu-owner last reported them
  console_history history;
};

namespace {

uint32_t queued_or_running(const messages::job_list& jobs) {
  uint32_t n = 0;
  for (const auto& j : jobs.jobs)
    n += j.state == "queued" || j.state == "running" ? 1 : 0;
  return n;
}

// The console's period: a sample a second, as its charts show them.
constexpr auto sample_period = std::chrono::seconds(1);

messages::monitor_actor::behavior_type monitor_behavior(
  messages::monitor_actor::stateful_pointer<monitor_state> self, cleanup_policy policy,
  node_role role) {
  self->state.policy = policy;
  self->state.role = role;
  self->delayed_send(self, sample_period, caf::tick_atom_v);
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
      [=](messages::report_atom, const messages::flush_event& e) {
        ++self->state.flushes;
        self->state.history.flush(unix_ms(), e);
      },
      [=](messages::report_atom, const messages::batch_state& b) { self->state.batch = b; },
      [=](messages::report_atom, const messages::job_list& jobs) {
        self->state.history.jobs(jobs);
        self->state.jobs = jobs;
      },
      [=](caf::tick_atom) {
        // One pending tick at a time, sent first: a sample that failed still leaves the next.
        self->delayed_send(self, sample_period, caf::tick_atom_v);
        auto mem = model::read_memory_figures();
        self->state.history.sample(
            {unix_ms(), mem.rss_bytes, mem.gpu_allocated_mb, mem.gpu_reserved_mb},
            self->state.batch);
      },
      [=](messages::console_atom,
          const messages::console_request& req) -> caf::result<messages::console_feed> {
        const auto& st = self->state;
        if (!req.node.empty())
          return make_failure(messages::errc::bad_request,
                              std::string("node= picks one of a router's workers; this node is ")
                                  + to_string(st.role));
        auto f = st.history.feed(req.since);
        f.role = to_string(st.role);
        f.period_ms = static_cast<uint32_t>(std::chrono::milliseconds(sample_period).count());
        f.model = st.model;
        f.adapters = st.batch.adapters;
        f.jobs = st.jobs.jobs;
        return f;
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
        r.training_jobs = queued_or_running(st.jobs);
        r.active_jobs =
            r.running + r.training_jobs;  // the seed's count: generations, now also training
        r.batch = st.batch;
        r.gpu_available = mem.gpu_available;
        r.gpu_allocated_mb = mem.gpu_allocated_mb;
        r.gpu_reserved_mb = mem.gpu_reserved_mb;
        r.rss_bytes = mem.rss_bytes;
        r.uptime_s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - st.started).count();
        r.model = st.model;
        r.requests_served = st.served;
        r.requests_failed = st.failed;
        r.flushes = st.flushes;
        r.oom_recoveries = st.oom_recoveries;
        r.oom_failures = st.oom_failures;
        r.kv_cache_bytes_last = st.kv_cache_bytes_last;
        r.cleanup_policy = to_string(st.policy);
        return r;
      });
}

}  // namespace

messages::monitor_actor spawn_monitor(caf::actor_system& sys, cleanup_policy policy, node_role role) {
  return sys.spawn(monitor_behavior, policy, role);
}

}  // namespace adapterd::actors
