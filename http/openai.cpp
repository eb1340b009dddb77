#include "http/openai.hpp"

#include <optional>

#include <nlohmann/json.hpp>

#include "http/generate_fields.hpp"

namespace adapterd::http::openai {

namespace {

using json = nlohmann::json;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

const char* finish_reason(const std::string& ours) { return ours == "length" ? "length" : "stop"; }

std::string id_of(endpoint kind, const std::string& request_id) {
  return std::string(kind == endpoint::chat ? "chatcmpl-" : "cmpl-") + request_id;
}

json usage(const messages::generate_reply& r) {
  return {{"prompt_tokens", r.prompt_tokens},
          {"completion_tokens", r.tokens_generated},
          {"total_tokens", r.prompt_tokens + r.tokens_generated},
          {"prompt_tokens_details", {{"cached_tokens", r.cached_tokens}}}};
}

std::string model_of(const request& req, const messages::generate_reply& r) {
  return req.model.empty() ? r.model : req.model;
}

}  // namespace

namespace {

constexpr size_t max_messages = 4096;
constexpr size_t max_content_parts = 256;

[[noreturn]] void unsupported(const fields& f, const char* name, const std::string& why) {
  f.fail(name, "unsupported", why);
}

// Fields OpenAI defines that adapterd does not implement: accepted only at the value that
// means "off", refused by name otherwise, and type-checked either way.
void refuse_unsupported(fields& f, endpoint kind) {
  f.text("user");
  if (kind == endpoint::completions) {
    if (f.boolean("echo").value_or(false))
      unsupported(f, "echo", "is not supported");
    if (f.integer("logprobs", 0, 20))
      unsupported(f, "logprobs", "is not supported");
    if (auto b = f.integer("best_of", 1, 20); b && *b != 1)
      unsupported(f, "best_of", "is not supported (only 1)");
    if (auto suffix = f.text("suffix", 1 << 16); suffix && !suffix->empty())
      unsupported(f, "suffix", "is not supported");
    return;
  }
  if (f.boolean("logprobs").value_or(false))
    unsupported(f, "logprobs", "is not supported");
  if (f.integer("top_logprobs", 0, 20).value_or(0) > 0)
    unsupported(f, "top_logprobs", "is not supported");
  for (const char* name : {"tools", "functions"})
    if (const auto* list = f.array(name, 128); list && !list->empty())
      unsupported(f, name, "is not supported");
  if (const auto* choice = f.raw("tool_choice"); choice && *choice != "none")
    unsupported(f, "tool_choice", "is not supported (only \"none\")");
  if (f.raw("function_call"))
    unsupported(f, "function_call", "is not supported");
  if (const auto* format = f.object("response_format")) {
    fields rf(*format, "response_format");
    if (rf.required_text("type") != "text")
      rf.fail("type", "unsupported", "is not supported (only \"text\")");
    rf.refuse_unknown();
  }
  f.boolean("parallel_tool_calls");
  f.boolean("store");
  f.object("metadata");
  f.text("service_tier");
}

// A message's content: a string or a list of text parts.
std::string content_text(fields& m, const std::string& where) {
  const auto* content = m.raw("content");
  if (content == nullptr)
    m.fail("content", "missing_field", "is required");
  if (content->is_string())
    return m.text("content", SIZE_MAX).value_or("");
  if (!content->is_array())
    m.fail("content", "invalid_type", "must be a string or a list of text parts");
  const auto* parts = m.array("content", max_content_parts);
  std::string text;
  for (size_t i = 0; i < parts->size(); ++i) {
    const auto& part = (*parts)[i];
    fields p(part, where + ".content[" + std::to_string(i) + "]");
    if (!part.is_object())
      m.fail("content", "invalid_type", "must be a string or a list of text parts");
    auto type = p.required_text("type");
    if (type != "text")
      p.fail("type", "unsupported", "'" + type.substr(0, 64) + "' is not supported (only text parts)");
    text += p.required_text("text", SIZE_MAX);
    p.refuse_unknown();
  }
  return text;
}

std::vector<messages::chat_turn> read_messages(fields& f) {
  const auto* list = f.array("messages", max_messages);
  if (list == nullptr || list->empty())
    f.fail("messages", "missing_field", "must be a non-empty list");
  std::vector<messages::chat_turn> turns;
  for (size_t i = 0; i < list->size(); ++i) {
    const auto& item = (*list)[i];
    auto where = "messages[" + std::to_string(i) + "]";
    fields m(item, where);
    if (!item.is_object())
      f.fail("messages", "invalid_type", "must hold message objects");
    auto role = m.required_text("role");
    if (role == "developer")  // OpenAI's newer name for the system message
      role = "system";
    if (role != "system" && role != "user" && role != "assistant") {
      if (role == "tool" || role == "function")
        m.fail("role", "unsupported", "'" + role + "' is not supported (no tool calls)");
      m.fail("role", "out_of_range", "must be system, developer, user or assistant");
    }
    auto content = content_text(m, where);
    m.text("name");
    for (const char* name : {"tool_calls", "function_call", "tool_call_id"})
      if (m.raw(name))
        m.fail(name, "unsupported", "is not supported (no tool calls)");
    m.known("refusal");
    m.refuse_unknown();
    turns.push_back({role, std::move(content)});
  }
  return turns;
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
      if (out.n > 1 && out.gen.stream)
        f.fail("n", "unsupported", "above 1 is supported without stream only");
    }
    if (const auto* options = f.object("stream_options")) {
      fields so(*options, "stream_options");
      out.include_usage = so.boolean("include_usage").value_or(false);
      so.refuse_unknown();
    }
    refuse_unsupported(f, kind);
    if (kind == endpoint::completions) {
      const auto* prompt = f.raw("prompt");
      if (prompt == nullptr)
        f.fail("prompt", "missing_field", "is required");
      if (prompt->is_array()) {
        auto list = f.texts("prompt", max_messages, lim.max_body_bytes);
        if (!list || list->size() != 1)
          f.fail("prompt", "unsupported", "must be a string or a list of one string (batches are not supported)");
        out.gen.prompt = list->front();
      } else {
        out.gen.prompt = f.required_text("prompt", lim.max_body_bytes);
      }
    } else {
      out.gen.chat = read_messages(f);
    }
    f.refuse_unknown();
    out.gen.base_model = out.model;
    return out;
  });
}

std::string to_json(endpoint kind, const request& req,
                    const std::vector<messages::generate_reply>& replies, int64_t created) {
  json choices = json::array();
  uint32_t completion_tokens = 0;
  for (size_t i = 0; i < replies.size(); ++i) {
    const auto& r = replies[i];
    json choice = {
        {"index", i}, {"logprobs", nullptr}, {"finish_reason", finish_reason(r.finish_reason)}};
    if (kind == endpoint::chat)
      choice["message"] = {{"role", "assistant"}, {"content", r.generated_text}};
    else
      choice["text"] = r.generated_text;
    choices.push_back(std::move(choice));
    completion_tokens += r.tokens_generated;
  }
  const auto& first = replies.at(0);
  auto counts = usage(first);
  counts["completion_tokens"] = completion_tokens;
  counts["total_tokens"] = first.prompt_tokens + completion_tokens;
  json out = {{"id", id_of(kind, first.request_id)},
              {"object", kind == endpoint::chat ? "chat.completion" : "text_completion"},
              {"created", created},
              {"model", model_of(req, first)},
              {"choices", std::move(choices)},
              {"usage", std::move(counts)},
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

std::string chunk_json(endpoint kind, const request& req, const std::string& text, bool first, int64_t created) {
  json choice = {{"index", 0}, {"logprobs", nullptr}, {"finish_reason", nullptr}};
  if (kind == endpoint::chat) {
    choice["delta"] = {{"content", text}};
    if (first)
      choice["delta"]["role"] = "assistant";
  } else {
    choice["text"] = text;
  }
  return data(chunk(kind, id_of(kind, req.gen.request_id), req.model, created, choice));
}

std::string final_events(endpoint kind, const request& req, const messages::generate_reply& r, int64_t created) {
  json choice = {{"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish_reason(r.finish_reason)}};
  if (kind == endpoint::chat)
    choice["delta"] = json::object();
  else
    choice["text"] = "";
  std::string out = data(chunk(kind, id_of(kind, r.request_id), model_of(req, r), created, choice));
  if (req.include_usage) {
    auto last = chunk(kind, id_of(kind, r.request_id), model_of(req, r), created, json());
    last["choices"] = json::array();
    last["usage"] = usage(r);
    out += data(last);
  }
  return out + "data: [DONE]\n\n";
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
