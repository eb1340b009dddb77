#pragma once
// The generation family: what /generate-lite asks the gpu-owner and what it answers.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "caf/meta/type_name.hpp"
#include "messages/tools.hpp"

namespace adapterd::messages {

/// One turn of a chat (OpenAI's messages), rendered with the model's chat template.
struct chat_turn {
  std::string role;
  std::string content;
  bool null_content = false;          // content: null (an assistant turn of tool calls only)
  std::vector<tool_call> tool_calls;  // an assistant turn's calls
  std::string tool_call_id;           // a tool turn's: the call it answers
  std::string name;                   // the speaker's name, when given
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, chat_turn& x) {
  return f(caf::meta::type_name("adapterd::chat_turn"), x.role, x.content, x.null_content,
           x.tool_calls, x.tool_call_id, x.name);
}

/// What the output must be (OpenAI's response_format).
enum class output_format : uint8_t {
  text,
  json_object,  // any JSON object
  json_schema,  // JSON that follows generate_request::json_schema
};

/// One of the most likely tokens at a position (OpenAI's top_logprobs).
struct top_logprob {
  int32_t id = 0;
  std::string token;  // the bytes it stands for (may cut a UTF-8 character in two)
  float logprob = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, top_logprob& x) {
  return f(caf::meta::type_name("adapterd::top_logprob"), x.id, x.token, x.logprob);
}

/// A token of the output (or, with prompt_logprobs, of the prompt) and its logprob.
struct token_logprob {
  int32_t id = 0;
  std::string token;  // the bytes it stands for
  float logprob = 0;
  bool has_logprob = true;  // false for a prompt's first token: nothing comes before it
  std::vector<top_logprob> top;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, token_logprob& x) {
  return f(caf::meta::type_name("adapterd::token_logprob"), x.id, x.token, x.logprob, x.has_logprob,
           x.top);
}

struct generate_request {
  std::string request_id;
  std::string prompt;
  uint32_t max_new_tokens = 64;
  double temperature = 0.7;
  double top_p = 0.95;
  int32_t top_k = 50;
  double repetition_penalty = 1.0;
  double presence_penalty = 0.0;        // OpenAI's, -2..2, over the output so far
  double frequency_penalty = 0.0;       // OpenAI's, -2..2, per time a token was output
  std::map<int32_t, float> logit_bias;  // OpenAI's: token id -> -100..100 added to its logit
  bool has_seed = false;
  uint64_t seed = 0;
  std::string base_model;    // empty: the default model
  std::string adapter_path;  // empty: no adapter
  bool prefer_cpu = false;
  std::vector<std::string> stop;  // generation ends before any of these texts
  std::vector<int32_t> stop_token_ids;  // vLLM's: generation ends with any of these tokens
  uint64_t arrival_seq = 0;     // stamped by the http actor, in arrival order
  bool stream = false;          // send stream_chunk messages to the requester as text appears
  double timeout_s = 0;         // give up (errc::timeout) this long after arrival; 0: never
  std::vector<chat_turn> chat;  // non-empty: the prompt is this chat in the model's template
  bool ignore_eos = false;      // vLLM's: the end-of-sequence token does not end generation
  uint32_t min_tokens = 0;      // vLLM's: no end-of-sequence token before this many tokens
  int32_t priority = 0;         // lower is served first (vLLM's); equal ones share fairly
  std::string client;           // who asked (a label of the API key, never the key): fairness
  int32_t logprobs = -1;        // -1: none; N: each output token's logprob and the N likeliest
  bool prompt_logprobs = false;     // the prompt's tokens' logprobs too (OpenAI's echo)
  std::vector<int32_t> prompt_ids;  // non-empty: the prompt as token ids (not prompt or chat)
  output_format format = output_format::text;
  std::string json_schema;  // output_format::json_schema: the schema's text, in its key order
  std::string tools;        // with chat: OpenAI's tools list as JSON text, in its key order
  tool_choice tool_mode = tool_choice::none;
  std::string tool_name;            // tool_choice::named: the function that must be called
  bool parallel_tool_calls = true;  // false: at most one call
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, generate_request& x) {
  return f(caf::meta::type_name("adapterd::generate_request"), x.request_id, x.prompt,
           x.max_new_tokens, x.temperature, x.top_p, x.top_k, x.repetition_penalty,
           x.presence_penalty, x.frequency_penalty, x.logit_bias, x.has_seed, x.seed, x.base_model,
           x.adapter_path, x.prefer_cpu, x.stop, x.stop_token_ids, x.arrival_seq, x.stream,
           x.timeout_s, x.chat, x.ignore_eos, x.min_tokens, x.priority, x.client, x.logprobs,
           x.prompt_logprobs, x.prompt_ids, x.format, x.json_schema, x.tools, x.tool_mode,
           x.tool_name, x.parallel_tool_calls);
}

struct generate_reply {
  std::string request_id;
  std::string generated_text;
  uint32_t tokens_generated = 0;
  uint32_t prompt_tokens = 0;
  uint32_t cached_tokens = 0;  // of prompt_tokens, those whose KV came from the prefix cache
  std::string finish_reason;  // eos | length | stop
  std::string model;
  std::string adapter;
  std::string device;
  double queue_ms = 0;
  double load_ms = 0;
  double generate_ms = 0;
  uint64_t arrival_seq = 0;
  uint64_t service_seq = 0;  // the order in which the gpu-owner started requests
  int64_t started_at_us = 0;   // wall clock (Unix epoch) when the gpu-owner took it up
  int64_t finished_at_us = 0;  // wall clock when its answer was ready
  uint32_t batch_size_max = 0; // the most sequences that ran in one step with this one
  std::string node;            // the worker that served it, through a router
  std::vector<token_logprob> logprobs;         // per output token, when asked for
  std::vector<token_logprob> prompt_logprobs;  // per prompt token, when asked for
  std::string prompt_text;            // a prompt given as ids, decoded (what OpenAI's echo writes)
  std::vector<tool_call> tool_calls;  // parsed out of the output (which then leaves them out)
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, generate_reply& x) {
  return f(caf::meta::type_name("adapterd::generate_reply"), x.request_id, x.generated_text,
           x.tokens_generated, x.prompt_tokens, x.cached_tokens, x.finish_reason, x.model,
           x.adapter, x.device, x.queue_ms, x.load_ms, x.generate_ms, x.arrival_seq, x.service_seq,
           x.started_at_us, x.finished_at_us, x.batch_size_max, x.node, x.logprobs,
           x.prompt_logprobs, x.prompt_text, x.tool_calls);
}

/// Text of a streamed generation as it appears, sent to whoever asked for the stream.
struct stream_chunk {
  std::string request_id;
  std::string text;
  uint32_t tokens = 0;       // tokens generated so far
  uint64_t arrival_seq = 0;  // the request's, which (unlike a client's X-Request-Id) is unique
  std::vector<token_logprob> logprobs;  // of the tokens since the last chunk, when asked for
  std::vector<tool_call> tool_calls;    // calls completed since the last chunk
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, stream_chunk& x) {
  return f(caf::meta::type_name("adapterd::stream_chunk"), x.request_id, x.text, x.tokens,
           x.arrival_seq, x.logprobs, x.tool_calls);
}

}  // namespace adapterd::messages
