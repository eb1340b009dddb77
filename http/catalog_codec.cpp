#include "http/catalog_codec.hpp"

#include <climits>
#include <optional>
#include <type_traits>

#include <nlohmann/json.hpp>

namespace adapterd::http {

namespace {

using json = nlohmann::json;

api_error bad(std::string code, std::string message) {
  return api_error{400, std::move(code), std::move(message)};
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::variant<json, api_error> object_body(const std::string& text) {
  auto body = json::parse(text, nullptr, false);
  if (body.is_discarded() || !body.is_object())
    return bad("invalid_json", "the request body must be a JSON object");
  return body;
}

// Reads an optional string or bool field into `out`; an error text when it has another type.
template <class T>
std::optional<api_error> optional_field(const json& body, const char* name, T& out) {
  if (!body.contains(name) || body[name].is_null())
    return std::nullopt;
  bool ok = std::is_same_v<T, bool> ? body[name].is_boolean() : body[name].is_string();
  if (!ok)
    return bad("invalid_type", std::string("'") + name + "' must be a " + (std::is_same_v<T, bool> ? "boolean" : "string"));
  out = body[name].get<T>();
  return std::nullopt;
}

}  // namespace

std::variant<messages::tokenize_request, api_error> parse_tokenize(const std::string& text) {
  auto parsed = object_body(text);
  if (auto* e = std::get_if<api_error>(&parsed))
    return *e;
  const auto& body = std::get<json>(parsed);
  messages::tokenize_request req;
  if (!body.contains("text") || !body["text"].is_string())
    return bad("missing_field", "'text' (a string) is required");
  req.text = body["text"].get<std::string>();
  if (auto e = optional_field(body, "model", req.model))
    return *e;
  if (auto e = optional_field(body, "add_special_tokens", req.add_special_tokens))
    return *e;
  return req;
}

std::variant<messages::detokenize_request, api_error> parse_detokenize(const std::string& text) {
  auto parsed = object_body(text);
  if (auto* e = std::get_if<api_error>(&parsed))
    return *e;
  const auto& body = std::get<json>(parsed);
  messages::detokenize_request req;
  if (!body.contains("ids") || !body["ids"].is_array())
    return bad("missing_field", "'ids' (a list of token ids) is required");
  for (const auto& id : body["ids"]) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX)
      return bad("invalid_type", "'ids' must hold non-negative integers");
    req.ids.push_back(static_cast<int32_t>(id.get<int64_t>()));
  }
  if (auto e = optional_field(body, "model", req.model))
    return *e;
  if (auto e = optional_field(body, "skip_special_tokens", req.skip_special_tokens))
    return *e;
  return req;
}

std::variant<messages::adapter_request, api_error> parse_adapter_request(const std::string& method,
                                                                         const std::string& path,
                                                                         const std::string& text) {
  messages::adapter_request req;
  if (path == "/adapters") {
    if (method == "GET" || method == "HEAD")
      return req;
    if (method != "POST")
      return api_error{405, "method_not_allowed", method + " is not allowed on /adapters (allowed: GET, POST)"};
    auto parsed = object_body(text);
    if (auto* e = std::get_if<api_error>(&parsed))
      return *e;
    const auto& body = std::get<json>(parsed);
    req.action = "load";
    if (!body.contains("path") || !body["path"].is_string() || body["path"].get<std::string>().empty())
      return bad("missing_field", "'path' (an adapter directory under the adapter roots) is required");
    req.path = body["path"].get<std::string>();
    if (auto e = optional_field(body, "id", req.id))
      return *e;
    return req;
  }
  auto id = path.substr(std::string("/adapters/").size());
  if (method != "DELETE")
    return api_error{405, "method_not_allowed", method + " is not allowed on " + path + " (allowed: DELETE)"};
  if (id.empty() || id.find('/') != std::string::npos)
    return api_error{404, "not_found", "no route for " + method + " " + path};
  req.action = "unload";
  req.id = id;
  return req;
}

std::variant<messages::train_request, api_error> parse_train(const std::string& text) {
  auto parsed = object_body(text);
  if (auto* e = std::get_if<api_error>(&parsed))
    return *e;
  const auto& body = std::get<json>(parsed);
  messages::train_request req;
  if (!body.contains("dataset") || !body["dataset"].is_string())
    return bad("missing_field", "'dataset' (a text or JSONL file below the data roots) is required");
  req.dataset = body["dataset"].get<std::string>();
  if (auto e = optional_field(body, "base_model", req.base_model))
    return *e;
  if (auto e = optional_field(body, "id", req.id))
    return *e;
  auto number = [&](const char* name, auto& out) -> std::optional<api_error> {
    if (!body.contains(name) || body[name].is_null())
      return std::nullopt;
    using T = std::decay_t<decltype(out)>;
    if (std::is_integral_v<T> ? !body[name].is_number_integer() : !body[name].is_number())
      return bad("invalid_type", std::string("'") + name + "' must be a " + (std::is_integral_v<T> ? "whole number" : "number"));
    out = body[name].get<T>();
    return std::nullopt;
  };
  for (auto e : {number("r", req.r), number("alpha", req.alpha), number("learning_rate", req.lr),
                 number("steps", req.steps), number("batch_size", req.batch), number("seq_len", req.seq_len),
                 number("seed", req.seed)})
    if (e)
      return *e;
  if (body.contains("target_modules") && !body["target_modules"].is_null()) {
    if (!body["target_modules"].is_array() || body["target_modules"].empty())
      return bad("invalid_type", "'target_modules' must be a non-empty list of module names");
    req.targets.clear();
    for (const auto& t : body["target_modules"]) {
      if (!t.is_string())
        return bad("invalid_type", "'target_modules' must be a non-empty list of module names");
      req.targets.push_back(t.get<std::string>());
    }
  }
  return req;
}

std::variant<messages::job_request, api_error> parse_job_request(const std::string& method, const std::string& path) {
  messages::job_request req;
  if (path == "/jobs") {
    if (method != "GET" && method != "HEAD")
      return api_error{405, "method_not_allowed", method + " is not allowed on /jobs (allowed: GET)"};
    return req;
  }
  req.id = path.substr(std::string("/jobs/").size());
  if (req.id.empty() || req.id.find('/') != std::string::npos)
    return api_error{404, "not_found", "no route for " + method + " " + path};
  if (method == "GET" || method == "HEAD")
    req.action = "get";
  else if (method == "DELETE")
    req.action = "cancel";
  else
    return api_error{405, "method_not_allowed", method + " is not allowed on " + path + " (allowed: GET, DELETE)"};
  return req;
}

namespace {

json job_json(const messages::job_status& s) {
  auto or_null = [](const std::string& v) { return v.empty() ? json(nullptr) : json(v); };
  return {{"id", s.id},
          {"state", s.state},
          {"error", or_null(s.error)},
          {"adapter_id", or_null(s.adapter_id)},
          {"adapter_path", or_null(s.adapter_path)},
          {"dataset", s.dataset},
          {"base_model", or_null(s.base_model)},
          {"step", s.step},
          {"steps", s.steps},
          {"loss", s.loss},
          {"loss_avg", s.loss_avg},
          {"tokens_per_s", s.tokens_per_s},
          {"eta_s", s.eta_s},
          {"elapsed_s", s.elapsed_s},
          {"created_at_ms", s.created_at_ms},
          {"finished_at_ms", s.finished_at_ms == 0 ? json(nullptr) : json(s.finished_at_ms)}};
}

}  // namespace

std::string to_json(const messages::job_status& s) { return dump(job_json(s)); }

std::string to_json(const messages::job_list& l) {
  json jobs = json::array();
  for (const auto& s : l.jobs)
    jobs.push_back(job_json(s));
  return dump(json{{"jobs", jobs}});
}

std::string to_json(const messages::tokenize_reply& r) {
  return dump(json{{"model", r.model}, {"ids", r.ids}, {"pieces", r.pieces}, {"count", r.ids.size()}});
}

std::string to_json(const messages::detokenize_reply& r) {
  return dump(json{{"model", r.model}, {"text", r.text}});
}

std::string to_json(const messages::adapter_reply& r) {
  json adapters = json::array();
  for (const auto& a : r.adapters) {
    json item = {{"id", a.id.empty() ? json(nullptr) : json(a.id)},
                 {"path", a.path},
                 {"tier", a.tier.empty() ? json(nullptr) : json(a.tier)},
                 {"device", a.device.empty() ? json(nullptr) : json(a.device)},
                 {"bytes", a.bytes}};
    if (!a.node.empty())
      item["node"] = a.node;
    adapters.push_back(item);
  }
  return dump(json{{"default_model", r.default_model}, {"models", r.models}, {"adapters", adapters}});
}

}  // namespace adapterd::http
