#pragma once
// supervisor: owns the model/adapter cache lifecycle within the memory budget. A base
// model is loaded once and kept; adapters are cached per model by resolved path. Before
// loading it estimates the bytes (weights, adapter, KV reserve for one sequence) and, when
// the budget is short, evicts: least recently used adapters first (on a GPU to the host
// tier, from where they come back without disk reads), then idle base models. What cannot
// fit is answered with insufficient_memory, never loaded into an OOM. Loading blocks, so
// it is spawned detached.
#include "caf/typed_event_based_actor.hpp"

#include "actors/model_lease.hpp"
#include "actors/service_config.hpp"
#include "actors/tokenizer_pool_actor.hpp"
#include "messages/interfaces.hpp"

namespace adapterd::actors {

/// Spawned detached: loading blocks its thread.
/// /tokenize and /detokenize are resolved here and encoded by `tokenizers`.
supervisor_actor spawn_supervisor(caf::actor_system& sys, service_config config,
                                  messages::monitor_actor monitor, tokenizer_pool_actor tokenizers);

}  // namespace adapterd::actors
