#pragma once
// The one type-id block of adapterd: every message type and atom, registered under the
// same names on every node so that actors can talk across machines.
#include "caf/error.hpp"
#include "caf/message.hpp"
#include "caf/type_id.hpp"

#include "messages/batch.hpp"
#include "messages/catalog.hpp"
#include "messages/cluster.hpp"
#include "messages/console.hpp"
#include "messages/errors.hpp"
#include "messages/generation.hpp"
#include "messages/health.hpp"
#include "messages/memory.hpp"
#include "messages/names.hpp"
#include "messages/training.hpp"

CAF_ERROR_CODE_ENUM(adapterd::messages::errc, "adapterd")

CAF_BEGIN_TYPE_ID_BLOCK(adapterd, caf::first_custom_type_id)
  CAF_ADD_TYPE_ID(adapterd, (adapterd::messages::generate_request))
  CAF_ADD_TYPE_ID(adapterd, (adapterd::messages::generate_reply))
  CAF_ADD_TYPE_ID(adapterd, (adapterd::messages::cleanup_request))
  CAF_ADD_TYPE_ID(adapterd, (adapterd::messages::cleanup_reply))
  CAF_ADD_TYPE_ID(adapterd, (adapterd::messages::request_event))
  CAF_ADD_TYPE_ID(adapterd, (adapterd::messages::model_state))
  CAF_ADD_TYPE_ID(adapterd, (adapterd::messages::flush_event))
  CAF_ADD_TYPE_ID(adapterd, (adapterd::messages::health_report))
  CAF_ADD_TYPE_ID(adapterd, (adapterd::messages::freed_report))
  CAF_ADD_TYPE_ID(adapterd, (adapterd::messages::resident_item))
  CAF_ADD_TYPE_ID(adapterd, (adapterd::messages::stream_chunk))
  CAF_ADD_TYPE_ID(adapterd, (adapterd::messages::batch_state))
  CAF_ADD_TYPE_ID(adapterd, (adapterd::messages::node_hello))
  CAF_ADD_TYPE_ID(adapterd, (adapterd::messages::node_info))
  CAF_ADD_TYPE_ID(adapterd, (adapterd::messages::join_request))
  CAF_ADD_TYPE_ID(adapterd, (adapterd::messages::node_status))
  CAF_ADD_TYPE_ID(adapterd, (adapterd::messages::chat_turn))
  CAF_ADD_TYPE_ID(adapterd, (adapterd::messages::histogram))
  CAF_ADD_TYPE_ID(adapterd, (adapterd::messages::tokenize_request))
  CAF_ADD_TYPE_ID(adapterd, (adapterd::messages::tokenize_reply))
  CAF_ADD_TYPE_ID(adapterd, (adapterd::messages::detokenize_request))
  CAF_ADD_TYPE_ID(adapterd, (adapterd::messages::detokenize_reply))
  CAF_ADD_TYPE_ID(adapterd, (adapterd::messages::adapter_info))
  CAF_ADD_TYPE_ID(adapterd, (adapterd::messages::adapter_request))
  CAF_ADD_TYPE_ID(adapterd, (adapterd::messages::adapter_reply))
  CAF_ADD_TYPE_ID(adapterd, (adapterd::messages::train_request))
  CAF_ADD_TYPE_ID(adapterd, (adapterd::messages::job_status))
  CAF_ADD_TYPE_ID(adapterd, (adapterd::messages::job_request))
  CAF_ADD_TYPE_ID(adapterd, (adapterd::messages::job_list))
  CAF_ADD_TYPE_ID(adapterd, (adapterd::messages::adapter_load))
  CAF_ADD_TYPE_ID(adapterd, (adapterd::messages::top_logprob))
  CAF_ADD_TYPE_ID(adapterd, (adapterd::messages::token_logprob))
  CAF_ADD_TYPE_ID(adapterd, (adapterd::messages::tool_call))
  CAF_ADD_TYPE_ID(adapterd, (adapterd::messages::console_sample))
  CAF_ADD_TYPE_ID(adapterd, (adapterd::messages::console_event))
  CAF_ADD_TYPE_ID(adapterd, (adapterd::messages::console_request))
  CAF_ADD_TYPE_ID(adapterd, (adapterd::messages::console_feed))
  CAF_ADD_TYPE_ID(adapterd, (adapterd::messages::loss_curve))
  CAF_ADD_ATOM(adapterd, adapterd::messages, generate_atom, "generate")
  CAF_ADD_ATOM(adapterd, adapterd::messages, cleanup_atom, "cleanup")
  CAF_ADD_ATOM(adapterd, adapterd::messages, health_atom, "health")
  CAF_ADD_ATOM(adapterd, adapterd::messages, report_atom, "report")
  CAF_ADD_ATOM(adapterd, adapterd::messages, acquire_atom, "acquire")
  CAF_ADD_ATOM(adapterd, adapterd::messages, evict_atom, "evict")
  CAF_ADD_ATOM(adapterd, adapterd::messages, idle_atom, "idlecheck")
  CAF_ADD_ATOM(adapterd, adapterd::messages, chunk_atom, "chunk")
  CAF_ADD_ATOM(adapterd, adapterd::messages, cancel_atom, "cancel")
  CAF_ADD_ATOM(adapterd, adapterd::messages, step_atom, "step")
  CAF_ADD_ATOM(adapterd, adapterd::messages, hello_atom, "nodehello")
  CAF_ADD_ATOM(adapterd, adapterd::messages, auth_atom, "nodeauth")
  CAF_ADD_ATOM(adapterd, adapterd::messages, join_atom, "nodejoin")
  CAF_ADD_ATOM(adapterd, adapterd::messages, dial_atom, "nodedial")
  CAF_ADD_ATOM(adapterd, adapterd::messages, poll_atom, "nodepoll")
  CAF_ADD_ATOM(adapterd, adapterd::messages, tokenize_atom, "tokenize")
  CAF_ADD_ATOM(adapterd, adapterd::messages, detokenize_atom, "detokenize")
  CAF_ADD_ATOM(adapterd, adapterd::messages, adapters_atom, "adapters")
  CAF_ADD_ATOM(adapterd, adapterd::messages, train_atom, "train")
  CAF_ADD_ATOM(adapterd, adapterd::messages, jobs_atom, "jobs")
  CAF_ADD_ATOM(adapterd, adapterd::messages, train_step_atom, "trainstep")
  CAF_ADD_ATOM(adapterd, adapterd::messages, encode_atom, "encode")
  CAF_ADD_ATOM(adapterd, adapterd::messages, console_atom, "console")
  CAF_END_TYPE_ID_BLOCK(adapterd)
