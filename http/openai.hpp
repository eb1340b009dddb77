#pragma once
// The OpenAI-compatible API: /v1/completions, /v1/chat/completions and /v1/models, in
// and out of the service's own messages. The "model" field passes through as the
// request's base_model; the supervisor resolves it (the default model's name, another
// base model, "base:adapter", or an adapter id).
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "http/json_codec.hpp"

namespace adapterd::http::openai {

enum class endpoint { completions, chat };

struct request {
  messages::generate_request gen;
  std::string model;           // as the client named it; echoed in answers
  bool include_usage = false;  // stream_options.include_usage
  uint32_t n = 1;              // choices: n generations of the prompt
  bool echo = false;           // completions: the answer's text starts with the prompt
  bool tokens_as_ids = false;  // vLLM's return_tokens_as_token_ids: logprobs name "token_id:N"
};

/// The most alternatives `top_logprobs` (chat) or `logprobs` (completions) may ask for.
inline constexpr int32_t max_top_logprobs = 20;

/// The most choices one request may ask for (each is a sequence in the batch).
inline constexpr uint32_t max_choices = 16;

std::variant<request, api_error> parse(endpoint kind, const std::string& body, const limits& lim);

/// The whole answer, with usage counts: one choice per reply, in order (the prompt is
/// counted once).
std::string to_json(endpoint kind, const request& req,
                    const std::vector<messages::generate_reply>& replies, int64_t created);
/// Where a streamed choice stands: the characters streamed so far (completions'
/// text_offset) and the tool calls sent (their index).
struct stream_position {
  size_t text_offset = 0;
  uint32_t tool_calls = 0;
};

/// One streamed chunk of text (with its tokens' logprobs when asked for), and two chunks
/// per tool call it completed (id and name, then arguments). The first chat chunk also
/// carries the assistant role, the first completion chunk the prompt under echo.
std::string chunk_json(endpoint kind, const request& req, const messages::stream_chunk& c,
                       bool first, int64_t created, stream_position& pos, uint32_t index = 0);
/// The last chunk of choice `index` (its finish_reason).
std::string choice_end_event(endpoint kind, const request& req, const messages::generate_reply& r,
                             int64_t created, uint32_t index);
/// Once every choice has ended: the usage chunk when asked for (the prompt counted once),
/// then "[DONE]".
std::string stream_end_events(endpoint kind, const request& req,
                              const std::vector<messages::generate_reply>& replies,
                              int64_t created);
/// The last chunk (finish_reason), and the usage chunk when asked for; then "[DONE]".
std::string final_events(endpoint kind, const request& req, const messages::generate_reply& r, int64_t created);

/// GET /v1/models from what the node holds.
std::string models_json(const messages::adapter_reply& r);
/// GET /v1/models/{id}: that model object, or nullopt when no model or adapter has the id.
std::optional<std::string> model_json(const messages::adapter_reply& r, const std::string& id);

/// OpenAI's error shape: {"error": {"message", "type", "param", "code"}}; an unknown model
/// or adapter is a 404 here, as OpenAI answers it.
response error_response(const api_error& e);
api_error to_api_error(const messages::failure& f);

}  // namespace adapterd::http::openai
