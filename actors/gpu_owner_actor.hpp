#pragma once
// gpu-owner: the only code that runs the model on the device. Spawned detached: it blocks
// while it computes. Requests queue in arrival order (its mailbox, then the scheduler's
// queue); a self-sent step message runs one continuous-batching step (batch_scheduler):
// admit, prefill, one decode step for every running sequence. Each request's lease comes
// from the supervisor; when the batch empties, the janitor's post-request cleanup runs
// before the answers go out. With max_batch_size 1 this is the seed's one-at-a-time
// service. Model errors are answered as errors; it keeps running. LoRA training jobs share
// the device: one optimizer step per train_step message, taking at most
// training.device_share of the device time while generation has work, all of it otherwise.
#include "caf/typed_event_based_actor.hpp"

#include "actors/core/batch_scheduler.hpp"
#include "actors/core/training_jobs.hpp"
#include "actors/model_lease.hpp"
#include "actors/service_config.hpp"
#include "actors/tokenizer_pool_actor.hpp"
#include "messages/interfaces.hpp"

namespace adapterd::actors {

struct gpu_owner_config {
  supervisor_actor supervisor;
  tokenizer_pool_actor tokenizers;
  messages::janitor_actor janitor;
  messages::monitor_actor monitor;
  scheduler_limits limits;
  training_settings training;
  actor_placement placement = actor_placement::own_thread;
};

messages::gpu_owner_actor spawn_gpu_owner(caf::actor_system& sys, gpu_owner_config config);

}  // namespace adapterd::actors
