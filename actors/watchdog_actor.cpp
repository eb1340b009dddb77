#include "actors/watchdog_actor.hpp"

#include <map>

#include "caf/event_based_actor.hpp"
#include "caf/exit_reason.hpp"

#include <spdlog/spdlog.h>

namespace adapterd::actors {

namespace {

struct watchdog_state {
  static inline const char* name = "watchdog";
  watchdog_state() = default;  // non-aggregate: CAF 0.17's C++20 state trap

  std::map<caf::actor_addr, std::string> names;
  bool fired = false;
};

caf::behavior watchdog_behavior(caf::stateful_actor<watchdog_state>* self, std::vector<watched_actor> watched,
                                core_down_fn on_down) {
  for (auto& w : watched) {
    self->state.names[w.handle.address()] = w.name;
    self->monitor(w.handle);
  }
  self->set_down_handler([self, on_down](caf::down_msg& msg) {
    auto it = self->state.names.find(msg.source);
    auto name = it == self->state.names.end() ? std::string("an actor") : it->second;
    // An orderly stop sends user_shutdown to every core actor: not a failure.
    if (msg.reason == caf::exit_reason::user_shutdown || self->state.fired)
      return;
    self->state.fired = true;
    auto reason = msg.reason ? to_string(msg.reason) : std::string("it ended");
    spdlog::critical("watchdog: the {} actor is gone ({}); the node cannot serve without it", name, reason);
    on_down(name, reason);
  });
  return {[](caf::unit_t) {}};  // it only watches
}

}  // namespace

caf::actor spawn_watchdog(caf::actor_system& sys, std::vector<watched_actor> watched, core_down_fn on_down) {
  return sys.spawn(watchdog_behavior, std::move(watched), std::move(on_down));
}

}  // namespace adapterd::actors
