#pragma once
// Small helpers shared by the bench programs.
#include <algorithm>
#include <string>
#include <vector>

namespace adapterd::bench {

inline double percentile(std::vector<double> v, double p) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  auto rank = p / 100.0 * static_cast<double>(v.size() - 1);
  auto lo = static_cast<size_t>(rank);
  auto hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (rank - static_cast<double>(lo));
}

inline double median(const std::vector<double>& v) { return percentile(v, 50); }

}  // namespace adapterd::bench
