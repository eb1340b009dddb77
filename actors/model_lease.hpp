#pragma once
// The supervisor's interface: leases of resident weights (actors/core/model_lease.hpp),
// eviction, tokenizers and adapters.
#include <memory>
#include <string>

#include "caf/allowed_unsafe_message_type.hpp"
#include "caf/replies_to.hpp"
#include "caf/typed_actor.hpp"

#include "actors/core/model_lease.hpp"
#include "messages/type_ids.hpp"

namespace adapterd::actors {

/// Owns the model and adapter cache; loads on first use, keeps, evicts to stay in budget.
/// evict: cleanup_level adapters or all; idle: unload models unused for that many seconds.
using supervisor_actor = caf::typed_actor<
    caf::replies_to<messages::acquire_atom, acquire_request>::with<model_lease>,
    caf::replies_to<messages::evict_atom, messages::cleanup_level>::with<messages::freed_report>,
    caf::replies_to<messages::idle_atom, uint32_t>::with<messages::freed_report>,
    caf::replies_to<messages::tokenize_atom,
                    messages::tokenize_request>::with<messages::tokenize_reply>,
    caf::replies_to<messages::detokenize_atom,
                    messages::detokenize_request>::with<messages::detokenize_reply>,
    caf::replies_to<messages::adapters_atom,
                    messages::adapter_request>::with<messages::adapter_reply>>;

}  // namespace adapterd::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(adapterd::actors::acquire_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(adapterd::actors::model_lease)
