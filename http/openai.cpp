#include "http/openai.hpp"

#include <nlohmann/json.hpp>

namespace adapterd::http::openai {

namespace {

using json = nlohmann::json;

api_error bad(std::string code, std::string message) {
  return api_error{400, std::move(code), std::move(message)};
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// OpenAI's name for a field the shared validation reports under its /generate-lite name.
std::string openai_names(std::string message) {
  for (auto [ours, theirs] : {std::pair<const char*, const char*>{"'max_new_tokens'", "'max_tokens'"}}) {
    auto at = message.find(ours);
    if (at != std::string::npos)
      message.replace(at, std::string(ours).size(), theirs);
  }
  return message;
}

std::variant<std::string, api_error> content_text(const json& content) {
  if (content.is_string())
    return content.get<std::string>();
  if (content.is_array()) {  // [{"type": "text", "text": ...}, ...]
    std::string text;
    for (const auto& part : content) {
      if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string())
        return bad("invalid_type", "only text content parts are supported");
      text += part["text"].get<std::string>();
    }
    return text;
  }
  if (content.is_null())
    return std::string();
  return bad("invalid_type", "'content' must be a string or a list of text parts");
}

const char* finish_reason(const std::string& ours) { return ours == "length" ? "length" : "stop"; }

std::string id_of(endpoint kind, const std::string& request_id) {
  return std::string(kind == endpoint::chat ? "chatcmpl-" : "cmpl-") + request_id;
}

json usage(const messages::generate_reply& r) {
  return {{"prompt_tokens", r.prompt_tokens},
          {"completion_tokens", r.tokens_generated},
          {"total_tokens", r.prompt_tokens + r.tokens_generated}};
}

std::string model_of(const request& req, const messages::generate_reply& r) {
  return req.model.empty() ? r.model : req.model;
}

}  // namespace

std::variant<request, api_error> parse(endpoint kind, const std::string& text, const limits& lim) {
  auto body = json::parse(text, nullptr, false);
  if (body.is_discarded() || !body.is_object())
    return bad("invalid_json", "the request body must be a JSON object");
  request out;
  if (body.contains("model") && !body["model"].is_null()) {
    if (!body["model"].is_string())
      return bad("invalid_type", "'model' must be a string");
    out.model = body["model"].get<std::string>();
  }
  if (body.contains("n") && !body["n"].is_null() && body["n"] != 1)
    return bad("unsupported", "only n=1 is supported");
  if (body.value("echo", false))
    return bad("unsupported", "'echo' is not supported");
  for (const char* field : {"logprobs", "top_logprobs", "tools", "functions", "response_format", "logit_bias"})
    if (body.contains(field) && !body[field].is_null() && body[field] != false)
      return bad("unsupported", std::string("'") + field + "' is not supported");
  for (const char* field : {"presence_penalty", "frequency_penalty"})
    if (body.contains(field) && body[field].is_number() && body[field].get<double>() != 0)
      return bad("unsupported", std::string("'") + field + "' is not supported (only 0)");
  // The rest is /generate-lite's validation under OpenAI's defaults.
  json gen = {{"temperature", 1.0}, {"top_p", 1.0}, {"top_k", 0}, {"max_new_tokens", std::min<uint32_t>(16, lim.max_new_tokens)}};
  if (kind == endpoint::chat)
    gen["max_new_tokens"] = lim.max_new_tokens;  // chat: until the end of the turn, as OpenAI
  for (const char* field : {"temperature", "top_p", "seed", "stop", "stream"})
    if (body.contains(field) && !body[field].is_null())
      gen[field] = body[field];
  for (const char* field : {"max_tokens", "max_completion_tokens"})
    if (body.contains(field) && !body[field].is_null())
      gen["max_new_tokens"] = body[field];
  if (kind == endpoint::completions) {
    if (!body.contains("prompt"))
      return bad("missing_field", "'prompt' is required");
    const auto& prompt = body["prompt"];
    if (prompt.is_array() && prompt.size() == 1 && prompt[0].is_string())
      gen["prompt"] = prompt[0];
    else if (prompt.is_string())
      gen["prompt"] = prompt;
    else
      return bad("invalid_type", "'prompt' must be a string (or a list of one string)");
  } else {
    if (!body.contains("messages") || !body["messages"].is_array() || body["messages"].empty())
      return bad("missing_field", "'messages' must be a non-empty list");
    gen["prompt"] = "";
  }
  auto parsed = parse_generate(dump(gen), lim);
  if (auto* e = std::get_if<api_error>(&parsed)) {
    e->message = openai_names(e->message);
    return *e;
  }
  out.gen = std::get<messages::generate_request>(std::move(parsed));
  out.gen.base_model = out.model;
  if (kind == endpoint::chat) {
    for (const auto& m : body["messages"]) {
      if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
        return bad("invalid_type", "each message needs a string 'role'");
      auto content = content_text(m.value("content", json()));
      if (auto* e = std::get_if<api_error>(&content))
        return *e;
      out.gen.chat.push_back({m["role"].get<std::string>(), std::get<std::string>(content)});
    }
  }
  if (body.contains("stream_options") && body["stream_options"].is_object())
    out.include_usage = body["stream_options"].value("include_usage", false);
  return out;
}

std::string to_json(endpoint kind, const request& req, const messages::generate_reply& r, int64_t created) {
  json choice = {{"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish_reason(r.finish_reason)}};
  if (kind == endpoint::chat)
    choice["message"] = {{"role", "assistant"}, {"content", r.generated_text}};
  else
    choice["text"] = r.generated_text;
  json out = {{"id", id_of(kind, r.request_id)},
              {"object", kind == endpoint::chat ? "chat.completion" : "text_completion"},
              {"created", created},
              {"model", model_of(req, r)},
              {"choices", json::array({choice})},
              {"usage", usage(r)},
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

std::string models_json(const messages::adapter_reply& r) {
  json data = json::array();
  auto add = [&](const std::string& id, const std::string& parent) {
    for (const auto& m : data)
      if (m["id"] == id)
        return;
    json m = {{"id", id}, {"object", "model"}, {"created", 0}, {"owned_by", "adapterd"}};
    if (!parent.empty())
      m["parent"] = parent;
    data.push_back(m);
  };
  add(r.default_model, "");
  for (const auto& m : r.models)
    add(m, "");
  for (const auto& a : r.adapters)
    if (!a.id.empty()) {
      add(a.id, r.default_model);
      add(r.default_model + ":" + a.id, r.default_model);
    }
  return dump(json{{"object", "list"}, {"data", data}});
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
