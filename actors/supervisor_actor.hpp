#pragma once
// supervisor: owns the model/adapter cache lifecycle. The base model is loaded once and
// kept; asking for another base model replaces it (adapters of the old one go with it);
// adapters are cached by resolved path. Loading blocks, so spawn it detached. Load
// failures are answered as errors; the cache stays as it was.
#include "caf/typed_event_based_actor.hpp"

#include "actors/model_lease.hpp"
#include "actors/service_config.hpp"
#include "messages/interfaces.hpp"

namespace adapterd::actors {

/// Spawned detached: loading blocks its thread.
supervisor_actor spawn_supervisor(caf::actor_system& sys, service_config config,
                                  messages::monitor_actor monitor);

}  // namespace adapterd::actors
