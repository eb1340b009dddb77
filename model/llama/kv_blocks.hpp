#pragma once
// The blocks of a paged KV pool: fixed runs of kv_block_tokens token slots. A sequence holds
// a table of blocks, not one contiguous range, so the pool cannot fragment: any free
// blocks serve any sequence.
//
// The prefix cache lives here too. A full block is found again by what its keys and values
// depend on: the adapter that computed them (its content, never its id or path: an adapter
// re-trained or re-registered under the same name has other content), and every token up
// to the block's end, held as (the previous block, its generation, this block's tokens).
// A block that is recycled gets a new generation, so what was cached after it can never be
// found through it again. Blocks count their users; a cached block nobody uses stays until
// the pool needs it, then goes least recently used first.
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

namespace adapterd::model {

constexpr int64_t kv_block_tokens = 16;

/// Blocks that hold `tokens` token slots.
constexpr int64_t kv_blocks_for(int64_t tokens) {
  return tokens <= 0 ? 0 : (tokens + kv_block_tokens - 1) / kv_block_tokens;
}

/// What computed a sequence's keys and values besides its tokens: the adapter's content
/// hash; zero for the base model alone.
struct kv_owner {
  uint64_t high = 0, low = 0;
  bool operator<(const kv_owner& o) const { return high != o.high ? high < o.high : low < o.low; }
  bool operator==(const kv_owner& o) const { return high == o.high && low == o.low; }
};

struct kv_block_stats {
  int64_t total = 0, used = 0, cached = 0, free = 0;  // blocks; cached: kept, in no sequence
  uint64_t lookups = 0, hits = 0, reused_tokens = 0;  // sequences that asked, found, and tokens
};

class kv_blocks {
 public:
  explicit kv_blocks(int64_t count, bool prefix_cache = false);

  /// A sequence's table: blocks for `tokens` slots, the first of them the cached blocks of
  /// the longest cached prefix of `prompt` under `owner` (at most `reusable` tokens, whole
  /// blocks), the rest fresh.
  struct taken {
    std::vector<int32_t> blocks;
    int64_t reused_tokens = 0;
  };
  std::optional<taken> take(int64_t tokens, const kv_owner& owner = {},
                            const int32_t* prompt = nullptr, int64_t reusable = 0);
  /// The tokens take() would reuse now for this prompt (whole cached blocks), taking nothing.
  int64_t cached_prefix(const kv_owner& owner, const int32_t* prompt, int64_t reusable) const;
  /// A sequence whose first `filled` tokens are in `blocks` (filled a whole number of
  /// blocks) trades its next fresh blocks for cached ones, as far as the cache now holds
  /// `prompt` under `owner` (at most `reusable` tokens): another sequence computed them
  /// after this one began. Returns the tokens now filled.
  int64_t adopt(std::vector<int32_t>& blocks, const kv_owner& owner, const int32_t* prompt,
                int64_t filled, int64_t reusable);
  /// Plain blocks (n >= 1), the most recently freed first; none when fewer can be had.
  std::optional<std::vector<int32_t>> take_blocks(int64_t n);
  /// Makes the full blocks among the first `filled` tokens of a sequence (table `blocks`,
  /// tokens `tokens`) findable by later sequences.
  void publish(const std::vector<int32_t>& blocks, const kv_owner& owner, const int32_t* tokens,
               int64_t filled);
  /// A sequence is done with its blocks; a block not taken is ignored, never freed twice.
  void give_back(const std::vector<int32_t>& blocks);
  /// Whether `tokens` slots can be had now, evicting cached blocks if need be.
  bool fits(int64_t tokens) const;
  /// Forgets every cached prefix (POST /cleanup-memory); blocks in use stay with their sequences.
  void drop_cached();

  int64_t count() const { return static_cast<int64_t>(state_.size()); }
  int64_t free() const {
    return static_cast<int64_t>(free_.size() + idle_.size());
  }  // can be taken
  int64_t used() const { return count() - free(); }
  kv_block_stats stats() const;

 private:
  struct key {
    int32_t parent;  // the previous block, -1 for the first
    uint32_t parent_generation;
    kv_owner owner;
    std::array<int32_t, kv_block_tokens> tokens;
    bool operator<(const key& o) const;
  };
  struct block_state {
    int32_t users = 0;
    uint32_t generation = 0;
    bool indexed = false;
    key indexed_as{};
    uint64_t last_used = 0;
  };
  key key_of(int32_t parent, const kv_owner& owner, const int32_t* tokens) const;
  void forget(int32_t b);  // out of the index, a new generation
  int32_t take_one();      // a free block, else the least recently used cached one

  bool prefix_cache_;
  std::vector<block_state> state_;
  std::vector<int32_t> free_;                    // no users, not cached: a stack
  std::set<std::pair<uint64_t, int32_t>> idle_;  // no users, cached: by last use
  std::map<key, int32_t> index_;
  uint64_t clock_ = 0;
  uint64_t lookups_ = 0, hits_ = 0, reused_tokens_ = 0;
};

}  // namespace adapterd::model
