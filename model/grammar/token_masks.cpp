#include "model/grammar/token_masks.hpp"

#include <algorithm>
#include <limits>

namespace adapterd::model {

namespace {

// Mask bytes kept per schema; past this the cache starts over (a schema whose states
// rarely repeat should not grow without bound): ~1700 masks of a 150k vocabulary.
constexpr size_t max_cached_bytes = size_t(32) << 20;
constexpr size_t max_cached_schemas = 32;

}  // namespace

bool token_mask::any() const {
  return std::any_of(words_.begin(), words_.end(), [](uint64_t w) { return w != 0; });
}

void token_mask::apply(float* logits, size_t n) const {
  constexpr float banned = -std::numeric_limits<float>::infinity();
  for (size_t w = 0; w * 64 < n; ++w) {
    const uint64_t word = w < words_.size() ? words_[w] : 0;
    if (word == ~uint64_t(0))
      continue;  // inside a string most words allow all 64
    const size_t end = std::min(n, w * 64 + 64);
    if (word == 0) {  // after a '{' or a ':' most words allow none
      std::fill(logits + w * 64, logits + end, banned);
      continue;
    }
    for (size_t id = w * 64; id < end; ++id)
      if ((word >> (id % 64) & 1) == 0)
        logits[id] = banned;
  }
}

vocab_trie::vocab_trie(const tokenizer& tok, size_t vocab) : nodes_(1), bytes_(vocab) {
  const auto known = std::min(vocab, tok.vocab_size());
  for (size_t id = 0; id < known; ++id) {
    const auto i = static_cast<int32_t>(id);
    if (tok.is_special(i))
      continue;
    bytes_[id] = tok.decode_bytes({i}, false);
    int32_t at = 0;
    for (unsigned char c : bytes_[id]) {
      auto& children = nodes_[static_cast<size_t>(at)].children;
      auto it = std::find_if(children.begin(), children.end(),
                             [&](const auto& e) { return e.first == c; });
      if (it != children.end()) {
        at = it->second;
        continue;
      }
      const auto next = static_cast<int32_t>(nodes_.size());
      children.emplace_back(c, next);
      nodes_.emplace_back();
      at = next;
    }
    if (at != 0)
      nodes_[static_cast<size_t>(at)].ids.push_back(i);
  }
}

json_constraint::json_constraint(std::shared_ptr<const vocab_trie> trie, schema_graph graph)
    : trie_(std::move(trie)), graph_(std::move(graph)) {}

void json_constraint::walk(int32_t node, const json_matcher& m, token_mask& mask) const {
  for (const auto& [byte, child] : trie_->nodes()[static_cast<size_t>(node)].children) {
    json_matcher next = m;
    if (!next.feed_byte(byte))
      continue;
    for (auto id : trie_->nodes()[static_cast<size_t>(child)].ids)
      mask.allow(id);
    walk(child, next, mask);
  }
}

std::shared_ptr<const token_mask> json_constraint::allowed(const json_matcher& m) {
  auto key = m.key();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (auto it = cache_.find(key); it != cache_.end())
      return it->second;
  }
  auto mask = std::make_shared<token_mask>(trie_->vocab());
  walk(0, m, *mask);
  std::lock_guard<std::mutex> lock(mutex_);
  if (cached_bytes_ + mask->bytes() > max_cached_bytes) {
    cache_.clear();
    cached_bytes_ = 0;
  }
  if (cache_.emplace(std::move(key), mask).second)
    cached_bytes_ += mask->bytes();
  return mask;
}

constraint_cache::constraint_cache(std::shared_ptr<const tokenizer> tok, size_t vocab)
    : tok_(std::move(tok)), vocab_(vocab) {}

result<std::shared_ptr<json_constraint>> constraint_cache::get(const std::string& schema_text) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto it = recent_.begin(); it != recent_.end(); ++it)
    if (it->first == schema_text) {
      auto found = *it;
      recent_.erase(it);
      recent_.push_back(found);
      return found.second;
    }
  auto graph = schema_text.empty() ? result<schema_graph>(any_json_object_graph())
                                   : compile_json_schema(schema_text);
  if (!graph)
    return graph.err();
  if (!trie_)
    trie_ = std::make_shared<const vocab_trie>(*tok_, vocab_);
  auto made = std::make_shared<json_constraint>(trie_, std::move(*graph));
  if (recent_.size() >= max_cached_schemas)
    recent_.erase(recent_.begin());
  recent_.emplace_back(schema_text, made);
  return made;
}

}  // namespace adapterd::model
