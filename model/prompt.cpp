#include "model/prompt.hpp"

namespace adapterd::model {

result<std::vector<int32_t>> encode_prompt(const tokenizer& tok, const std::string& text,
                                           const std::vector<chat_message>& chat) {
  if (chat.empty())
    return tok.encode(text, true);
  if (tok.chat_template().empty())
    return make_error(errc::invalid_argument,
                      "this model has no chat template (tokenizer_config.json has no chat_template): "
                      "use /v1/completions with a plain prompt");
  chat_template_input input{chat, true, tok.bos_token(), tok.eos_token()};
  auto rendered = render_chat_template(tok.chat_template(), input);
  if (!rendered)
    return rendered.err();
  return tok.encode(*rendered, false);
}

}  // namespace adapterd::model
