#include "model/llama/kv_blocks.hpp"

namespace adapterd::model {

kv_blocks::kv_blocks(int64_t count) : taken_(static_cast<size_t>(count > 0 ? count : 0), false) {
  for (int64_t b = this->count() - 1; b >= 0; --b)
    free_.push_back(static_cast<int32_t>(b));
}

std::optional<std::vector<int32_t>> kv_blocks::take(int64_t n) {
  if (n < 1 || n > free())
    return std::nullopt;
  std::vector<int32_t> out(free_.end() - n, free_.end());
  free_.resize(free_.size() - static_cast<size_t>(n));
  // in ascending order when they were free in a run, so a fresh pool hands out 0, 1, 2 ...
  std::vector<int32_t> ordered(out.rbegin(), out.rend());
  for (auto b : ordered)
    taken_[static_cast<size_t>(b)] = true;
  return ordered;
}

void kv_blocks::give_back(const std::vector<int32_t>& blocks) {
  for (auto it = blocks.rbegin(); it != blocks.rend(); ++it) {
    const auto b = *it;
    if (b < 0 || b >= count() || !taken_[static_cast<size_t>(b)])
      continue;
    taken_[static_cast<size_t>(b)] = false;
    free_.push_back(b);
  }
}

}  // namespace adapterd::model
