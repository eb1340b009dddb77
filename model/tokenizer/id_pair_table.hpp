#pragma once
// A value per pair of token ids, in one flat open-addressed array: a lookup is one or two
// cache lines, which matters when a long word's symbols crowd the cache.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace adapterd::model {

template <class Value>
class id_pair_table {
public:
  /// Keeps the first value given for a pair; false when the pair was already there.
  bool insert(int32_t left, int32_t right, Value value) {
    if ((size_ + 1) * 2 > slots_.size())  // at most half full, so probes stay short
      grow();
    auto key = key_of(left, right);
    for (std::size_t at = home_of(key);; at = (at + 1) & (slots_.size() - 1)) {
      if (slots_[at].key == key)
        return false;
      if (slots_[at].key == empty) {
        slots_[at] = {key, value};
        ++size_;
        return true;
      }
    }
  }

  const Value* find(int32_t left, int32_t right) const {
    if (slots_.empty())
      return nullptr;
    auto key = key_of(left, right);
    for (std::size_t at = home_of(key);; at = (at + 1) & (slots_.size() - 1)) {
      if (slots_[at].key == key)
        return &slots_[at].value;
      if (slots_[at].key == empty)
        return nullptr;
    }
  }

  std::size_t size() const { return size_; }

private:
  struct slot {
    uint64_t key = empty;
    Value value{};
  };
  static constexpr uint64_t empty = ~uint64_t{0};  // ids are non-negative int32s
  static uint64_t key_of(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }
  std::size_t home_of(uint64_t key) const { return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_); }

  void grow() {
    auto old = std::move(slots_);
    slots_.assign(old.empty() ? 16 : old.size() * 2, slot{});
    shift_ = 64;
    for (std::size_t n = slots_.size(); n > 1; n >>= 1)
      --shift_;
    size_ = 0;
    for (const auto& s : old)
      if (s.key != empty)
        insert(static_cast<int32_t>(s.key >> 32), static_cast<int32_t>(s.key & 0xffffffffu), s.value);
  }

  std::vector<slot> slots_;
  unsigned shift_ = 64;  // set by grow() before any lookup
  std::size_t size_ = 0;
};

}  // namespace adapterd::model
