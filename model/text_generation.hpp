#pragma once
// A generation seen as text: the ids of model::generation, decoded incrementally (never a
// broken UTF-8 character), with stop strings applied and, when tools are offered, the tool
// calls taken out of the text, so that a server can stream it.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/base_model.hpp"
#include "model/stop_filter.hpp"
#include "model/tokenizer/stream_decoder.hpp"
#include "model/tools/tool_call_parser.hpp"

namespace adapterd::model {

class text_generation {
public:
 /// Prefills `prompt_ids` and picks the first token (see base_model::begin). `model` and
 /// `adapter` must outlive the text_generation. With `tools`, the text is the content
 /// outside the calls that parser finds.
 static result<std::unique_ptr<text_generation>> start(
     const base_model& model, const std::vector<int32_t>& prompt_ids,
     const generation_params& params, const lora_adapter* adapter,
     std::optional<tool_call_parser> tools = std::nullopt);

 /// The token-level generation, for base_model::step.
 generation& tokens() { return *tokens_; }
 bool finished() const { return tokens_->finished(); }
 bool prefilling() const { return tokens_->prefilling(); }
 int64_t prefill_left() const { return tokens_->prefill_left(); }
 size_t tokens_generated() const { return tokens_->output().output_ids.size(); }
 /// Prompt tokens whose KV came from the prefix cache.
 int64_t cached_tokens() const { return tokens_->output().cached_tokens; }
 /// The text released since the last call; once finished, everything that is left.
 std::string take_text();
 /// Tool calls completed since the last call.
 std::vector<chat_tool_call> take_tool_calls();
 /// Every tool call of the output (once finished).
 std::vector<chat_tool_call> tool_calls() const;
 /// The final output: the text ends before a stop string, else it is the whole decode
 /// (with tools: the content outside the calls).
 generation_output output();

private:
 text_generation(const base_model& model, std::vector<std::string> stops,
                 std::optional<tool_call_parser> tools);
 bool on_token(int32_t id);
 void release(const std::string& text);
 void flush();

 const base_model& model_;
 stream_decoder decoder_;
 stop_filter stops_;
 std::optional<tool_call_parser> tools_;
 std::string pending_;   // released, not yet taken
 std::string released_;  // everything released so far
 bool flushed_ = false;
 std::unique_ptr<generation> tokens_;
};

}  // namespace adapterd::model
