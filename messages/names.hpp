#pragma once
// The one table of names per enum of messages/: what JSON, logs and the command line call
// each value. Inside, values are enums; these names exist only at the edges.
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "messages/catalog.hpp"
#include "messages/cluster.hpp"
#include "messages/generation.hpp"
#include "messages/memory.hpp"
#include "messages/training.hpp"

namespace adapterd::messages {

template <class Enum>
struct name_table;

// clang-format off
template <> struct name_table<adapter_action> {
  static constexpr std::pair<adapter_action, std::string_view> entries[] = {
    {adapter_action::list, "list"}, {adapter_action::load, "load"}, {adapter_action::unload, "unload"}};
};
template <> struct name_table<job_action> {
  static constexpr std::pair<job_action, std::string_view> entries[] = {
    {job_action::list, "list"}, {job_action::get, "get"}, {job_action::cancel, "cancel"}};
};
template <> struct name_table<cleanup_reason> {
  static constexpr std::pair<cleanup_reason, std::string_view> entries[] = {
    {cleanup_reason::after_request, "after_request"}, {cleanup_reason::manual, "manual"},
    {cleanup_reason::idle_unload, "idle_unload"}};
};
template <> struct name_table<cleanup_level> {
  static constexpr std::pair<cleanup_level, std::string_view> entries[] = {
    {cleanup_level::flush, "flush"}, {cleanup_level::adapters, "adapters"}, {cleanup_level::all, "all"}};
};
template <> struct name_table<output_format> {
  static constexpr std::pair<output_format, std::string_view> entries[] = {
    {output_format::text, "text"}, {output_format::json_object, "json_object"},
    {output_format::json_schema, "json_schema"}};
};
template <> struct name_table<tool_choice> {
  static constexpr std::pair<tool_choice, std::string_view> entries[] = {
    {tool_choice::none, "none"}, {tool_choice::automatic, "auto"}, {tool_choice::required, "required"},
    {tool_choice::named, "named"}};
};
template <> struct name_table<node_state> {
  static constexpr std::pair<node_state, std::string_view> entries[] = {
    {node_state::connecting, "connecting"}, {node_state::up, "up"}, {node_state::down, "down"},
    {node_state::refused, "refused"}};
};
// clang-format on

template <class Enum>
std::string_view name_of(Enum value) {
  for (const auto& [v, name] : name_table<Enum>::entries)
    if (v == value)
      return name;
  return "unknown";
}

template <class Enum>
std::optional<Enum> from_name(std::string_view name) {
  for (const auto& [v, n] : name_table<Enum>::entries)
    if (n == name)
      return v;
  return std::nullopt;
}

/// "a, b or c": the names a field accepts, for error messages.
template <class Enum>
std::string names_of() {
  std::string out;
  constexpr auto count = std::size(name_table<Enum>::entries);
  for (size_t i = 0; i < count; ++i) {
    if (i > 0)
      out += i + 1 == count ? " or " : ", ";
    out += name_table<Enum>::entries[i].second;
  }
  return out;
}

// CAF's deep_to_string finds these, so logs and test output show names, not numbers.
inline std::string to_string(adapter_action v) {
  return std::string(name_of(v));
}
inline std::string to_string(job_action v) {
  return std::string(name_of(v));
}
inline std::string to_string(cleanup_reason v) {
  return std::string(name_of(v));
}
inline std::string to_string(cleanup_level v) {
  return std::string(name_of(v));
}
inline std::string to_string(output_format v) {
  return std::string(name_of(v));
}
inline std::string to_string(tool_choice v) {
  return std::string(name_of(v));
}
inline std::string to_string(node_state v) {
  return std::string(name_of(v));
}

}  // namespace adapterd::messages
