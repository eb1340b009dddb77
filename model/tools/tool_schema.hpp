#pragma once
// The JSON Schema a forced tool call must follow (tool_choice "required" or a named
// function), for the constrained decoding of structured outputs. As vLLM does, the output is
// then the calls alone, in JSON: the grammar cannot reach into a family's own wrapping.
#include <string>
#include <vector>

#include "model/result.hpp"
#include "model/tools/tool_syntax.hpp"

namespace adapterd::model {

/// The function names of an OpenAI tools list (JSON text, already checked by the caller).
std::vector<std::string> tool_names(const std::string& tools_json);

/// `name` empty ("required"): a list of at least one call of any tool (at most one when not
/// `parallel`); else one call object of that function. A call is {"name": const,
/// "<arguments_key>": the function's parameters schema}. errc::invalid_argument when `name`
/// is not among the tools.
result<std::string> forced_call_schema(const std::string& tools_json, const std::string& name,
                                       bool parallel, tool_syntax syntax);

}  // namespace adapterd::model
