#pragma once
// OpenAI's chat "messages" list, read into chat turns: by /v1/chat/completions and by
// /tokenize (a chat tokenized as its template renders it, as vLLM's /tokenize does).
#include <cstddef>
#include <vector>

#include "http/json_fields.hpp"
#include "messages/generation.hpp"

namespace adapterd::http {

/// The most messages one request may hold.
inline constexpr size_t max_messages = 4096;

/// f's "messages": a non-empty list of {role, content} (content a string or text parts),
/// with an assistant turn's tool_calls and a tool turn's tool_call_id.
std::vector<messages::chat_turn> read_messages(fields& f);

}  // namespace adapterd::http
