#include "model/tools/tool_syntax.hpp"

namespace adapterd::model {

namespace {

bool has(const std::string& text, const char* what) {
  return text.find(what) != std::string::npos;
}

}  // namespace

tool_syntax tool_syntax_of(const std::string& chat_template) {
  if (!has(chat_template, "tools"))
    return tool_syntax::none;
  if (has(chat_template, "<tool_call>"))
    return tool_syntax::hermes;
  if (has(chat_template, "[TOOL_CALLS]"))
    return tool_syntax::mistral;
  if (has(chat_template, "<|python_tag|>") || has(chat_template, "\"parameters\": dictionary"))
    return tool_syntax::llama3_json;
  return tool_syntax::json;
}

const char* arguments_key(tool_syntax syntax) {
  return syntax == tool_syntax::llama3_json ? "parameters" : "arguments";
}

}  // namespace adapterd::model
