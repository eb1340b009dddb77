#pragma once
// Next-token choice with Hugging Face's semantics and order: repetition penalty,
// temperature, top-k, top-p, then a draw. temperature 0 means greedy (argmax).
#include <cstdint>
#include <optional>
#include <random>
#include <vector>

#include "model/result.hpp"

namespace adapterd::model {

struct sampling_params {
  double temperature = 0.0;
  int top_k = 0;        // 0: off
  double top_p = 1.0;   // 1: off
  double repetition_penalty = 1.0;
  std::optional<uint64_t> seed;  // same seed + same request = same output
};

/// Rejects values Hugging Face would reject (negative temperature, top_p outside (0, 1], ...).
std::optional<error> validate(const sampling_params& p);

class sampler {
public:
  explicit sampler(sampling_params params);
  /// `logits` is modified in place; `history` is every id so far (prompt and output).
  int32_t next(std::vector<float>& logits, const std::vector<int32_t>& history);

private:
  sampling_params params_;
  std::mt19937_64 rng_;
};

}  // namespace adapterd::model
