#pragma once
// janitor: cleanup after every request as the policy says (flush: return cached allocator
// memory, weights stay; unload: the seed's reload-every-request mode; off), on demand
// (/cleanup-memory at level flush | adapters | all, answering what it freed), and, when
// idle_unload_after_s is set, unloading base models nobody used for that long (like
// Ollama's keep_alive). Flushing can take a while, so it is spawned detached.
#include "caf/typed_event_based_actor.hpp"

#include "actors/model_lease.hpp"
#include "actors/service_config.hpp"
#include "messages/interfaces.hpp"

namespace adapterd::actors {

/// Spawned detached: a flush may take a while.
messages::janitor_actor spawn_janitor(caf::actor_system& sys, const service_config& config,
                                      supervisor_actor supervisor, messages::monitor_actor monitor);

}  // namespace adapterd::actors
