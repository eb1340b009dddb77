#include "http/tool_fields.hpp"

#include <cctype>
#include <set>

namespace adapterd::http {

namespace {

using messages::tool_choice;

// OpenAI's rule for function names.
bool valid_function_name(const std::string& name) {
  if (name.empty() || name.size() > 64)
    return false;
  for (unsigned char c : name)
    if (!std::isalnum(c) && c != '_' && c != '-')
      return false;
  return true;
}

}  // namespace

const nlohmann::json& function_of(fields& wrapper, bool type_required) {
  auto type =
      type_required ? wrapper.required_text("type") : wrapper.text("type").value_or("function");
  if (type != "function")
    wrapper.fail("type", "unsupported", "must be \"function\" (the only kind of tool)");
  const auto* function = wrapper.object("function");
  if (function == nullptr)
    wrapper.fail("function", "missing_field", "is required");
  wrapper.refuse_unknown();
  return *function;
}

namespace {

// Each tool is {"type": "function", "function": {name, description, parameters, strict}}.
std::set<std::string> read_tool_list(fields& f, const nlohmann::json& list) {
  std::set<std::string> names;
  for (size_t i = 0; i < list.size(); ++i) {
    auto where = "tools[" + std::to_string(i) + "]";
    if (!list[i].is_object())
      f.fail("tools", "invalid_type", "must hold tool objects");
    fields t(list[i], where);
    fields fn(function_of(t, true), where + ".function");
    auto name = fn.required_text("name", 64);
    if (!valid_function_name(name))
      fn.fail("name", "invalid_value", "must be 1 to 64 letters, digits, '_' or '-'");
    if (!names.insert(name).second)
      fn.fail("name", "invalid_value", "'" + name + "' names two tools");
    fn.text("description", 1 << 20);
    fn.object("parameters");  // the grammar reads it when a call is forced
    fn.boolean("strict");     // forced calls follow the parameters exactly, strict or not
    fn.refuse_unknown();
  }
  return names;
}

}  // namespace

void read_tools(fields& f, const std::string& body, messages::generate_request& gen) {
  for (const char* name : {"functions", "function_call"})
    if (f.raw(name))
      f.fail(name, "unsupported", "is OpenAI's deprecated form: use tools and tool_choice");
  std::set<std::string> names;
  if (const auto* list = f.array("tools", max_tools); list && !list->empty())
    names = read_tool_list(f, *list);
  gen.parallel_tool_calls = f.boolean("parallel_tool_calls").value_or(true);
  gen.tool_mode = names.empty() ? tool_choice::none : tool_choice::automatic;
  if (const auto* choice = f.raw("tool_choice")) {
    if (choice->is_string()) {
      auto mode = choice->get<std::string>();
      if (mode == "none")
        gen.tool_mode = tool_choice::none;
      else if (mode == "auto" || mode == "required")
        gen.tool_mode = mode == "auto" ? tool_choice::automatic : tool_choice::required;
      else
        f.fail("tool_choice", "out_of_range", "must be none, auto, required or a function");
    } else if (choice->is_object()) {
      fields c(*choice, "tool_choice");
      fields fn(function_of(c, true), "tool_choice.function");
      gen.tool_name = fn.required_text("name", 64);
      fn.refuse_unknown();
      gen.tool_mode = tool_choice::named;
    } else {
      f.fail("tool_choice", "invalid_type", "must be a string or a function object");
    }
    if (gen.tool_mode != tool_choice::none && names.empty())
      f.fail("tool_choice", "invalid_value", "needs tools to choose from");
    if (gen.tool_mode == tool_choice::named && !names.count(gen.tool_name))
      f.fail("tool_choice", "invalid_value",
             "names '" + gen.tool_name + "', which is not among the tools");
  }
  if (gen.tool_mode == tool_choice::none)
    return;  // not offered: the template renders no tools and nothing is parsed out
  if (gen.format != messages::output_format::text)
    f.fail("response_format", "unsupported",
           "cannot be combined with tools (a call's arguments follow its parameters already)");
  gen.tools = ordered_text(body, {"tools"});
}

}  // namespace adapterd::http
