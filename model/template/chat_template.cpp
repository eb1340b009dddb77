#include "model/template/chat_template.hpp"

#include <stdexcept>

#include "model/template/evaluator.hpp"
#include "model/template/parser.hpp"
#include "model/template/value.hpp"

namespace adapterd::model {

using namespace jinja;

struct chat_template::program {
  body top;
};

result<std::shared_ptr<const chat_template>> chat_template::compile(const std::string& source) {
  try {
    // Jinja drops one newline at the very end of a template (keep_trailing_newline=False).
    auto text = source;
    if (!text.empty() && text.back() == '\n')
      text.pop_back();
    auto parsed = std::make_shared<program>();
    parsed->top = parse_template(text);
    return std::make_shared<const chat_template>(std::move(parsed));
  } catch (const std::exception& e) {  // template_error, or a library error while parsing
    return make_error(errc::invalid_argument, std::string("chat template: ") + e.what());
  }
}

result<std::string> chat_template::render(const chat_template_input& input) const {
  try {
    uint64_t input_bytes = 0;
    for (const auto& m : input.messages)
      input_bytes += m.role.size() + m.content.size();
    // Room for any real template over any conversation: each message rendered a few dozen times.
    work_budget budget((uint64_t{256} << 20) + 64 * input_bytes);
    scope_stack s;
    s.frames.emplace_back();
    auto messages = value::new_list();
    for (const auto& m : input.messages) {
      auto msg = value::new_dict();
      msg.put("role", value::of(m.role));
      msg.put("content", value::of(m.content));
      messages.l->push_back(msg);
    }
    s.set("messages", messages);
    s.set("add_generation_prompt", value::of(input.add_generation_prompt));
    s.set("bos_token", value::of(input.bos_token));
    s.set("eos_token", value::of(input.eos_token));
    std::string out;
    loop_signal sig;
    run_body(program_->top, s, out, sig);
    return out;
  } catch (const std::exception& e) {  // template_error, or a library error while rendering
    return make_error(errc::invalid_argument, std::string("chat template: ") + e.what());
  }
}

result<std::string> render_chat_template(const std::string& source,
                                         const chat_template_input& input) {
  auto compiled = chat_template::compile(source);
  if (!compiled)
    return compiled.err();
  return (*compiled)->render(input);
}

}  // namespace adapterd::model
