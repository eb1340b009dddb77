#include "model/tools/tool_schema.hpp"

#include <nlohmann/json.hpp>

namespace adapterd::model {

namespace {

using json = nlohmann::ordered_json;

json parsed_tools(const std::string& tools_json) {
  auto tools = json::parse(tools_json, nullptr, false);
  return tools.is_array() ? tools : json::array();
}

std::string name_of(const json& tool) {
  const auto& f = tool.contains("function") ? tool["function"] : tool;
  return f.is_object() && f.contains("name") && f["name"].is_string() ? f["name"].get<std::string>()
                                                                      : std::string();
}

json call_schema(const json& tool, tool_syntax syntax) {
  auto f = tool.value("function", json::object());
  json params =
      f.is_object() && f.contains("parameters") ? f["parameters"] : json{{"type", "object"}};
  return json{
      {"type", "object"},
      {"properties", {{"name", {{"const", name_of(tool)}}}, {arguments_key(syntax), params}}},
      {"required", {"name", arguments_key(syntax)}},
      {"additionalProperties", false}};
}

}  // namespace

std::vector<std::string> tool_names(const std::string& tools_json) {
  std::vector<std::string> names;
  for (const auto& tool : parsed_tools(tools_json))
    names.push_back(name_of(tool));
  return names;
}

result<std::string> forced_call_schema(const std::string& tools_json, const std::string& name,
                                       bool parallel, tool_syntax syntax) {
  auto tools = parsed_tools(tools_json);
  if (!name.empty()) {
    for (const auto& tool : tools)
      if (name_of(tool) == name)
        return call_schema(tool, syntax).dump();
    return make_error(errc::invalid_argument,
                      "tool_choice: function '" + name + "' is not among the tools");
  }
  if (tools.empty())
    return make_error(errc::invalid_argument, "tool_choice: \"required\" needs at least one tool");
  json any = json::array();
  for (const auto& tool : tools)
    any.push_back(call_schema(tool, syntax));
  json list{{"type", "array"}, {"items", json{{"anyOf", any}}}, {"minItems", 1}};
  if (!parallel)
    list["maxItems"] = 1;
  return list.dump();
}

}  // namespace adapterd::model
