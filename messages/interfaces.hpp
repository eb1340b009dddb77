#pragma once
// The typed interfaces between adapterd's actors: the protocol. Changing a signature
// changes what remote nodes accept.
#include "caf/replies_to.hpp"
#include "caf/typed_actor.hpp"

#include "messages/calls.hpp"
#include "messages/type_ids.hpp"

namespace adapterd::messages {

/// Whoever asked for a streamed generation: the http actor, or a router.
using chunk_sink = caf::typed_actor<caf::reacts_to<chunk_atom, stream_chunk>>;

/// The single owner of the device; its mailbox is the request queue. It batches: a self-sent
/// step message runs one decode step for every admitted sequence. A streaming request's
/// text goes to its requester as (chunk_atom, stream_chunk) before the reply; cancel ends
/// a request (by id) whose client went away.
using gpu_owner_actor
  = caf::typed_actor<caf::replies_to<generate_atom, generate_request>::with<generate_reply>,
                     caf::reacts_to<cancel_atom, std::string>,
                     caf::reacts_to<step_atom>,
                     caf::replies_to<train_atom, train_request>::with<job_status>,
                     caf::replies_to<jobs_atom, job_request>::with<job_list>,
                     caf::reacts_to<train_step_atom>>;  // internal: one optimizer step of a job

/// Post-request and on-demand cleanup; tick is its internal idle-unload timer.
using janitor_actor
  = caf::typed_actor<caf::replies_to<cleanup_atom, cleanup_request>::with<cleanup_reply>,
                     caf::reacts_to<caf::tick_atom>>;

/// Collects figures from the others, answers health queries, and keeps the console's
/// history (a sample a second).
using monitor_actor = caf::typed_actor<
    caf::reacts_to<report_atom, request_event>, caf::reacts_to<report_atom, model_state>,
    caf::reacts_to<report_atom, flush_event>, caf::reacts_to<report_atom, batch_state>,
    caf::reacts_to<report_atom, job_list>, caf::replies_to<health_atom>::with<health_report>,
    caf::replies_to<console_atom, console_request>::with<console_feed>,
    caf::reacts_to<caf::tick_atom>>;  // internal: take a sample

/// What the http actor needs: a gpu-owner in a standalone node, the router in a router.
using generation_service
  = caf::typed_actor<caf::replies_to<generate_atom, generate_request>::with<generate_reply>,
                     caf::reacts_to<cancel_atom, std::string>>;
using cleanup_service
  = caf::typed_actor<caf::replies_to<cleanup_atom, cleanup_request>::with<cleanup_reply>>;
using health_service = caf::typed_actor<caf::replies_to<health_atom>::with<health_report>>;
/// Training jobs: a node's gpu-owner (they share its device), or the router.
using training_service
  = caf::typed_actor<caf::replies_to<train_atom, train_request>::with<job_status>,
                     caf::replies_to<jobs_atom, job_request>::with<job_list>>;

/// The web console's feed: a node's monitor.
using console_service =
    caf::typed_actor<caf::replies_to<console_atom, console_request>::with<console_feed>>;

/// Tokenizers and adapters: a node's supervisor, or the router.
using catalog_service
  = caf::typed_actor<caf::replies_to<tokenize_atom, tokenize_request>::with<tokenize_reply>,
                     caf::replies_to<detokenize_atom, detokenize_request>::with<detokenize_reply>,
                     caf::replies_to<adapters_atom, adapter_request>::with<adapter_reply>>;

/// A worker node as published on its node port. hello and auth are the handshake (see
/// messages/cluster.hpp); every other message is refused unless its sender's node passed
/// it. generation, cleanup, health and catalog messages go to the worker's own actors.
using worker_actor =
    caf::typed_actor<caf::replies_to<hello_atom, std::string>::with<node_hello>,
                     caf::replies_to<auth_atom, std::string>::with<node_info>,
                     caf::reacts_to<join_atom>>  // internal: (re)join the configured routers
    ::extend_with<generation_service, cleanup_service, health_service, catalog_service,
                  training_service, console_service>;

/// The router: the http actor's generation, cleanup, health and catalog service, spread
/// over workers. Workers' streamed text arrives as chunk messages; join is how a worker
/// asks to be dialled; dial and poll are internal (reconnects with backoff, status polling).
using router_actor =
    caf::typed_actor<caf::reacts_to<chunk_atom, stream_chunk>,
                     caf::replies_to<join_atom, join_request>::with<std::string>,
                     caf::reacts_to<dial_atom, std::string>, caf::reacts_to<poll_atom>>::
        extend_with<generation_service, cleanup_service, health_service, catalog_service,
                    training_service, console_service>;

/// The atom each envelope call travels with (see messages/calls.hpp).
template <class Request>
struct call_atom;

template <class Atom>
struct atom_is {
  using type = Atom;
};

// clang-format off
template <> struct call_atom<cleanup_request> : atom_is<cleanup_atom> {};
template <> struct call_atom<tokenize_request> : atom_is<tokenize_atom> {};
template <> struct call_atom<detokenize_request> : atom_is<detokenize_atom> {};
template <> struct call_atom<adapter_request> : atom_is<adapters_atom> {};
template <> struct call_atom<train_request> : atom_is<train_atom> {};
template <> struct call_atom<job_request> : atom_is<jobs_atom> {};
template <> struct call_atom<console_request> : atom_is<console_atom> {};
// clang-format on

}  // namespace adapterd::messages
