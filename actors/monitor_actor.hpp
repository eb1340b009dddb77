#pragma once
// monitor: answers /health from the figures the other actors report (request progress,
// the supervisor's cache, the janitor's flushes) plus memory read at the time of asking.
// It never asks a busy actor, so health answers while a generation runs.
#include "caf/typed_event_based_actor.hpp"

#include "actors/service_config.hpp"
#include "messages/interfaces.hpp"

namespace adapterd::actors {

messages::monitor_actor spawn_monitor(caf::actor_system& sys, cleanup_policy policy,
                                      node_role role = node_role::standalone);

}  // namespace adapterd::actors
