#include "http/chat_messages.hpp"

namespace adapterd::http {

namespace {

constexpr size_t max_content_parts = 256;

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
    auto role = m.required_text("role");
    if (role == "developer")  // OpenAI's newer name for the system message
      role = "system";
    if (role != "system" && role != "user" && role != "assistant") {
      if (role == "tool" || role == "function")
        m.fail("role", "unsupported", "'" + role + "' is not supported (no tool calls)");
      m.fail("role", "out_of_range", "must be system, developer, user or assistant");
    }
    auto content = content_text(m, where);
    m.text("name");
    for (const char* name : {"tool_calls", "function_call", "tool_call_id"})
      if (m.raw(name))
        m.fail(name, "unsupported", "is not supported (no tool calls)");
    m.known("refusal");
    m.refuse_unknown();
    turns.push_back({role, std::move(content)});
  }
  return turns;
}

}  // namespace adapterd::http
