#pragma once
// The blocks of a paged KV pool: fixed runs of kv_block_tokens token slots. A sequence holds
// a table of blocks, not one contiguous range, so the pool cannot fragment: any free
// blocks serve any sequence.
#include <cstdint>
#include <optional>
#include <vector>

namespace adapterd::model {

constexpr int64_t kv_block_tokens = 16;

/// Blocks that hold `tokens` token slots.
constexpr int64_t kv_blocks_for(int64_t tokens) {
  return tokens <= 0 ? 0 : (tokens + kv_block_tokens - 1) / kv_block_tokens;
}

class kv_blocks {
 public:
  explicit kv_blocks(int64_t count);
  /// `n` free blocks (n >= 1), the most recently freed first; none when fewer are free.
  std::optional<std::vector<int32_t>> take(int64_t n);
  /// Frees blocks that take() gave; a block not taken is ignored, never freed twice.
  void give_back(const std::vector<int32_t>& blocks);
  int64_t count() const { return static_cast<int64_t>(taken_.size()); }
  int64_t free() const { return static_cast<int64_t>(free_.size()); }
  int64_t used() const { return count() - free(); }

 private:
  std::vector<int32_t> free_;  // a stack: block 0 on top at first
  std::vector<bool> taken_;
};

}  // namespace adapterd::model
