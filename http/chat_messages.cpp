#include "http/chat_messages.hpp"

#include "http/tool_fields.hpp"

namespace adapterd::http {

namespace {

constexpr size_t max_content_parts = 256;
constexpr size_t max_tool_calls = 128;

// A message's content: a string or a list of text parts.
std::string content_text(fields& m, const std::string& where) {
  const auto* content = m.raw("content");
  if (content == nullptr)
    m.fail("content", "missing_field", "is required");
  if (content->is_string())
    return m.text("content", SIZE_MAX).value_or("");
  if (!content->is_array())
    m.fail("content", "invalid_type", "must be a string or a list of text parts");
  const auto* parts = m.array("content", max_content_parts);
  std::string text;
  for (size_t i = 0; i < parts->size(); ++i) {
    const auto& part = (*parts)[i];
    fields p(part, where + ".content[" + std::to_string(i) + "]");
    if (!part.is_object())
      m.fail("content", "invalid_type", "must be a string or a list of text parts");
    auto type = p.required_text("type");
    if (type != "text")
      p.fail("type", "unsupported",
             "'" + type.substr(0, 64) + "' is not supported (only text parts)");
    text += p.required_text("text", SIZE_MAX);
    p.refuse_unknown();
  }
  return text;
}

// An assistant turn's tool_calls: [{id, type: "function", function: {name, arguments}}].
std::vector<messages::tool_call> read_tool_calls(fields& m, const std::string& where) {
  const auto* list = m.array("tool_calls", max_tool_calls);
  std::vector<messages::tool_call> calls;
  if (list == nullptr)
    return calls;
  for (size_t i = 0; i < list->size(); ++i) {
    auto at = where + ".tool_calls[" + std::to_string(i) + "]";
    if (!(*list)[i].is_object())
      m.fail("tool_calls", "invalid_type", "must hold tool call objects");
    fields c((*list)[i], at);
    messages::tool_call call;
    call.id = c.text("id").value_or("");
    fields fn(function_of(c, false), at + ".function");
    call.name = fn.required_text("name", 64);
    call.arguments = fn.text("arguments", SIZE_MAX).value_or("{}");
    fn.refuse_unknown();
    calls.push_back(std::move(call));
  }
  return calls;
}

}  // namespace

std::vector<messages::chat_turn> read_messages(fields& f) {
  const auto* list = f.array("messages", max_messages);
  if (list == nullptr || list->empty())
    f.fail("messages", "missing_field", "must be a non-empty list");
  std::vector<messages::chat_turn> turns;
  for (size_t i = 0; i < list->size(); ++i) {
    const auto& item = (*list)[i];
    auto where = "messages[" + std::to_string(i) + "]";
    fields m(item, where);
    if (!item.is_object())
      f.fail("messages", "invalid_type", "must hold message objects");
    messages::chat_turn turn;
    turn.role = m.required_text("role");
    if (turn.role == "developer")  // OpenAI's newer name for the system message
      turn.role = "system";
    if (turn.role != "system" && turn.role != "user" && turn.role != "assistant"
        && turn.role != "tool") {
      if (turn.role == "function")
        m.fail("role", "unsupported", "'function' is OpenAI's deprecated form: use tool");
      m.fail("role", "out_of_range", "must be system, developer, user, assistant or tool");
    }
    if (turn.role == "assistant")
      turn.tool_calls = read_tool_calls(m, where);
    // An assistant turn that only calls tools may have no content (null).
    turn.null_content = !turn.tool_calls.empty() && m.raw("content") == nullptr;
    if (!turn.null_content)
      turn.content = content_text(m, where);
    if (turn.role == "tool")
      turn.tool_call_id = m.required_text("tool_call_id");
    turn.name = m.text("name").value_or("");
    if (m.raw("function_call"))
      m.fail("function_call", "unsupported", "is OpenAI's deprecated form: use tool_calls");
    m.known("refusal");
    m.refuse_unknown();
    turns.push_back(std::move(turn));
  }
  return turns;
}

}  // namespace adapterd::http
