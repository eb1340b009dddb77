#include "http/json_fields.hpp"

#include <cmath>

namespace adapterd::http {

std::string ordered_text(const std::string& body, std::initializer_list<const char*> path) {
  auto v = nlohmann::ordered_json::parse(body, nullptr, false);
  for (const char* key : path)
    v = nlohmann::ordered_json(v[key]);
  return v.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

namespace {

using json = nlohmann::json;

struct too_deep {};

const char* type_name(const json& v) {
  switch (v.type()) {
  case json::value_t::object: return "an object";
  case json::value_t::array: return "a list";
  case json::value_t::string: return "a string";
  case json::value_t::boolean: return "a boolean";
  case json::value_t::number_integer:
  case json::value_t::number_unsigned: return "an integer";
  case json::value_t::number_float: return "a number";
  default: return "null";
  }
}

}  // namespace

std::variant<json, api_error> parse_object(const std::string& text, bool empty_ok) {
  if (empty_ok && text.find_first_not_of(" \t\r\n") == std::string::npos)
    return json::object();
  // The parser is iterative, but copies, dumps and comparisons of its result recurse:
  // depth is refused here, before any of them can run.
  json::parser_callback_t cap = [](int depth, json::parse_event_t event, json&) {
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start)
        && depth >= max_json_depth)
      throw too_deep{};
    return true;
  };
  json body;
  try {
    body = json::parse(text, cap, false);
  } catch (const too_deep&) {
    return api_error{400, "too_deep", "the request body nests deeper than "
                                        + std::to_string(max_json_depth) + " levels"};
  }
  if (body.is_discarded())
    return api_error{400, "invalid_json", "the request body is not valid JSON"};
  if (!body.is_object())
    return api_error{400, "invalid_json", "the request body must be a JSON object"};
  return body;
}

fields::fields(const json& object, std::string where) : object_(object), where_(std::move(where)) {}

std::string fields::label(const char* name) const {
  return "'" + (where_.empty() ? std::string(name) : where_ + "." + name) + "'";
}

void fields::fail(const char* name, const std::string& code, const std::string& why) const {
  throw field_error{api_error{400, code, label(name) + " " + why}};
}

const json* fields::present(const char* name) {
  seen_.insert(name);
  if (!object_.is_object())
    return nullptr;
  auto it = object_.find(name);
  if (it == object_.end() || it->is_null())
    return nullptr;
  return &*it;
}

void fields::known(const char* name) { seen_.insert(name); }

const json* fields::raw(const char* name) { return present(name); }

std::optional<std::string> fields::text(const char* name, size_t max_bytes) {
  const auto* v = present(name);
  if (v == nullptr)
    return std::nullopt;
  if (!v->is_string())
    fail(name, "invalid_type", std::string("must be a string, not ") + type_name(*v));
  const auto& s = v->get_ref<const std::string&>();
  if (s.size() > max_bytes)
    fail(name, "too_long", "must be at most " + std::to_string(max_bytes) + " bytes (it is "
                             + std::to_string(s.size()) + ")");
  return s;
}

std::string fields::required_text(const char* name, size_t max_bytes) {
  auto s = text(name, max_bytes);
  if (!s)
    fail(name, "missing_field", "is required");
  return *s;
}

std::optional<int64_t> fields::integer(const char* name, int64_t lo, int64_t hi) {
  const auto* v = present(name);
  if (v == nullptr)
    return std::nullopt;
  if (!v->is_number_integer())
    fail(name, "invalid_type", std::string("must be an integer, not ") + type_name(*v));
  bool above = v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX);
  int64_t n = above ? INT64_MAX : v->get<int64_t>();
  if (above || n < lo || n > hi)
    fail(name, "out_of_range", "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
  return n;
}

std::optional<uint64_t> fields::unsigned_integer(const char* name) {
  const auto* v = present(name);
  if (v == nullptr)
    return std::nullopt;
  if (!v->is_number_integer())
    fail(name, "invalid_type", std::string("must be an integer, not ") + type_name(*v));
  if (!v->is_number_unsigned() && v->get<int64_t>() < 0)
    fail(name, "out_of_range", "must not be negative");
  return v->get<uint64_t>();
}

std::optional<double> fields::number(const char* name, double lo, double hi, bool lo_open) {
  const auto* v = present(name);
  if (v == nullptr)
    return std::nullopt;
  if (!v->is_number())
    fail(name, "invalid_type", std::string("must be a number, not ") + type_name(*v));
  double x = v->get<double>();
  bool ok = std::isfinite(x) && (lo_open ? x > lo : x >= lo) && x <= hi;
  if (!ok) {
    auto bound = [](double b) {
      auto s = std::to_string(b);
      s.erase(s.find_last_not_of('0') + 1);
      if (!s.empty() && s.back() == '.')
        s.pop_back();
      return s;
    };
    fail(name, "out_of_range", "must be in " + std::string(lo_open ? "(" : "[") + bound(lo) + ", "
                                 + bound(hi) + "]");
  }
  return x;
}

std::optional<bool> fields::boolean(const char* name) {
  const auto* v = present(name);
  if (v == nullptr)
    return std::nullopt;
  if (!v->is_boolean())
    fail(name, "invalid_type", std::string("must be a boolean, not ") + type_name(*v));
  return v->get<bool>();
}

std::optional<std::vector<std::string>> fields::texts(const char* name, size_t max_items, size_t max_bytes) {
  const auto* v = array(name, max_items);
  if (v == nullptr)
    return std::nullopt;
  std::vector<std::string> out;
  for (const auto& item : *v) {
    if (!item.is_string())
      fail(name, "invalid_type", std::string("must hold only strings, not ") + type_name(item));
    const auto& s = item.get_ref<const std::string&>();
    if (s.empty() || s.size() > max_bytes)
      fail(name, "out_of_range", "strings must be 1 to " + std::to_string(max_bytes) + " bytes long");
    out.push_back(s);
  }
  return out;
}

std::optional<std::vector<std::string>> fields::text_or_texts(const char* name, size_t max_items,
                                                              size_t max_bytes) {
  const auto* v = present(name);
  if (v == nullptr)
    return std::nullopt;
  if (v->is_string()) {
    const auto& s = v->get_ref<const std::string&>();
    if (s.empty() || s.size() > max_bytes)
      fail(name, "out_of_range", "strings must be 1 to " + std::to_string(max_bytes) + " bytes long");
    return std::vector<std::string>{s};
  }
  if (!v->is_array())
    fail(name, "invalid_type", std::string("must be a string or a list of strings, not ") + type_name(*v));
  return texts(name, max_items, max_bytes);
}

std::optional<std::vector<int64_t>> fields::integers(const char* name, size_t max_items, int64_t lo, int64_t hi) {
  const auto* v = array(name, max_items);
  if (v == nullptr)
    return std::nullopt;
  std::vector<int64_t> out;
  out.reserve(v->size());
  for (const auto& item : *v) {
    bool ok = item.is_number_integer() && !(item.is_number_unsigned() && item.get<uint64_t>() > static_cast<uint64_t>(hi));
    if (!ok || item.get<int64_t>() < lo || item.get<int64_t>() > hi)
      fail(name, "invalid_type", "must hold integers between " + std::to_string(lo) + " and " + std::to_string(hi));
    out.push_back(item.get<int64_t>());
  }
  return out;
}

const json* fields::object(const char* name) {
  const auto* v = present(name);
  if (v != nullptr && !v->is_object())
    fail(name, "invalid_type", std::string("must be an object, not ") + type_name(*v));
  return v;
}

const json* fields::array(const char* name, size_t max_items) {
  const auto* v = present(name);
  if (v == nullptr)
    return nullptr;
  if (!v->is_array())
    fail(name, "invalid_type", std::string("must be a list, not ") + type_name(*v));
  if (v->size() > max_items)
    fail(name, "too_long", "may hold at most " + std::to_string(max_items) + " items (it holds "
                             + std::to_string(v->size()) + ")");
  return v;
}

void fields::refuse_unknown() const {
  if (!object_.is_object())
    return;
  for (const auto& [key, _] : object_.items())
    if (seen_.count(key) == 0) {
      auto shown = key.size() > 64 ? key.substr(0, 64) + "..." : key;
      throw field_error{api_error{400, "unknown_field", label(shown.c_str()) + " is not a known field"}};
    }
}

}  // namespace adapterd::http
