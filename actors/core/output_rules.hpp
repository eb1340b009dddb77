#pragma once
// What a request demands of its output beyond sampling: JSON that follows a schema
// (response_format) and tool calls (tools, tool_choice), turned into the model layer's
// constraint and tool-call parser at admission.
#include <memory>
#include <optional>

#include "messages/generation.hpp"
#include "model/base_model.hpp"
#include "model/result.hpp"
#include "model/tools/tool_call_parser.hpp"

namespace adapterd::actors {

struct output_rules {
  std::shared_ptr<model::json_constraint> constraint;  // null: free text
  std::optional<model::tool_call_parser> tools;        // empty: no calls are taken out
};

/// errc::invalid_argument for a schema (or a tool's parameters) the grammar refuses.
model::result<output_rules> output_rules_for(const model::base_model& model,
                                             const messages::generate_request& req);

}  // namespace adapterd::actors
