#include "model/text_generation.hpp"

namespace adapterd::model {

text_generation::text_generation(const base_model& model, std::vector<std::string> stops)
  : model_(model), decoder_(model.tok(), true), stops_(std::move(stops)) {}

result<std::unique_ptr<text_generation>> text_generation::start(const base_model& model,
                                                                const std::vector<int32_t>& prompt_ids,
                                                                const generation_params& params,
                                                                const lora_adapter* adapter) {
  std::unique_ptr<text_generation> t(new text_generation(model, params.stop));
  auto* self = t.get();
  auto g = model.begin(prompt_ids, params, adapter, [self](int32_t id) { return self->on_token(id); });
  if (!g)
    return g.err();
  t->tokens_ = std::move(*g);
  return t;
}

bool text_generation::on_token(int32_t id) {
  auto text = stops_.push(decoder_.push(id));
  pending_ += text;
  released_ += text;
  return !stops_.stopped();
}

std::string text_generation::take_text() {
  if (finished() && !flushed_) {
    flushed_ = true;
    auto rest = stops_.push(decoder_.finish());
    rest += stops_.finish();
    pending_ += rest;
    released_ += rest;
  }
  auto out = std::move(pending_);
  pending_.clear();
  return out;
}

generation_output text_generation::output() const {
  auto out = tokens_->output();
  out.text = stops_.stopped() ? released_ : model_.tok().decode(out.output_ids, true);
  return out;
}

}  // namespace adapterd::model
