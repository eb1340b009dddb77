#pragma once
// The typed interfaces between adapterd's actors: the protocol. Changing a signature
// changes what remote nodes accept.
#include "caf/replies_to.hpp"
#include "caf/typed_actor.hpp"

#include "messages/type_ids.hpp"

namespace adapterd::messages {

/// The single owner of the device; its mailbox is the request queue. It batches: a self-sent
/// step message runs one decode step for every admitted sequence. A streaming request's
/// text goes to its requester as (chunk_atom, stream_chunk) before the reply; cancel ends
/// a request (by id) whose client went away.
using gpu_owner_actor
  = caf::typed_actor<caf::replies_to<generate_atom, generate_request>::with<generate_reply>,
                     caf::reacts_to<cancel_atom, std::string>,
                     caf::reacts_to<step_atom>>;

/// Post-request and on-demand cleanup; tick is its internal idle-unload timer.
using janitor_actor
  = caf::typed_actor<caf::replies_to<cleanup_atom, cleanup_request>::with<cleanup_reply>,
                     caf::reacts_to<caf::tick_atom>>;

/// Collects figures from the others and answers health queries.
using monitor_actor = caf::typed_actor<caf::reacts_to<report_atom, request_event>,
                                       caf::reacts_to<report_atom, model_state>,
                                       caf::reacts_to<report_atom, flush_event>,
                                       caf::reacts_to<report_atom, batch_state>,
                                       caf::replies_to<health_atom>::with<health_report>>;

}  // namespace adapterd::messages
