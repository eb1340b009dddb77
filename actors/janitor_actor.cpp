#include "actors/janitor_actor.hpp"

#include <chrono>

#include <spdlog/spdlog.h>

#include "model/memory_stats.hpp"

namespace adapterd::actors {

using messages::cleanup_reply;
using messages::cleanup_request;

struct janitor_state {
  static inline const char* name = "janitor";
  janitor_state() = default;  // non-aggregate: CAF 0.17's C++20 state trap

  cleanup_policy policy = cleanup_policy::flush;
  supervisor_actor supervisor;
  messages::monitor_actor monitor;
};

namespace {

using self_ptr = messages::janitor_actor::stateful_pointer<janitor_state>;

cleanup_reply flush(self_ptr self, const cleanup_request& req, bool unloaded) {
  cleanup_reply r;
  r.rss_before_bytes = model::read_memory_figures().rss_bytes;
  auto after = model::flush_allocator_caches();
  r.status = "success";
  r.gpu_available = after.gpu_available;
  r.message = after.gpu_available ? "Memory cleaned up" : "Memory cleaned up (CPU only)";
  r.gpu_allocated_mb = after.gpu_allocated_mb;
  r.gpu_reserved_mb = after.gpu_reserved_mb;
  r.rss_after_bytes = after.rss_bytes;
  r.model_unloaded = unloaded;
  self->send(self->state.monitor, messages::report_atom_v,
             messages::flush_event{req.reason, after.rss_bytes});
  spdlog::debug("janitor {} {} flush: rss {} -> {} MiB", req.request_id, req.reason,
                r.rss_before_bytes >> 20, r.rss_after_bytes >> 20);
  return r;
}

messages::janitor_actor::behavior_type janitor_behavior(
  messages::janitor_actor::stateful_pointer<janitor_state> self, cleanup_policy policy,
  supervisor_actor supervisor, messages::monitor_actor monitor) {
  self->state.policy = policy;
  self->state.supervisor = std::move(supervisor);
  self->state.monitor = std::move(monitor);
  return {
    [=](messages::cleanup_atom, const cleanup_request& req) -> caf::result<cleanup_reply> {
      bool after_request = req.reason == "after_request";
      if (after_request && self->state.policy == cleanup_policy::off) {
        cleanup_reply r;
        r.status = "success";
        r.message = "Cleanup policy is off";
        return r;
      }
      if (!(after_request && self->state.policy == cleanup_policy::unload))
        return flush(self, req, false);
      // The seed's reload-every-request mode: drop the weights, then flush.
      auto rp = self->make_response_promise<cleanup_reply>();
      self->request(self->state.supervisor, caf::infinite, messages::unload_atom_v)
        .then([=](bool unloaded) mutable { rp.deliver(flush(self, req, unloaded)); },
              [=](const caf::error&) mutable { rp.deliver(flush(self, req, false)); });
      return rp;
    },
  };
}

}  // namespace

messages::janitor_actor spawn_janitor(caf::actor_system& sys, cleanup_policy policy,
                                      supervisor_actor supervisor, messages::monitor_actor monitor) {
  return sys.spawn<caf::detached>(janitor_behavior, policy, std::move(supervisor), std::move(monitor));
}

}  // namespace adapterd::actors
