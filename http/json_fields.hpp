#pragma once
// The one way client JSON is read: parsed with a nesting cap, then field by field through
// typed accessors that name the wrong field and say why. Nothing else in http/ calls
// nlohmann's value() or get<T>() on a client's data.
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "http/json_codec.hpp"

namespace adapterd::http {

/// Deeper bodies are refused while parsing, so that no later copy or dump can recurse far.
inline constexpr int max_json_depth = 64;
/// The longest name-like string (a model, an adapter id, a role).
inline constexpr size_t max_name_bytes = 512;

/// Thrown by the accessors; `decode` turns it into the api_error it carries. It never
/// leaves http/.
struct field_error {
  api_error error;
};

/// Parses a request body into a JSON object. An empty body is `{}` when `empty_ok`.
/// Invalid JSON, another top-level type or nesting beyond max_json_depth: a 400.
std::variant<nlohmann::json, api_error> parse_object(const std::string& text, bool empty_ok = false);

/// The value at `path` in a body that parse_object accepted, written back in the key order
/// the client used (a schema's properties, a tool list): nlohmann::json sorts keys.
std::string ordered_text(const std::string& body, std::initializer_list<const char*> path);

/// Typed, bounded reads of one JSON object's fields. A field that is absent or null reads
/// as std::nullopt; one of the wrong type or out of bounds throws field_error naming it.
class fields {
public:
  /// `where`: the path of this object in the body ("messages[2]"), for messages.
  explicit fields(const nlohmann::json& object, std::string where = "");

  std::optional<std::string> text(const char* name, size_t max_bytes = max_name_bytes);
  std::string required_text(const char* name, size_t max_bytes = max_name_bytes);
  std::optional<int64_t> integer(const char* name, int64_t lo, int64_t hi);
  std::optional<uint64_t> unsigned_integer(const char* name);
  /// A number in [lo, hi]; with `lo_open`, in (lo, hi].
  std::optional<double> number(const char* name, double lo, double hi, bool lo_open = false);
  std::optional<bool> boolean(const char* name);
  /// A string, or a list of 1..max_items strings of 1..max_bytes each.
  std::optional<std::vector<std::string>> text_or_texts(const char* name, size_t max_items, size_t max_bytes);
  std::optional<std::vector<std::string>> texts(const char* name, size_t max_items, size_t max_bytes);
  std::optional<std::vector<int64_t>> integers(const char* name, size_t max_items, int64_t lo, int64_t hi);
  /// A nested object or array, bounded in size; the caller reads it with its own `fields`.
  const nlohmann::json* object(const char* name);
  const nlohmann::json* array(const char* name, size_t max_items);
  /// The raw value of a field whose shape the caller checks (null and absent: nullptr).
  const nlohmann::json* raw(const char* name);

  /// Marks a field as known without reading it.
  void known(const char* name);
  /// Refuses the first field that no accessor (or `known`) has touched, by name.
  void refuse_unknown() const;

  [[noreturn]] void fail(const char* name, const std::string& code, const std::string& why) const;
  std::string label(const char* name) const;

private:
  const nlohmann::json* present(const char* name);

  const nlohmann::json& object_;
  std::string where_;
  std::set<std::string> seen_;
};

/// Runs a decoder that reads through `fields` and returns its value, or the api_error of
/// the first field_error it threw.
template <class T>
std::variant<T, api_error> decode(const std::function<T()>& read) {
  try {
    return read();
  } catch (const field_error& e) {
    return e.error;
  }
}

}  // namespace adapterd::http
