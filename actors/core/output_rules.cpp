#include "actors/core/output_rules.hpp"

#include "model/tools/tool_schema.hpp"
#include "model/tools/tool_syntax.hpp"

namespace adapterd::actors {

using messages::tool_choice;

model::result<output_rules> output_rules_for(const model::base_model& model,
                                             const messages::generate_request& req) {
  output_rules rules;
  std::string schema;  // "" with a constraint: any JSON object
  bool constrained = req.format != messages::output_format::text;
  if (req.format == messages::output_format::json_schema)
    schema = req.json_schema;
  if (req.tool_mode != tool_choice::none && !req.tools.empty()) {
    auto syntax = model::tool_syntax_of(model.tok().chat_template());
    bool forced = req.tool_mode == tool_choice::required || req.tool_mode == tool_choice::named;
    if (forced) {
      // The calls are the answer: their grammar replaces any response_format.
      auto call_schema = model::forced_call_schema(
          req.tools, req.tool_mode == tool_choice::named ? req.tool_name : "",
          req.parallel_tool_calls, syntax);
      if (!call_schema)
        return call_schema.err();
      schema = std::move(*call_schema);
      constrained = true;
    }
    rules.tools.emplace(syntax, model::tool_names(req.tools), forced);
  }
  if (constrained) {
    auto constraint = model.json_constraint_for(schema);
    if (!constraint) {
      auto e = constraint.err();
      if (req.tool_mode == tool_choice::required || req.tool_mode == tool_choice::named)
        e.message = "tools: " + e.message;
      return e;
    }
    rules.constraint = std::move(*constraint);
  }
  return rules;
}

}  // namespace adapterd::actors
