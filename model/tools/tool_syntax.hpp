#pragma once
// How a model family writes a tool call, told from its chat template: the template that
// shows the model its tools also shows it the form its calls take.
#include <string>

namespace adapterd::model {

enum class tool_syntax {
  none,         // the template never looks at `tools`: the model cannot be offered any
  hermes,       // Qwen2.5, Hermes: <tool_call>{"name": ..., "arguments": {...}}</tool_call>
  llama3_json,  // Llama 3.1/3.2: the answer is {"name": ..., "parameters": {...}}
  mistral,      // Mistral: [TOOL_CALLS] [{"name": ..., "arguments": {...}}, ...]
  json,         // another template that takes tools: the answer is a call object or a list
};

tool_syntax tool_syntax_of(const std::string& chat_template);

/// The key a call's arguments go under in that syntax ("parameters" for Llama 3).
const char* arguments_key(tool_syntax syntax);

}  // namespace adapterd::model
