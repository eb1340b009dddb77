#pragma once
// tokenizer pool: encodes prompts and serves /tokenize and /detokenize on threads of its
// own, so that a long input never holds up the gpu-owner's steps, the supervisor's leases,
// /health or any other client. Each request goes to the worker with the fewest in hand.
#include <memory>
#include <string>
#include <vector>

#include "caf/allowed_unsafe_message_type.hpp"
#include "caf/replies_to.hpp"
#include "caf/typed_actor.hpp"
#include "caf/typed_event_based_actor.hpp"

#include "actors/service_config.hpp"
#include "messages/catalog.hpp"
#include "messages/generation.hpp"
#include "messages/type_ids.hpp"
#include "model/base_model.hpp"

namespace adapterd::actors {

/// A generation's prompt to encode with its model's tokenizer (the model handle keeps the
/// tokenizer alive). Node-local: it holds a pointer into this process.
struct encode_job {
  std::string request_id;
  std::shared_ptr<const model::base_model> model;
  std::string prompt;
  std::vector<messages::chat_turn> chat;  // non-empty: rendered with the chat template
  std::string tools;                      // with chat: the tools offered (JSON text)
  int64_t max_tokens = 0;                 // the context: longer texts are refused unread
};

struct encoded_prompt {
  std::vector<int32_t> ids;
};

/// A tokenizer the supervisor resolved for /tokenize or /detokenize.
struct tokenizer_ref {
  std::string name;
  std::shared_ptr<const model::tokenizer> tok;
};

using tokenizer_pool_actor = caf::typed_actor<
  caf::replies_to<messages::encode_atom, encode_job>::with<encoded_prompt>,
  caf::replies_to<messages::tokenize_atom, tokenizer_ref, messages::tokenize_request>::with<messages::tokenize_reply>,
  caf::replies_to<messages::detokenize_atom, tokenizer_ref, messages::detokenize_request>::with<
    messages::detokenize_reply>>;

/// `threads` detached workers behind one front.
tokenizer_pool_actor spawn_tokenizer_pool(caf::actor_system& sys, unsigned threads,
                                          actor_placement placement = actor_placement::own_thread);

}  // namespace adapterd::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(adapterd::actors::encode_job)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(adapterd::actors::encoded_prompt)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(adapterd::actors::tokenizer_ref)
