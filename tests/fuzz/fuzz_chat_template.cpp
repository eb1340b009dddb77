// The chat-template lexer, parser and evaluator: the input is the template itself.
#include <cstdint>
#include <string>

#include "model/template/chat_template.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string tmpl(reinterpret_cast<const char*>(data), size);
  adapterd::model::chat_template_input input{
    {{"system", "be brief"}, {"user", "hello"}, {"assistant", "hi"}, {"user", "bye"}}, true, "<s>", "</s>"};
  auto rendered = adapterd::model::render_chat_template(tmpl, input);
  (void)rendered;
  return 0;
}
