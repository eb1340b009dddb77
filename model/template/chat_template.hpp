#pragma once
// Hugging Face chat templates: the Jinja subset that tokenizer_config.json templates use,
// rendered as transformers' apply_chat_template renders them (trim_blocks, lstrip_blocks,
// loop controls). Statements: if/elif/else, for (with loop.*, else, break, continue), set
// (names and namespace attributes). Expressions: literals, lists, dicts, subscripts and
// slices, attributes, the usual operators, `x if c else y`, filters, `is` tests,
// raise_exception, namespace, range, and the string and dict methods templates call.
// Anything else is a clear error, never a wrong prompt.
#include <string>
#include <vector>

#include "model/result.hpp"

namespace adapterd::model {

struct chat_message {
  std::string role;
  std::string content;
};

struct chat_template_input {
  std::vector<chat_message> messages;
  bool add_generation_prompt = true;
  std::string bos_token;
  std::string eos_token;
};

/// The prompt `source` makes of `input`; errc::invalid_argument when the template cannot be
/// rendered (a syntax it does not support, or the template's own raise_exception).
result<std::string> render_chat_template(const std::string& source, const chat_template_input& input);

}  // namespace adapterd::model
