#include "actors/core/chat_prompt.hpp"

namespace adapterd::actors {

std::vector<model::chat_message> chat_messages_of(const std::vector<messages::chat_turn>& turns) {
  std::vector<model::chat_message> chat;
  chat.reserve(turns.size());
  for (const auto& turn : turns) {
    model::chat_message m;
    m.role = turn.role;
    m.content = turn.content;
    m.null_content = turn.null_content;
    for (const auto& call : turn.tool_calls)
      m.tool_calls.push_back({call.id, call.name, call.arguments});
    m.tool_call_id = turn.tool_call_id;
    m.name = turn.name;
    chat.push_back(std::move(m));
  }
  return chat;
}

std::vector<messages::tool_call> tool_call_messages(
    const std::vector<model::chat_tool_call>& calls) {
  std::vector<messages::tool_call> out;
  out.reserve(calls.size());
  for (const auto& call : calls)
    out.push_back({call.id, call.name, call.arguments});
  return out;
}

}  // namespace adapterd::actors
