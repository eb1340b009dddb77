#pragma once
// gpu-owner: the only code that runs the model on the device. Spawn it detached: it
// blocks while generating, and its mailbox is the queue, so requests run one at a time in
// arrival order. For each request it acquires a lease from the supervisor, generates,
// answers, then waits for the janitor's post-request cleanup — on failure too — before
// it takes the next request. Model errors are answered as errors; it keeps running.
#include "caf/typed_event_based_actor.hpp"

#include "actors/model_lease.hpp"
#include "messages/interfaces.hpp"

namespace adapterd::actors {

/// Spawned detached: it owns the device and blocks while generating.
messages::gpu_owner_actor spawn_gpu_owner(caf::actor_system& sys, supervisor_actor supervisor,
                                          messages::janitor_actor janitor,
                                          messages::monitor_actor monitor);

}  // namespace adapterd::actors
