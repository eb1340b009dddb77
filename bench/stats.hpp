#pragma once
// Small helpers shared by the bench programs.
#include <algorithm>
#include <sstream>
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

inline double mean(const std::vector<double>& v) {
  double sum = 0;
  for (double x : v)
    sum += x;
  return v.empty() ? 0 : sum / static_cast<double>(v.size());
}

inline double median(const std::vector<double>& v) { return percentile(v, 50); }

/// "a,b,c" -> {"a", "b", "c"}: the list options (--weights=f32,int8).
inline std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string part; std::getline(in, part, ',');)
    out.push_back(part);
  return out;
}

}  // namespace adapterd::bench
