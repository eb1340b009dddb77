#pragma once
// Next-token choice with Hugging Face's semantics and order: logit bias, repetition
// penalty, OpenAI's presence and frequency penalties (as vLLM applies them: over the
// output so far, not the prompt), temperature, top-k, top-p, then a draw. temperature 0
// means greedy (argmax) over the biased and penalised logits.
#include <cstdint>
#include <optional>
#include <random>
#include <utility>
#include <vector>

#include "model/result.hpp"

namespace adapterd::model {

struct sampling_params {
  double temperature = 0.0;
  int top_k = 0;       // 0: off
  double top_p = 1.0;  // 1: off
  double repetition_penalty = 1.0;
  double presence_penalty = 0.0;   // -2..2: subtracted once from every token already output
  double frequency_penalty = 0.0;  // -2..2: subtracted per time a token was output
  std::vector<std::pair<int32_t, float>> logit_bias;  // token id, -100..100 added to its logit
  std::optional<uint64_t> seed;                       // same seed + same request = same output
};

/// Rejects values Hugging Face or OpenAI would reject (negative temperature, top_p outside
/// (0, 1], a penalty outside [-2, 2], a bias outside [-100, 100] or on a token id not below
/// `vocab`).
std::optional<error> validate(const sampling_params& p, int64_t vocab);

class sampler {
 public:
  explicit sampler(sampling_params params);
  /// `logits` is modified in place; `history` is every id so far (prompt and output),
  /// `output` the generated ones.
  int32_t next(std::vector<float>& logits, const std::vector<int32_t>& history,
               const std::vector<int32_t>& output);

 private:
  sampling_params params_;
  std::mt19937_64 rng_;
};

}  // namespace adapterd::model
