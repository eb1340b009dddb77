#pragma once
// Log-probabilities of a token among the logits it was drawn from: OpenAI's `logprobs` and
// `top_logprobs`, and teacher-forced ones for a prompt (`echo`).
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace adapterd::model {

struct token_logprob {
  int32_t id = 0;
  float logprob = 0;
  std::vector<std::pair<int32_t, float>> top;  // the most likely ids, most likely first
};

/// log softmax(logits)[id], and the `top` most likely ids with theirs (ties: lower id
/// first). Tokens at -inf (banned) have -inf; no logit at all finite gives -inf throughout.
token_logprob logprob_of(const float* logits, size_t vocab, int32_t id, uint32_t top);

}  // namespace adapterd::model
