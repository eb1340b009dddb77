#pragma once
// Small helpers shared by the model tests.
#include <algorithm>
#include <cmath>
#include <vector>

#include "model/base_model.hpp"

namespace adapterd::test {

inline model::generation_params greedy(uint32_t n) {
  model::generation_params p;
  p.max_new_tokens = n;
  return p;
}

/// The largest |a[i] - b[i]| for i from `from` to the end of `a`.
inline float max_abs_diff(const std::vector<float>& a, const float* b, size_t from = 0) {
  float worst = 0;
  for (size_t i = from; i < a.size(); ++i)
    worst = std::max(worst, std::fabs(a[i] - b[i]));
  return worst;
}

inline float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b, size_t from = 0) {
  return max_abs_diff(a, b.data(), from);
}

}  // namespace adapterd::test
