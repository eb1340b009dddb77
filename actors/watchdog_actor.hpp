#pragma once
// watchdog: monitors the core actors of a node (gpu-owner, supervisor, janitor, monitor,
// tokenizer pool). One that goes down for any reason but an orderly shutdown means the
// node can no longer serve what /health would promise: `on_down` is called once, and the
// process exits non-zero so that its service manager restarts it whole.
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "caf/actor.hpp"
#include "caf/actor_system.hpp"

namespace adapterd::actors {

struct watched_actor {
  std::string name;
  caf::actor handle;
};

using core_down_fn = std::function<void(const std::string& name, const std::string& reason)>;

caf::actor spawn_watchdog(caf::actor_system& sys, std::vector<watched_actor> watched, core_down_fn on_down);

}  // namespace adapterd::actors
