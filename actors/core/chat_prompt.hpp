#pragma once
// A request's chat (messages/ data) as the model layer's chat template reads it, and the tool
// calls the model layer parsed as messages/ data. One place for both directions, used by the
// tokenizer pool and the batch scheduler alike.
#include <vector>

#include "messages/generation.hpp"
#include "model/template/chat_template.hpp"
#include "model/tools/tool_call_parser.hpp"

namespace adapterd::actors {

std::vector<model::chat_message> chat_messages_of(const std::vector<messages::chat_turn>& turns);

std::vector<messages::tool_call> tool_call_messages(
    const std::vector<model::chat_tool_call>& calls);

}  // namespace adapterd::actors
