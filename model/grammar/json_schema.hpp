#pragma once
// JSON Schema (the subset structured outputs need) compiled into a graph of nodes that
// json_matcher walks one byte at a time. Refuses what it cannot enforce, by keyword name:
// a schema is either followed exactly or not accepted.
#include <cstdint>
#include <string>
#include <vector>

#include "model/result.hpp"

namespace adapterd::model {

enum class node_kind : uint8_t {
  any,     // any JSON value
  object,  // the listed properties, in order (free_keys: any keys, values `items`)
  array,   // values `items`, min_items..max_items of them
  string,
  number,
  integer,
  literal,  // one of `literals` exactly (enum, const, true/false, null)
  any_of,   // one of `alternatives`
};

struct schema_property {
  std::string name;
  std::string key_text;  // the name as it appears between the quotes (JSON-escaped)
  int32_t node = 0;
  bool required = false;
};

struct schema_node {
  schema_node() = default;
  schema_node(node_kind k) : kind(k) {}  // NOLINT: implicit, so that add({node_kind::x}) reads well
  node_kind kind = node_kind::any;
  std::vector<schema_property> properties;
  bool free_keys = false;
  int32_t items = -1;
  uint32_t min_items = 0, max_items = UINT32_MAX;
  uint32_t min_length = 0, max_length = UINT32_MAX;  // string: characters
  std::vector<std::string> literals;                 // compact JSON texts
  std::vector<int32_t> alternatives;
};

/// The nodes of one schema, with the generic ones every schema may reach.
struct schema_graph {
  std::vector<schema_node> nodes;
  int32_t root = 0;
  int32_t any = 0, any_object = 0, any_array = 0, string = 0, number = 0, boolean = 0, null = 0;
};

/// The most properties one object schema may list (a candidate set is a 64-bit mask).
inline constexpr size_t max_schema_properties = 64;

/// A JSON Schema text: type (or a list of types), properties, required,
/// additionalProperties, items, minItems, maxItems, minLength, maxLength, enum, const, anyOf, $ref
/// to $defs or definitions, and the annotations (title, description, default, examples, $schema,
/// $id, strict, $comment). Anything else is errc::invalid_argument naming the keyword.
result<schema_graph> compile_json_schema(const std::string& schema_text);

/// Any JSON object (response_format json_object).
schema_graph any_json_object_graph();

}  // namespace adapterd::model
