#include "actors/janitor_actor.hpp"

#include <optional>

#include <chrono>

#include <spdlog/spdlog.h>

#include "actors/handler_firewall.hpp"
#include "messages/names.hpp"
#include "model/memory_stats.hpp"

namespace adapterd::actors {

using messages::cleanup_reply;
using messages::cleanup_request;

struct janitor_state {
  static inline const char* name = "janitor";
  janitor_state() = default;  // non-aggregate: CAF 0.17's C++20 state trap

  cleanup_policy policy = cleanup_policy::flush;
  uint32_t idle_unload_after_s = 0;
  uint64_t flush_slack_bytes = 0;
  supervisor_actor supervisor;
  messages::monitor_actor monitor;
};

namespace {

using self_ptr = messages::janitor_actor::stateful_pointer<janitor_state>;

cleanup_reply flush(self_ptr self, const cleanup_request& req, const messages::freed_report& freed) {
  cleanup_reply r;
  r.rss_before_bytes = model::read_memory_figures().rss_bytes;
  // After a request a small cache is left alone (cheap, still bounded); on demand, all goes.
  auto slack =
      req.reason == messages::cleanup_reason::after_request ? self->state.flush_slack_bytes : 0;
  auto after = model::flush_allocator_caches(slack);
  r.status = "success";
  r.gpu_available = after.gpu_available;
  r.message = after.gpu_available ? "Memory cleaned up" : "Memory cleaned up (CPU only)";
  r.gpu_allocated_mb = after.gpu_allocated_mb;
  r.gpu_reserved_mb = after.gpu_reserved_mb;
  r.rss_after_bytes = after.rss_bytes;
  r.model_unloaded = freed.models > 0;
  r.level = req.level;
  r.freed = freed;
  self->send(self->state.monitor, messages::report_atom_v,
             messages::flush_event{req.reason, after.rss_bytes, req.level});
  spdlog::debug("janitor {} {} {} flush: rss {} -> {} MiB", req.request_id,
                messages::name_of(req.reason), messages::name_of(req.level),
                r.rss_before_bytes >> 20, r.rss_after_bytes >> 20);
  return r;
}

// What a request's cleanup gives up before the flush: nothing, adapters, or everything.
std::optional<messages::cleanup_level> eviction_level(const janitor_state& st,
                                                      const cleanup_request& req) {
  if (req.reason == messages::cleanup_reason::after_request)
    return st.policy == cleanup_policy::unload ? std::optional(messages::cleanup_level::all)
                                               : std::nullopt;
  return req.level;  // even a flush: the supervisor forgets the cached prompt prefixes
}

std::chrono::seconds tick_period(uint32_t idle_s) {
  return std::chrono::seconds(std::max<uint32_t>(1, std::min<uint32_t>(idle_s / 4, 30)));
}

messages::janitor_actor::behavior_type janitor_behavior(
  messages::janitor_actor::stateful_pointer<janitor_state> self, service_config config,
  supervisor_actor supervisor, messages::monitor_actor monitor) {
  self->state.policy = config.policy;
  self->state.idle_unload_after_s = config.idle_unload_after_s;
  self->state.flush_slack_bytes = config.flush_slack_bytes;
  self->state.supervisor = std::move(supervisor);
  self->state.monitor = std::move(monitor);
  // One pending tick at a time: the timer costs the same however long the server runs.
  if (config.idle_unload_after_s > 0)
    self->delayed_send(self, tick_period(config.idle_unload_after_s), caf::tick_atom_v);
  return guarded_behavior<messages::janitor_actor::behavior_type>(
      "janitor",
      [=](messages::cleanup_atom, const cleanup_request& req) -> caf::result<cleanup_reply> {
        if (req.reason == messages::cleanup_reason::after_request
            && self->state.policy == cleanup_policy::off) {
          cleanup_reply r;
          r.status = "success";
          r.message = "Cleanup policy is off";
          return r;
        }
        auto level = eviction_level(self->state, req);
        if (!level)
          return flush(self, req, {});
        auto rp = self->make_response_promise<cleanup_reply>();
        self->request(self->state.supervisor, caf::infinite, messages::evict_atom_v, *level)
            .then(
                [=](const messages::freed_report& freed) mutable {
                  rp.deliver(flush(self, req, freed));
                },
                [=](const caf::error&) mutable { rp.deliver(flush(self, req, {})); });
        return rp;
      },
      [=](caf::tick_atom) {
        auto idle = self->state.idle_unload_after_s;
        self->request(self->state.supervisor, caf::infinite, messages::idle_atom_v, idle)
            .then(
                [=](const messages::freed_report& freed) {
                  if (freed.models > 0) {
                    spdlog::info("janitor unloaded {} idle model(s) after {} s", freed.models,
                                 idle);
                    flush(self,
                          cleanup_request{"idle", messages::cleanup_reason::idle_unload,
                                          messages::cleanup_level::all, ""},
                          freed);
                  }
                  self->delayed_send(self, tick_period(idle), caf::tick_atom_v);
                },
                [=](const caf::error&) {
                  self->delayed_send(self, tick_period(idle), caf::tick_atom_v);
                });
      });
}

}  // namespace

messages::janitor_actor spawn_janitor(caf::actor_system& sys, const service_config& config,
                                      supervisor_actor supervisor, messages::monitor_actor monitor) {
  if (config.placement == actor_placement::scheduler_pool)
    return sys.spawn(janitor_behavior, config, std::move(supervisor), std::move(monitor));
  return sys.spawn<caf::detached>(janitor_behavior, config, std::move(supervisor), std::move(monitor));
}

}  // namespace adapterd::actors
