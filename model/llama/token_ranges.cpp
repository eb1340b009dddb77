#include "model/llama/token_ranges.hpp"

#include <algorithm>

namespace adapterd::model {

token_ranges::token_ranges(int64_t capacity) : capacity_(std::max<int64_t>(0, capacity)) {
  if (capacity_ > 0)
    free_[0] = capacity_;
}

std::optional<int64_t> token_ranges::take(int64_t length) {
  if (length <= 0)
    return std::nullopt;
  for (auto it = free_.begin(); it != free_.end(); ++it) {
    if (it->second < length)
      continue;
    const int64_t start = it->first, rest = it->second - length;
    free_.erase(it);
    if (rest > 0)
      free_[start + length] = rest;
    taken_[start] = length;
    used_ += length;
    return start;
  }
  return std::nullopt;
}

void token_ranges::give_back(int64_t start) {
  auto it = taken_.find(start);
  if (it == taken_.end())
    return;
  int64_t length = it->second;
  taken_.erase(it);
  used_ -= length;
  auto next = free_.find(start + length);
  if (next != free_.end()) {
    length += next->second;
    free_.erase(next);
  }
  auto prev = free_.lower_bound(start);
  if (prev != free_.begin()) {
    --prev;
    if (prev->first + prev->second == start) {
      prev->second += length;
      return;
    }
  }
  free_[start] = length;
}

bool token_ranges::fits(int64_t length) const { return length > 0 && largest_free() >= length; }

int64_t token_ranges::largest_free() const {
  int64_t best = 0;
  for (const auto& [start, length] : free_)
    best = std::max(best, length);
  return best;
}

}  // namespace adapterd::model
