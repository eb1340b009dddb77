#pragma once
// OpenAI's tools, tool_choice and parallel_tool_calls on /v1/chat/completions, read into a
// generation request: the tools as JSON text in the client's key order (the chat template
// renders them), what the output must call, and whether it may call several at once.
#include <string>

#include "http/json_fields.hpp"
#include "messages/generation.hpp"

namespace adapterd::http {

/// The most tools one request may offer.
inline constexpr size_t max_tools = 128;

/// OpenAI's wrapper of a function, {"type": "function", "function": {...}} (a tool, a tool
/// choice, a call): checks it and returns the inner object. `type_required`: absent type is
/// a missing field (else it defaults to "function").
const nlohmann::json& function_of(fields& wrapper, bool type_required);

/// Reads f's tool fields into gen. `body` is the request's text (for the key order).
void read_tools(fields& f, const std::string& body, messages::generate_request& gen);

}  // namespace adapterd::http
