#pragma once
// http actor: the Beast server (http::server, on its own io threads) turns each HTTP call
// into a message to this actor through make_actor_backend(). Calls arrive in its mailbox
// in arrival order; it stamps them, forwards generation (and cancellation) to the
// gpu-owner (or router), cleanup to the janitor and health to the monitor, passes streamed text on,
// and hands every answer (or a timeout/unavailable error) back to the waiting connection.
#include <functional>

#include "caf/allowed_unsafe_message_type.hpp"
#include "caf/typed_event_based_actor.hpp"

#include "actors/service_config.hpp"
#include "http/api.hpp"
#include "messages/interfaces.hpp"

namespace adapterd::actors {

using generate_done = std::function<void(http::outcome<messages::generate_reply>)>;
using chunk_fn = std::function<void(messages::stream_chunk)>;
using health_done = std::function<void(http::outcome<messages::health_report>)>;

using http_actor = caf::typed_actor<
    caf::reacts_to<messages::generate_atom, messages::generate_request, chunk_fn, generate_done>,
    caf::reacts_to<messages::chunk_atom, messages::stream_chunk>,
    caf::reacts_to<messages::cancel_atom, std::string>,
    caf::reacts_to<messages::health_atom, health_done>, caf::reacts_to<http::api_call>>;

/// Where calls go: a standalone node's gpu-owner, janitor and monitor, or a router.
struct http_targets {
  messages::generation_service generation;
  messages::cleanup_service cleanup;
  messages::health_service health;
  messages::catalog_service catalog;
  messages::training_service training;
  messages::console_service console;
};

http_actor spawn_http_actor(caf::actor_system& sys, http_targets targets);

/// The http::backend that posts calls into an http actor (callable from any io thread).
std::unique_ptr<http::backend> make_actor_backend(http_actor actor);

}  // namespace adapterd::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(adapterd::actors::generate_done)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(adapterd::actors::chunk_fn)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(adapterd::actors::health_done)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(adapterd::http::api_call)
