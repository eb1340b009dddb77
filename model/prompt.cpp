#include "model/prompt.hpp"

#include "model/tools/tool_syntax.hpp"

namespace adapterd::model {

namespace {

// Every token stands for at most max_token_bytes() bytes, so a text of more than
// max_tokens times that many bytes cannot fit, whatever its encoding.
std::optional<error> too_long(const tokenizer& tok, size_t bytes, int64_t max_tokens) {
  if (max_tokens <= 0)
    return std::nullopt;
  auto most = static_cast<size_t>(max_tokens) * tok.max_token_bytes();
  if (bytes <= most)
    return std::nullopt;
  return error{errc::context_overflow, "the prompt is " + std::to_string(bytes) + " bytes: more than the model's context of "
                                         + std::to_string(max_tokens) + " tokens can hold (at most "
                                         + std::to_string(most) + " bytes with this vocabulary)"};
}

}  // namespace

result<std::vector<int32_t>> encode_prompt(const tokenizer& tok, const std::string& text,
                                           const std::vector<chat_message>& chat,
                                           const std::string& tools_json, int64_t max_tokens) {
  if (chat.empty()) {
    if (auto e = too_long(tok, text.size(), max_tokens))
      return *e;
    return tok.encode(text, true);
  }
  size_t chat_bytes = tools_json.size();
  for (const auto& m : chat) {
    chat_bytes += m.content.size();
    for (const auto& call : m.tool_calls)
      chat_bytes += call.name.size() + call.arguments.size();
  }
  if (auto e = too_long(tok, chat_bytes, max_tokens))
    return *e;
  if (tok.chat_template().empty())
    return make_error(errc::invalid_argument,
                      "this model has no chat template (tokenizer_config.json has no chat_template): "
                      "use /v1/completions with a plain prompt");
  if (!tools_json.empty() && tool_syntax_of(tok.chat_template()) == tool_syntax::none)
    return make_error(errc::invalid_argument,
                      "this model's chat template does not take tools (it never reads 'tools'): "
                      "the model cannot be offered functions to call");
  chat_template_input input;
  input.messages = chat;
  input.bos_token = tok.bos_token();
  input.eos_token = tok.eos_token();
  input.tools_json = tools_json;
  const auto& compiled = tok.compiled_chat_template();
  if (!compiled)
    return compiled.err();
  auto rendered = (*compiled)->render(input);
  if (!rendered)
    return rendered.err();
  if (auto e = too_long(tok, rendered->size(), max_tokens))
    return *e;
  return tok.encode(*rendered, false);
}

}  // namespace adapterd::model
