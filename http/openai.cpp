#include "http/openai.hpp"

#include <optional>

#include <nlohmann/json.hpp>

#include "http/chat_messages.hpp"
#include "http/generate_fields.hpp"
#include "http/response_format.hpp"
#include "http/tool_fields.hpp"

namespace adapterd::http::openai {

namespace {

using json = nlohmann::json;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// A choice that called tools ends with "tool_calls", as OpenAI's do.
const char* finish_reason(const messages::generate_reply& r) {
  if (!r.tool_calls.empty())
    return "tool_calls";
  return r.finish_reason == "length" ? "length" : "stop";
}

json tool_call_json(const messages::tool_call& call) {
  return {{"id", call.id},
          {"type", "function"},
          {"function", {{"name", call.name}, {"arguments", call.arguments}}}};
}

// The assistant's message: with tool calls, content is null when nothing but layout is
// left around them.
json chat_message(const messages::generate_reply& r) {
  json message = {{"role", "assistant"}, {"content", r.generated_text}};
  if (r.tool_calls.empty())
    return message;
  if (r.generated_text.find_first_not_of(" \t\r\n") == std::string::npos)
    message["content"] = nullptr;
  message["tool_calls"] = json::array();
  for (const auto& call : r.tool_calls)
    message["tool_calls"].push_back(tool_call_json(call));
  return message;
}

std::string id_of(endpoint kind, const std::string& request_id) {
  return std::string(kind == endpoint::chat ? "chatcmpl-" : "cmpl-") + request_id;
}

json usage(const messages::generate_reply& r) {
  return {{"prompt_tokens", r.prompt_tokens},
          {"completion_tokens", r.tokens_generated},
          {"total_tokens", r.prompt_tokens + r.tokens_generated},
          {"prompt_tokens_details", {{"cached_tokens", r.cached_tokens}}}};
}

// n choices of one prompt: the prompt counted once, every choice's tokens.
json usage_of(const std::vector<messages::generate_reply>& replies) {
  uint32_t completion_tokens = 0;
  for (const auto& r : replies)
    completion_tokens += r.tokens_generated;
  auto counts = usage(replies.at(0));
  counts["completion_tokens"] = completion_tokens;
  counts["total_tokens"] = replies.at(0).prompt_tokens + completion_tokens;
  return counts;
}

std::string model_of(const request& req, const messages::generate_reply& r) {
  return req.model.empty() ? r.model : req.model;
}

// A logprob as OpenAI writes one: never -inf (a banned token), which JSON cannot hold.
double logprob_value(float v) {
  return v < -9999.0f ? -9999.0 : static_cast<double>(v);
}

json byte_list(const std::string& token) {
  json out = json::array();
  for (unsigned char c : token)
    out.push_back(static_cast<int>(c));
  return out;
}

// Characters of UTF-8 text, as a client's string indexes count them (bytes that do not
// continue a character).
size_t characters(const std::string& text) {
  size_t n = 0;
  for (unsigned char c : text)
    n += (c & 0xC0) != 0x80 ? 1 : 0;
  return n;
}

// A token as a logprobs list names it: its text, or "token_id:N" (tokens_as_ids).
std::string token_name(const request& req, int32_t id, const std::string& bytes) {
  return req.tokens_as_ids ? "token_id:" + std::to_string(id) : bytes;
}

// Chat's shape: {"content": [{token, logprob, bytes, top_logprobs}], "refusal": null}.
// Token strings that cut a character in two are written with U+FFFD (dump's replace);
// their exact bytes are in "bytes".
json chat_logprobs(const request& req, const std::vector<messages::token_logprob>& tokens) {
  json content = json::array();
  for (const auto& t : tokens) {
    json top = json::array();
    for (const auto& alt : t.top)
      top.push_back({{"token", token_name(req, alt.id, alt.token)},
                     {"logprob", logprob_value(alt.logprob)},
                     {"bytes", byte_list(alt.token)}});
    content.push_back({{"token", token_name(req, t.id, t.token)},
                       {"logprob", logprob_value(t.logprob)},
                       {"bytes", byte_list(t.token)},
                       {"top_logprobs", std::move(top)}});
  }
  return {{"content", std::move(content)}, {"refusal", nullptr}};
}

// Completions' shape: parallel lists of tokens, their logprobs, their alternatives (a map
// token -> logprob) and their offsets in the text; null for a prompt's first token.
json completion_logprobs(const request& req, const std::vector<messages::token_logprob>& tokens,
                         size_t& text_offset) {
  json out = {{"tokens", json::array()},
              {"token_logprobs", json::array()},
              {"top_logprobs", json::array()},
              {"text_offset", json::array()}};
  for (const auto& t : tokens) {
    out["tokens"].push_back(token_name(req, t.id, t.token));
    out["text_offset"].push_back(text_offset);
    text_offset += characters(t.token);
    if (!t.has_logprob) {
      out["token_logprobs"].push_back(nullptr);
      out["top_logprobs"].push_back(nullptr);
      continue;
    }
    out["token_logprobs"].push_back(logprob_value(t.logprob));
    json top = json::object();
    for (const auto& alt : t.top)
      top[token_name(req, alt.id, alt.token)] = logprob_value(alt.logprob);
    out["top_logprobs"].push_back(std::move(top));
  }
  return out;
}

// The prompt as echo writes it: as given, or decoded when given as ids.
const std::string& prompt_text(const request& req, const messages::generate_reply& r) {
  return req.gen.prompt_ids.empty() ? req.gen.prompt : r.prompt_text;
}

// A choice's "logprobs": null unless asked for.
json logprobs_of(endpoint kind, const request& req, const messages::generate_reply& r) {
  if (req.gen.logprobs < 0)
    return nullptr;
  if (kind == endpoint::chat)
    return chat_logprobs(req, r.logprobs);
  auto tokens = r.prompt_logprobs;  // empty unless echo
  tokens.insert(tokens.end(), r.logprobs.begin(), r.logprobs.end());
  size_t offset = 0;
  return completion_logprobs(req, tokens, offset);
}

}  // namespace

namespace {


[[noreturn]] void unsupported(const fields& f, const char* name, const std::string& why) {
  f.fail(name, "unsupported", why);
}

// Fields OpenAI defines that adapterd does not implement: accepted only at the value that
// means "off", refused by name otherwise, and type-checked either way.
void refuse_unsupported(fields& f, endpoint kind) {
  f.text("user");
  if (kind == endpoint::completions) {
    if (auto b = f.integer("best_of", 1, 20); b && *b != 1)
      unsupported(f, "best_of", "is not supported (only 1)");
    if (auto suffix = f.text("suffix", 1 << 16); suffix && !suffix->empty())
      unsupported(f, "suffix", "is not supported");
    return;
  }
  f.boolean("store");
  f.object("metadata");
  f.text("service_tier");
}

// The most token ids a prompt given as ids may hold (above any model's context).
constexpr size_t max_prompt_ids = 1 << 20;

// A completions prompt given as token ids ([1, 2, 3], or a batch of one: [[1, 2, 3]]);
// nullopt when it is text. The ids are checked against the vocabulary where it is known.
std::optional<std::vector<int32_t>> prompt_ids(fields& f, const json& prompt) {
  if (!prompt.is_array() || prompt.empty())
    return std::nullopt;
  const json* list = &prompt;
  if (prompt[0].is_array()) {
    if (prompt.size() != 1)
      f.fail("prompt", "unsupported", "must be one prompt (batches are not supported)");
    list = &prompt[0];
  } else if (!prompt[0].is_number()) {
    return std::nullopt;
  }
  json wrapped = {{"prompt", *list}};
  fields inner(wrapped);
  auto ids = inner.integers("prompt", max_prompt_ids, 0, INT32_MAX);
  if (!ids || ids->empty())
    f.fail("prompt", "invalid_value", "must hold at least one token id");
  return std::vector<int32_t>(ids->begin(), ids->end());
}

// logprobs and top_logprobs (chat), logprobs: N and echo (completions).
void read_logprobs(fields& f, endpoint kind, request& out) {
  out.tokens_as_ids = f.boolean("return_tokens_as_token_ids").value_or(false);
  if (kind == endpoint::completions) {
    if (auto n = f.integer("logprobs", 0, max_top_logprobs))
      out.gen.logprobs = static_cast<int32_t>(*n);
    out.echo = f.boolean("echo").value_or(false);
    if (out.echo && out.gen.logprobs >= 0) {
      if (out.gen.stream)
        f.fail("echo", "unsupported", "with logprobs is supported without stream only");
      out.gen.prompt_logprobs = true;
    }
    return;
  }
  const bool wanted = f.boolean("logprobs").value_or(false);
  const auto top = f.integer("top_logprobs", 0, max_top_logprobs);
  if (top && *top > 0 && !wanted)
    f.fail("top_logprobs", "invalid_value", "needs logprobs: true");
  if (wanted)
    out.gen.logprobs = static_cast<int32_t>(top.value_or(0));
}

}  // namespace

std::variant<request, api_error> parse(endpoint kind, const std::string& text, const limits& lim) {
  auto body = parse_object(text);
  if (auto* e = std::get_if<api_error>(&body))
    return *e;
  return decode<request>([&] {
    fields f(std::get<json>(body));
    request out;
    out.model = f.text("model").value_or("");
    // OpenAI's defaults: completions stop after 16 tokens, chat at the end of the turn.
    out.gen.temperature = 1.0;
    out.gen.top_p = 1.0;
    out.gen.top_k = 0;
    out.gen.max_new_tokens = kind == endpoint::chat ? lim.max_new_tokens : std::min<uint32_t>(16, lim.max_new_tokens);
    for (const char* name : {"max_tokens", "max_completion_tokens"})
      if (auto n = f.integer(name, 1, lim.max_new_tokens))
        out.gen.max_new_tokens = static_cast<uint32_t>(*n);
    read_sampling(f, out.gen);
    if (auto n = f.integer("n", 1, max_choices)) {
      out.n = static_cast<uint32_t>(*n);
    }
    if (const auto* options = f.object("stream_options")) {
      fields so(*options, "stream_options");
      out.include_usage = so.boolean("include_usage").value_or(false);
      so.refuse_unknown();
    }
    read_logprobs(f, kind, out);
    read_response_format(f, text, out.gen);
    refuse_unsupported(f, kind);
    if (kind == endpoint::completions) {
      const auto* prompt = f.raw("prompt");
      if (prompt == nullptr)
        f.fail("prompt", "missing_field", "is required");
      if (const auto ids = prompt_ids(f, *prompt)) {
        out.gen.prompt_ids = *ids;
      } else if (prompt->is_array()) {
        auto list = f.texts("prompt", max_messages, lim.max_body_bytes);
        if (!list || list->size() != 1)
          f.fail("prompt", "unsupported", "must be a string or a list of one string (batches are not supported)");
        out.gen.prompt = list->front();
      } else {
        out.gen.prompt = f.required_text("prompt", lim.max_body_bytes);
      }
      if (out.echo && out.gen.stream && !out.gen.prompt_ids.empty())
        f.fail("echo", "unsupported", "of a prompt of token ids is supported without stream only");
    } else {
      out.gen.chat = read_messages(f);
      read_tools(f, text, out.gen);
    }
    f.refuse_unknown();
    out.gen.base_model = out.model;
    return out;
  });
}

std::string to_json(endpoint kind, const request& req,
                    const std::vector<messages::generate_reply>& replies, int64_t created) {
  json choices = json::array();
  for (size_t i = 0; i < replies.size(); ++i) {
    const auto& r = replies[i];
    json choice = {
        {"index", i}, {"logprobs", logprobs_of(kind, req, r)}, {"finish_reason", finish_reason(r)}};
    if (kind == endpoint::chat)
      choice["message"] = chat_message(r);
    else
      choice["text"] = req.echo ? prompt_text(req, r) + r.generated_text : r.generated_text;
    choices.push_back(std::move(choice));
  }
  const auto& first = replies.at(0);
  json out = {{"id", id_of(kind, first.request_id)},
              {"object", kind == endpoint::chat ? "chat.completion" : "text_completion"},
              {"created", created},
              {"model", model_of(req, first)},
              {"choices", std::move(choices)},
              {"usage", usage_of(replies)},
              {"system_fingerprint", nullptr}};
  return dump(out);
}

namespace {

json chunk(endpoint kind, const std::string& id, const std::string& model, int64_t created, json choice) {
  return {{"id", id},
          {"object", kind == endpoint::chat ? "chat.completion.chunk" : "text_completion"},
          {"created", created},
          {"model", model},
          {"choices", json::array({std::move(choice)})}};
}

std::string data(const json& j) { return "data: " + dump(j) + "\n\n"; }

}  // namespace

std::string chunk_json(endpoint kind, const request& req, const messages::stream_chunk& c,
                       bool first, int64_t created, stream_position& pos, uint32_t index) {
  const auto id = id_of(kind, req.gen.request_id);
  json choice = {{"index", index}, {"logprobs", nullptr}, {"finish_reason", nullptr}};
  if (kind == endpoint::chat) {
    choice["delta"] = json::object();
    if (!c.text.empty() || c.tool_calls.empty())
      choice["delta"]["content"] = c.text;
    if (first)
      choice["delta"]["role"] = "assistant";
    if (req.gen.logprobs >= 0)
      choice["logprobs"] = chat_logprobs(req, c.logprobs);
  } else {
    const bool echoed = first && req.echo;  // echo with logprobs is not streamed (parse)
    choice["text"] = echoed ? req.gen.prompt + c.text : c.text;
    if (echoed)
      pos.text_offset += characters(req.gen.prompt);
    if (req.gen.logprobs >= 0)
      choice["logprobs"] = completion_logprobs(req, c.logprobs, pos.text_offset);
  }
  std::string out;
  if (choice.contains("text") || first || choice["delta"].contains("content")
      || !c.logprobs.empty())
    out = data(chunk(kind, id, req.model, created, choice));
  // Each call as OpenAI streams one: its id and name with empty arguments, then the
  // arguments (whole: a call is released once it has closed).
  for (const auto& call : c.tool_calls) {
    json head = tool_call_json(call);
    head["index"] = pos.tool_calls++;
    head["function"]["arguments"] = "";
    json args = {{"index", head["index"]}, {"function", {{"arguments", call.arguments}}}};
    for (auto* delta : {&head, &args}) {
      json part = {{"index", index},
                   {"logprobs", nullptr},
                   {"finish_reason", nullptr},
                   {"delta", {{"tool_calls", json::array({std::move(*delta)})}}}};
      out += data(chunk(kind, id, req.model, created, std::move(part)));
    }
  }
  return out;
}

std::string choice_end_event(endpoint kind, const request& req, const messages::generate_reply& r,
                             int64_t created, uint32_t index) {
  json choice = {{"index", index}, {"logprobs", nullptr}, {"finish_reason", finish_reason(r)}};
  if (kind == endpoint::chat)
    choice["delta"] = json::object();
  else
    choice["text"] = "";
  return data(chunk(kind, id_of(kind, req.gen.request_id), model_of(req, r), created, choice));
}

std::string stream_end_events(endpoint kind, const request& req,
                              const std::vector<messages::generate_reply>& replies,
                              int64_t created) {
  std::string out;
  if (req.include_usage) {
    auto last =
        chunk(kind, id_of(kind, req.gen.request_id), model_of(req, replies.at(0)), created, json());
    last["choices"] = json::array();
    last["usage"] = usage_of(replies);
    out += data(last);
  }
  return out + "data: [DONE]\n\n";
}

std::string final_events(endpoint kind, const request& req, const messages::generate_reply& r,
                         int64_t created) {
  return choice_end_event(kind, req, r, created, 0) + stream_end_events(kind, req, {r}, created);
}

namespace {

// OpenAI's model objects: the default model, resident base models, and each adapter both
// by its id and as base:adapter.
json model_objects(const messages::adapter_reply& r) {
  json data = json::array();
  auto add = [&](const std::string& id, const std::string& parent) -> json& {
    for (auto& m : data)
      if (m["id"] == id)
        return m;
    json m = {{"id", id}, {"object", "model"}, {"created", 0}, {"owned_by", "adapterd"}};
    if (!parent.empty())
      m["parent"] = parent;
    data.push_back(m);
    return data.back();
  };
  add(r.default_model, "");
  // A resident base model says how its weights are held (adapterd's field; clients ignore it).
  for (const auto& m : r.models)
    add(m.name, "")["weights"] = m.weights;
  for (const auto& a : r.adapters)
    if (!a.id.empty()) {
      add(a.id, r.default_model);
      add(r.default_model + ":" + a.id, r.default_model);
    }
  return data;
}

}  // namespace

std::string models_json(const messages::adapter_reply& r) {
  return dump(json{{"object", "list"}, {"data", model_objects(r)}});
}

std::optional<std::string> model_json(const messages::adapter_reply& r, const std::string& id) {
  for (const auto& m : model_objects(r))
    if (m["id"] == id)
      return dump(m);
  return std::nullopt;
}

api_error to_api_error(const messages::failure& f) {
  auto e = http::to_api_error(f);
  if (f.code == messages::errc::unknown_model || f.code == messages::errc::adapter_not_found)
    e.status = 404;
  return e;
}

response error_response(const api_error& e) {
  auto r = http::error_response(e);
  r.body = dump(json{{"error", {{"message", e.message},
                                {"type", e.status >= 500 ? "server_error" : "invalid_request_error"},
                                {"param", nullptr},
                                {"code", e.code}}}});
  return r;
}

}  // namespace adapterd::http::openai
