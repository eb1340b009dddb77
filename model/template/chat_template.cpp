#include "model/template/chat_template.hpp"

#include <stdexcept>

#include <nlohmann/json.hpp>

#include "model/template/evaluator.hpp"
#include "model/template/parser.hpp"
#include "model/template/value.hpp"

namespace adapterd::model {

using namespace jinja;

namespace {

value json_text_value(const std::string& text) {
  auto j = nlohmann::ordered_json::parse(text, nullptr, false);
  if (j.is_discarded())
    throw template_error("tools are not JSON");
  return from_json_value(j);
}

// As OpenAI sends it, with the arguments parsed when they are a JSON object (vLLM's way:
// templates write them with tojson and loop over their items).
value tool_call_value(const chat_tool_call& call) {
  auto function = value::new_dict();
  function.put("name", value::of(call.name));
  auto args = nlohmann::ordered_json::parse(call.arguments, nullptr, false);
  function.put("arguments", args.is_object() ? from_json_value(args) : value::of(call.arguments));
  auto out = value::new_dict();
  if (!call.id.empty())
    out.put("id", value::of(call.id));
  out.put("type", value::of(std::string("function")));
  out.put("function", function);
  return out;
}

value message_value(const chat_message& m) {
  auto msg = value::new_dict();
  msg.put("role", value::of(m.role));
  msg.put("content", m.null_content ? value::null() : value::of(m.content));
  if (!m.tool_calls.empty()) {
    auto calls = value::new_list();
    for (const auto& call : m.tool_calls)
      calls.push(tool_call_value(call));
    msg.put("tool_calls", calls);
  }
  if (!m.tool_call_id.empty())
    msg.put("tool_call_id", value::of(m.tool_call_id));
  if (!m.name.empty())
    msg.put("name", value::of(m.name));
  return msg;
}

}  // namespace

struct chat_template::program {
  body top;
};

result<std::shared_ptr<const chat_template>> chat_template::compile(const std::string& source) {
  try {
    // Jinja drops one newline at the very end of a template (keep_trailing_newline=False).
    auto text = source;
    if (!text.empty() && text.back() == '\n')
      text.pop_back();
    auto parsed = std::make_shared<program>();
    parsed->top = parse_template(text);
    return std::make_shared<const chat_template>(std::move(parsed));
  } catch (const std::exception& e) {  // template_error, or a library error while parsing
    return make_error(errc::invalid_argument, std::string("chat template: ") + e.what());
  }
}

result<std::string> chat_template::render(const chat_template_input& input) const {
  try {
    uint64_t input_bytes = input.tools_json.size();
    for (const auto& m : input.messages) {
      input_bytes += m.role.size() + m.content.size();
      for (const auto& call : m.tool_calls)
        input_bytes += call.name.size() + call.arguments.size();
    }
    // Room for any real template over any conversation: each message rendered a few dozen times.
    work_budget budget((uint64_t{256} << 20) + 64 * input_bytes);
    scope_stack s;
    s.frames.emplace_back();
    auto messages = value::new_list();
    for (const auto& m : input.messages)
      messages.push(message_value(m));
    s.set("messages", messages);
    // transformers passes tools=None when a request has none.
    s.set("tools", input.tools_json.empty() ? value::null() : json_text_value(input.tools_json));
    s.set("add_generation_prompt", value::of(input.add_generation_prompt));
    s.set("bos_token", value::of(input.bos_token));
    s.set("eos_token", value::of(input.eos_token));
    std::string out;
    loop_signal sig;
    run_body(program_->top, s, out, sig);
    return out;
  } catch (const std::exception& e) {  // template_error, or a library error while rendering
    return make_error(errc::invalid_argument, std::string("chat template: ") + e.what());
  }
}

result<std::string> render_chat_template(const std::string& source,
                                         const chat_template_input& input) {
  auto compiled = chat_template::compile(source);
  if (!compiled)
    return compiled.err();
  return (*compiled)->render(input);
}

}  // namespace adapterd::model
