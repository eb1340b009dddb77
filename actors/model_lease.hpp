#pragma once
// What the supervisor hands the gpu-owner: shared handles to resident weights. Node-local
// by nature (pointers into this process), so never serialised.
#include <memory>
#include <string>

#include "caf/allowed_unsafe_message_type.hpp"
#include "caf/replies_to.hpp"
#include "caf/typed_actor.hpp"

#include "messages/type_ids.hpp"
#include "model/base_model.hpp"

namespace adapterd::actors {

struct acquire_request {
  std::string request_id;
  std::string base_model;    // as the client wrote it; empty: the default
  std::string adapter_path;  // as the client wrote it; empty: none
  bool prefer_cpu = false;
};

struct model_lease {
  std::shared_ptr<const model::base_model> model;
  std::shared_ptr<const model::lora_adapter> adapter;  // null: base model only
  std::string model_name;
  std::string adapter_name;
  double load_ms = 0;  // time this acquisition spent loading
  int64_t kv_reserve_tokens = 0;  // the longest sequence the budget reserved KV cache for
};

/// Owns the model and adapter cache; loads on first use, keeps, evicts to stay in budget.
/// evict: "adapters" or "all"; idle: unload models unused for that many seconds.
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
