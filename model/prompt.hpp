#pragma once
// A request's prompt as token ids: plain text, or a chat in the model's own template.
#include <cstdint>
#include <string>
#include <vector>

#include "model/result.hpp"
#include "model/template/chat_template.hpp"
#include "model/tokenizer/tokenizer.hpp"

namespace adapterd::model {

/// Text: encoded with the tokenizer's special tokens (BOS where it adds one). Chat (when
/// `chat` is not empty): rendered with the tokenizer's chat template and a generation
/// prompt, then encoded without added special tokens, since the template writes its own,
/// as transformers' apply_chat_template(tokenize=True) does. A model without a template,
/// or a template that refuses the chat, is errc::invalid_argument.
///
/// `max_tokens` (> 0): a text longer than max_tokens tokens could possibly hold, by the
/// vocabulary's longest token, is errc::context_overflow before any encoding work.
///
/// `tools_json` (with chat): OpenAI's tools list, rendered by the template; a template that
/// never looks at tools is errc::invalid_argument, not a prompt that silently leaves them out.
result<std::vector<int32_t>> encode_prompt(const tokenizer& tok, const std::string& text,
                                           const std::vector<chat_message>& chat,
                                           const std::string& tools_json = "",
                                           int64_t max_tokens = 0);

}  // namespace adapterd::model
