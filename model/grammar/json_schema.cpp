#include "model/grammar/json_schema.hpp"

#include <map>
#include <set>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace adapterd::model {

namespace {

// ordered_json: properties keep the order the schema lists them in, which the output follows.
using json = nlohmann::ordered_json;

struct schema_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

const std::set<std::string>& annotations() {
  static const std::set<std::string> names{"title",   "description", "default", "examples",
                                           "$schema", "$id",         "strict",  "$comment",
                                           "$defs",   "definitions"};
  return names;
}

std::string compact(const json& v) {
  return v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

class compiler {
 public:
  explicit compiler(const json& root) : root_(root) {
    auto& g = graph_;
    g.any = add({node_kind::any});
    g.string = add({node_kind::string});
    g.number = add({node_kind::number});
    schema_node boolean{node_kind::literal};
    boolean.literals = {"true", "false"};
    g.boolean = add(boolean);
    schema_node null{node_kind::literal};
    null.literals = {"null"};
    g.null = add(null);
    schema_node object{node_kind::object};
    object.free_keys = true;
    object.items = g.any;
    g.any_object = add(object);
    schema_node array{node_kind::array};
    array.items = g.any;
    g.any_array = add(array);
  }

  schema_graph run() {
    graph_.root = compile(root_, "schema", 0);
    return std::move(graph_);
  }

 private:
  int32_t add(schema_node n) {
    graph_.nodes.push_back(std::move(n));
    return static_cast<int32_t>(graph_.nodes.size() - 1);
  }

  int32_t compile(const json& s, const std::string& where, int depth) {
    if (depth > 64)
      throw schema_error(where + " nests deeper than 64 levels");
    if (s.is_boolean() && s.get<bool>())
      return graph_.any;
    if (!s.is_object())
      throw schema_error(where + " must be a schema object");
    for (const auto& [key, value] : s.items())
      if (!known(key))
        throw schema_error(where + ": '" + key + "' is not supported");
    if (s.contains("$ref"))
      return reference(s, where, depth);
    if (s.contains("const")) {
      schema_node n{node_kind::literal};
      n.literals = {compact(s["const"])};
      return add(n);
    }
    if (s.contains("enum")) {
      const auto& values = s["enum"];
      if (!values.is_array() || values.empty() || values.size() > 64)
        throw schema_error(where + ": enum must be a list of 1 to 64 values");
      schema_node n{node_kind::literal};
      for (const auto& v : values)
        n.literals.push_back(compact(v));
      return add(n);
    }
    if (s.contains("anyOf")) {
      const auto& list = s["anyOf"];
      if (!list.is_array() || list.empty())
        throw schema_error(where + ": anyOf must be a non-empty list");
      schema_node n{node_kind::any_of};
      for (size_t i = 0; i < list.size(); ++i)
        n.alternatives.push_back(
            compile(list[i], where + ".anyOf[" + std::to_string(i) + "]", depth + 1));
      return add(n);
    }
    if (!s.contains("type"))
      return s.contains("properties") ? object(s, where, depth) : graph_.any;
    const auto& type = s["type"];
    if (type.is_string())
      return typed(type.get<std::string>(), s, where, depth);
    if (!type.is_array() || type.empty())
      throw schema_error(where + ": type must be a type name or a list of them");
    schema_node n{node_kind::any_of};
    for (const auto& t : type) {
      if (!t.is_string())
        throw schema_error(where + ": type must be a type name or a list of them");
      n.alternatives.push_back(typed(t.get<std::string>(), s, where, depth));
    }
    return add(n);
  }

  static bool known(const std::string& key) {
    static const std::set<std::string> keywords{
        "type",      "properties", "required", "additionalProperties",
        "items",     "minItems",   "maxItems", "minLength",
        "maxLength", "enum",       "const",    "anyOf",
        "$ref"};
    return keywords.count(key) != 0 || annotations().count(key) != 0;
  }

  int32_t typed(const std::string& type, const json& s, const std::string& where, int depth) {
    if (type == "object")
      return object(s, where, depth);
    if (type == "array")
      return array(s, where, depth);
    if (type == "string") {
      if (!s.contains("minLength") && !s.contains("maxLength"))
        return graph_.string;
      schema_node n{node_kind::string};
      n.min_length = bound(s, "minLength", 0, where);
      n.max_length = bound(s, "maxLength", UINT32_MAX, where);
      if (n.min_length > n.max_length)
        throw schema_error(where + ": minLength is above maxLength");
      return add(n);
    }
    if (type == "number")
      return graph_.number;
    if (type == "integer")
      return add({node_kind::integer});
    if (type == "boolean")
      return graph_.boolean;
    if (type == "null")
      return graph_.null;
    throw schema_error(where + ": type '" + type + "' is not a JSON Schema type");
  }

  int32_t object(const json& s, const std::string& where, int depth) {
    if (!s.contains("properties") || s["properties"].empty()) {
      if (s.contains("additionalProperties") && s["additionalProperties"].is_object())
        throw schema_error(where + ": 'additionalProperties' as a schema is not supported");
      if (s.contains("additionalProperties") && s["additionalProperties"] == false)
        return add({node_kind::object});  // no properties at all: {}
      return graph_.any_object;
    }
    const auto& props = s["properties"];
    if (!props.is_object())
      throw schema_error(where + ": properties must be an object");
    if (props.size() > max_schema_properties)
      throw schema_error(where + ": more than " + std::to_string(max_schema_properties)
                         + " properties");
    if (s.contains("additionalProperties") && s["additionalProperties"].is_object())
      throw schema_error(where + ": 'additionalProperties' as a schema is not supported");
    std::set<std::string> required;
    if (s.contains("required")) {
      if (!s["required"].is_array())
        throw schema_error(where + ": required must be a list of names");
      for (const auto& r : s["required"]) {
        if (!r.is_string() || !props.contains(r.get<std::string>()))
          throw schema_error(where + ": required names a property it does not list");
        required.insert(r.get<std::string>());
      }
    }
    schema_node n{node_kind::object};
    for (const auto& [name, sub] : props.items()) {
      schema_property p;
      p.name = name;
      const auto quoted = compact(json(name));
      p.key_text = quoted.substr(1, quoted.size() - 2);
      p.required = required.count(name) != 0;
      p.node = compile(sub, where + ".properties." + name, depth + 1);
      n.properties.push_back(std::move(p));
    }
    return add(std::move(n));
  }

  static uint32_t bound(const json& s, const char* key, uint32_t fallback,
                        const std::string& where) {
    if (!s.contains(key))
      return fallback;
    const auto& v = s[key];
    if (!v.is_number_unsigned() || v.get<uint64_t>() > 100000)
      throw schema_error(where + ": " + key + " must be an integer from 0 to 100000");
    return static_cast<uint32_t>(v.get<uint64_t>());
  }

  int32_t array(const json& s, const std::string& where, int depth) {
    schema_node n{node_kind::array};
    n.items = s.contains("items") ? compile(s["items"], where + ".items", depth + 1) : graph_.any;
    n.min_items = bound(s, "minItems", 0, where);
    n.max_items = bound(s, "maxItems", UINT32_MAX, where);
    if (n.min_items > n.max_items)
      throw schema_error(where + ": minItems is above maxItems");
    return add(n);
  }

  // A local reference, "#/$defs/name" or "#/definitions/name", compiled once (a recursive
  // schema refers to a node not filled in yet, which is fine: nodes are indices).
  int32_t reference(const json& s, const std::string& where, int depth) {
    const auto& ref = s["$ref"];
    if (!ref.is_string())
      throw schema_error(where + ": $ref must be a string");
    const auto text = ref.get<std::string>();
    if (auto it = refs_.find(text); it != refs_.end())
      return it->second;
    for (const char* section : {"$defs", "definitions"}) {
      const std::string prefix = std::string("#/") + section + "/";
      if (text.rfind(prefix, 0) == 0 && root_.contains(section)
          && root_[section].contains(text.substr(prefix.size()))) {
        // A placeholder any_of of one, so that a recursive reference finds its index.
        const auto at = add({node_kind::any_of});
        refs_[text] = at;
        const auto target = compile(root_[section][text.substr(prefix.size())], text, depth + 1);
        graph_.nodes[static_cast<size_t>(at)].alternatives = {target};
        return at;
      }
    }
    throw schema_error(where + ": $ref '" + text + "' is not a local $defs or definitions entry");
  }

  const json& root_;
  schema_graph graph_;
  std::map<std::string, int32_t> refs_;
};

}  // namespace

result<schema_graph> compile_json_schema(const std::string& schema_text) {
  json root;
  try {
    root = json::parse(schema_text, nullptr, true, false);
  } catch (const std::exception&) {
    return make_error(errc::invalid_argument, "the JSON schema is not JSON");
  }
  try {
    return compiler(root).run();
  } catch (const schema_error& e) {
    return make_error(errc::invalid_argument, std::string("json_schema: ") + e.what());
  }
}

schema_graph any_json_object_graph() {
  auto g = compiler(json::object()).run();
  g.root = g.any_object;
  return g;
}

}  // namespace adapterd::model
