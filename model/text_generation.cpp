#include "model/text_generation.hpp"

namespace adapterd::model {

text_generation::text_generation(const base_model& model, std::vector<std::string> stops,
                                 std::optional<tool_call_parser> tools)
    : model_(model),
      decoder_(model.tok(), true),
      stops_(std::move(stops)),
      tools_(std::move(tools)) {}

result<std::unique_ptr<text_generation>> text_generation::start(
    const base_model& model, const std::vector<int32_t>& prompt_ids,
    const generation_params& params, const lora_adapter* adapter,
    std::optional<tool_call_parser> tools) {
  std::unique_ptr<text_generation> t(new text_generation(model, params.stop, std::move(tools)));
  auto* self = t.get();
  auto g = model.begin(prompt_ids, params, adapter, [self](int32_t id) { return self->on_token(id); });
  if (!g)
    return g.err();
  t->tokens_ = std::move(*g);
  return t;
}

bool text_generation::on_token(int32_t id) {
  release(stops_.push(decoder_.push(id)));
  return !stops_.stopped();
}

void text_generation::release(const std::string& text) {
  auto content = tools_ ? tools_->push(text) : text;
  pending_ += content;
  released_ += content;
}

void text_generation::flush() {
  if (!finished() || flushed_)
    return;
  flushed_ = true;
  auto rest = stops_.push(decoder_.finish());
  release(rest + stops_.finish());
  if (tools_) {
    auto content = tools_->finish();
    pending_ += content;
    released_ += content;
  }
}

std::string text_generation::take_text() {
  flush();
  auto out = std::move(pending_);
  pending_.clear();
  return out;
}

std::vector<chat_tool_call> text_generation::take_tool_calls() {
  flush();
  return tools_ ? tools_->take_calls() : std::vector<chat_tool_call>{};
}

std::vector<chat_tool_call> text_generation::tool_calls() const {
  return tools_ ? tools_->calls() : std::vector<chat_tool_call>{};
}

generation_output text_generation::output() {
  flush();
  auto out = tokens_->output();
  // The decode of the whole output is exact where streaming pieces might not be; stop
  // strings and tool calls cut it, and then the released text is the answer.
  out.text = stops_.stopped() || tools_ ? released_ : model_.tok().decode(out.output_ids, true);
  return out;
}

}  // namespace adapterd::model
