#pragma once
// janitor: cleanup after every request (as the cleanup policy says: flush the allocator
// caches, unload the model too, or nothing) and on demand (/cleanup-memory: flush; the
// weights stay). Flushing can take a while, so spawn it detached.
#include "caf/typed_event_based_actor.hpp"

#include "actors/model_lease.hpp"
#include "actors/service_config.hpp"
#include "messages/interfaces.hpp"

namespace adapterd::actors {

/// Spawned detached: a flush may take a while.
messages::janitor_actor spawn_janitor(caf::actor_system& sys, cleanup_policy policy,
                                      supervisor_actor supervisor, messages::monitor_actor monitor);

}  // namespace adapterd::actors
