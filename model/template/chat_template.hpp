#pragma once
// Hugging Face chat templates: the Jinja subset that tokenizer_config.json templates use,
// rendered as transformers' apply_chat_template renders them (trim_blocks, lstrip_blocks,
// loop controls). Statements: if/elif/else, for (with loop.*, else, break, continue), set
// (names and namespace attributes). Expressions: literals, lists, dicts, subscripts and
// slices, attributes, the usual operators, `x if c else y`, filters, `is` tests,
// raise_exception, namespace, range, and the string and dict methods templates call.
// Anything else is a clear error, never a wrong prompt.
#include <memory>
#include <string>
#include <vector>

#include "model/result.hpp"

namespace adapterd::model {

/// A call an assistant turn made (OpenAI's tool_calls[i]).
struct chat_tool_call {
  std::string id;
  std::string name;
  std::string arguments;  // JSON text; an object reaches the template as a dict, as vLLM does
};

struct chat_message {
  std::string role;
  std::string content;
  bool null_content = false;  // OpenAI's content: null (an assistant turn of tool calls only)
  std::vector<chat_tool_call> tool_calls;  // the key is absent from the message when empty
  std::string tool_call_id;                // a tool turn's; absent when empty
  std::string name;                        // absent when empty
};

struct chat_template_input {
  std::vector<chat_message> messages;
  bool add_generation_prompt = true;
  std::string bos_token;
  std::string eos_token;
  std::string tools_json;  // a JSON list of OpenAI tool objects; empty: tools is none
};

/// A template parsed once, rendered for each request. Immutable once compiled: any thread
/// may render it at the same time.
class chat_template {
 public:
  /// errc::invalid_argument for a syntax it does not support.
  static result<std::shared_ptr<const chat_template>> compile(const std::string& source);
  /// errc::invalid_argument when rendering fails (the template's own raise_exception, a
  /// value of the wrong type).
  result<std::string> render(const chat_template_input& input) const;

  struct program;  // the parsed statements
  explicit chat_template(std::shared_ptr<const program> p) : program_(std::move(p)) {}

 private:
  std::shared_ptr<const program> program_;
};

/// compile, then render: the prompt `source` makes of `input`.
result<std::string> render_chat_template(const std::string& source,
                                         const chat_template_input& input);

}  // namespace adapterd::model
