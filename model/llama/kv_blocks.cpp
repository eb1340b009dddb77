#include "model/llama/kv_blocks.hpp"

#include <algorithm>
#include <tuple>

namespace adapterd::model {

bool kv_blocks::key::operator<(const key& o) const {
  return std::tie(parent, parent_generation, owner, tokens)
         < std::tie(o.parent, o.parent_generation, o.owner, o.tokens);
}

kv_blocks::kv_blocks(int64_t count, bool prefix_cache)
    : prefix_cache_(prefix_cache), state_(static_cast<size_t>(count > 0 ? count : 0)) {
  for (int64_t b = this->count() - 1; b >= 0; --b)
    free_.push_back(static_cast<int32_t>(b));
}

kv_blocks::key kv_blocks::key_of(int32_t parent, const kv_owner& owner,
                                 const int32_t* tokens) const {
  key k{parent, parent < 0 ? 0u : state_[static_cast<size_t>(parent)].generation, owner, {}};
  std::copy(tokens, tokens + kv_block_tokens, k.tokens.begin());
  return k;
}

void kv_blocks::forget(int32_t b) {
  auto& s = state_[static_cast<size_t>(b)];
  if (!s.indexed)
    return;
  index_.erase(s.indexed_as);
  s.indexed = false;
  ++s.generation;
}

int32_t kv_blocks::take_one() {
  int32_t b;
  if (!free_.empty()) {
    b = free_.back();
    free_.pop_back();
  } else {
    b = idle_.begin()->second;
    idle_.erase(idle_.begin());
    forget(b);
  }
  state_[static_cast<size_t>(b)].users = 1;
  return b;
}

int64_t kv_blocks::cached_prefix(const kv_owner& owner, const int32_t* prompt,
                                 int64_t reusable) const {
  if (!prefix_cache_ || prompt == nullptr)
    return 0;
  int64_t found = 0;
  int32_t parent = -1;
  for (int64_t i = 0; i < reusable / kv_block_tokens; ++i) {
    auto at = index_.find(key_of(parent, owner, prompt + i * kv_block_tokens));
    if (at == index_.end())
      break;
    parent = at->second;
    found += kv_block_tokens;
  }
  return found;
}

std::optional<kv_blocks::taken> kv_blocks::take(int64_t tokens, const kv_owner& owner,
                                                const int32_t* prompt, int64_t reusable) {
  const int64_t n = kv_blocks_for(tokens);
  if (n < 1)
    return std::nullopt;
  taken out;
  int64_t idle_matched = 0;  // found blocks that now wait idle: taking them uses up what fits
  if (prefix_cache_ && prompt != nullptr) {
    const int64_t whole = std::min(reusable, tokens) / kv_block_tokens;
    int32_t parent = -1;
    for (int64_t i = 0; i < whole; ++i) {
      auto found = index_.find(key_of(parent, owner, prompt + i * kv_block_tokens));
      if (found == index_.end())
        break;
      parent = found->second;
      out.blocks.push_back(parent);
      idle_matched += state_[static_cast<size_t>(parent)].users == 0 ? 1 : 0;
    }
  }
  const int64_t fresh = n - static_cast<int64_t>(out.blocks.size());
  if (fresh + idle_matched > free())
    return std::nullopt;
  for (auto b : out.blocks) {
    auto& s = state_[static_cast<size_t>(b)];
    if (s.users++ == 0)
      idle_.erase({s.last_used, b});
  }
  if (prefix_cache_ && prompt != nullptr && reusable >= kv_block_tokens) {
    ++lookups_;
    hits_ += out.blocks.empty() ? 0 : 1;
  }
  out.reused_tokens = static_cast<int64_t>(out.blocks.size()) * kv_block_tokens;
  reused_tokens_ += static_cast<uint64_t>(out.reused_tokens);
  for (int64_t i = 0; i < fresh; ++i)
    out.blocks.push_back(take_one());
  return out;
}

int64_t kv_blocks::adopt(std::vector<int32_t>& blocks, const kv_owner& owner, const int32_t* prompt,
                         int64_t filled, int64_t reusable) {
  if (!prefix_cache_ || prompt == nullptr || filled % kv_block_tokens != 0)
    return filled;
  const int64_t whole =
      std::min<int64_t>(reusable / kv_block_tokens, static_cast<int64_t>(blocks.size()));
  int64_t i = filled / kv_block_tokens;
  // The chain goes through this sequence's own blocks so far: a cached block follows on
  // from them only if they are the cached ones (found at take(), or adopted).
  int32_t parent = i == 0 ? -1 : blocks[static_cast<size_t>(i - 1)];
  for (; i < whole; ++i) {
    auto found = index_.find(key_of(parent, owner, prompt + i * kv_block_tokens));
    if (found == index_.end())
      break;
    const int32_t b = found->second;
    auto& mine = blocks[static_cast<size_t>(i)];
    if (b != mine) {
      auto& s = state_[static_cast<size_t>(b)];
      if (s.users++ == 0)
        idle_.erase({s.last_used, b});
      give_back({mine});  // fresh, never written: back to the free blocks
      mine = b;
      reused_tokens_ += kv_block_tokens;
    }
    parent = b;
    filled += kv_block_tokens;
  }
  return filled;
}

std::optional<std::vector<int32_t>> kv_blocks::take_blocks(int64_t n) {
  if (n < 1)
    return std::nullopt;
  auto t = take(n * kv_block_tokens);
  if (!t)
    return std::nullopt;
  return std::move(t->blocks);
}

void kv_blocks::publish(const std::vector<int32_t>& blocks, const kv_owner& owner,
                        const int32_t* tokens, int64_t filled) {
  if (!prefix_cache_)
    return;
  const int64_t whole =
      std::min<int64_t>(filled / kv_block_tokens, static_cast<int64_t>(blocks.size()));
  int32_t parent = -1;
  for (int64_t i = 0; i < whole; ++i) {
    const auto b = blocks[static_cast<size_t>(i)];
    if (b < 0 || b >= count() || state_[static_cast<size_t>(b)].users == 0)
      return;  // not this sequence's
    auto k = key_of(parent, owner, tokens + i * kv_block_tokens);
    auto& s = state_[static_cast<size_t>(b)];
    if (s.indexed && !(s.indexed_as < k) && !(k < s.indexed_as)) {
      parent = b;  // found in the cache when the sequence began
      continue;
    }
    // The same prefix computed twice (two sequences at once): the first copy stays the
    // cached one, and the chain goes on through it, whose content is the same.
    auto [at, inserted] = index_.emplace(k, b);
    if (inserted && !s.indexed) {
      s.indexed = true;
      s.indexed_as = k;
    } else if (inserted) {
      index_.erase(at);  // this block is cached under another prefix already
      return;
    }
    parent = at->second;
  }
}

void kv_blocks::give_back(const std::vector<int32_t>& blocks) {
  for (auto it = blocks.rbegin(); it != blocks.rend(); ++it) {
    const auto b = *it;
    if (b < 0 || b >= count())
      continue;
    auto& s = state_[static_cast<size_t>(b)];
    if (s.users == 0 || --s.users > 0)
      continue;
    if (s.indexed) {
      s.last_used = ++clock_;
      idle_.insert({s.last_used, b});
    } else {
      free_.push_back(b);
    }
  }
}

bool kv_blocks::fits(int64_t tokens) const {
  return tokens > 0 && kv_blocks_for(tokens) <= free();
}

void kv_blocks::drop_cached() {
  for (const auto& [last_used, b] : idle_) {
    forget(b);
    free_.push_back(b);
  }
  idle_.clear();
  while (!index_.empty())
    forget(index_.begin()->second);
}

kv_block_stats kv_blocks::stats() const {
  kv_block_stats s;
  s.total = count();
  s.free = static_cast<int64_t>(free_.size());
  s.cached = static_cast<int64_t>(idle_.size());
  s.used = count() - s.free - s.cached;
  s.lookups = lookups_;
  s.hits = hits_;
  s.reused_tokens = reused_tokens_;
  return s;
}

}  // namespace adapterd::model
