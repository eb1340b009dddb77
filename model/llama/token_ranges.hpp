#pragma once
// First-fit allocation of contiguous ranges in [0, capacity): which tokens of the KV pool
// each sequence owns. A sequence's cache must be contiguous (attention reads it as one
// slice), so a request is admitted only when a free range of its length exists.
#include <cstdint>
#include <map>
#include <optional>

namespace adapterd::model {

class token_ranges {
public:
  explicit token_ranges(int64_t capacity);

  /// The start of a free range of `length` tokens, now taken; nullopt when none is free.
  std::optional<int64_t> take(int64_t length);
  /// Returns the range that take() answered with `start`; neighbours merge again.
  void give_back(int64_t start);

  bool fits(int64_t length) const;
  int64_t capacity() const { return capacity_; }
  int64_t used() const { return used_; }
  int64_t largest_free() const;

private:
  int64_t capacity_;
  int64_t used_ = 0;
  std::map<int64_t, int64_t> free_;   // start -> length
  std::map<int64_t, int64_t> taken_;  // start -> length
};

}  // namespace adapterd::model
