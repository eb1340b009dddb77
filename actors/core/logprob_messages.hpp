#pragma once
// The model's token logprobs as messages: each id replaced by the bytes it stands for, so
// that the http layer, which has no tokenizer, can write OpenAI's token strings.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "messages/generation.hpp"
#include "model/llama/logprobs.hpp"
#include "model/tokenizer/tokenizer.hpp"

namespace adapterd::actors {

/// Output tokens' logprobs from index `from` on.
std::vector<messages::token_logprob> logprob_messages(const std::vector<model::token_logprob>& in,
                                                      size_t from, const model::tokenizer& tok);

/// One entry per prompt token: the first without a logprob, then prompt_logprobs in order.
std::vector<messages::token_logprob> prompt_logprob_messages(
    const std::vector<int32_t>& prompt_ids,
    const std::vector<model::token_logprob>& prompt_logprobs, const model::tokenizer& tok);

}  // namespace adapterd::actors
