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
