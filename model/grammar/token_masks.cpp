#include "model/grammar/token_masks.hpp"

#include <algorithm>

namespace adapterd::model {

namespace {

// Masks kept per schema; past this the cache starts over (a schema whose states never
// repeat, e.g. long enums of keys, should not grow without bound).
constexpr size_t max_cached_masks = 4096;
constexpr size_t max_cached_schemas = 32;

}  // namespace

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

void json_constraint::walk(int32_t node, const json_matcher& m, std::vector<uint8_t>& mask) const {
  for (const auto& [byte, child] : trie_->nodes()[static_cast<size_t>(node)].children) {
    json_matcher next = m;
    if (!next.feed_byte(byte))
      continue;
    for (auto id : trie_->nodes()[static_cast<size_t>(child)].ids)
      mask[static_cast<size_t>(id)] = 1;
    walk(child, next, mask);
  }
}

std::shared_ptr<const std::vector<uint8_t>> json_constraint::allowed(const json_matcher& m) {
  auto key = m.key();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (auto it = cache_.find(key); it != cache_.end())
      return it->second;
  }
  auto mask = std::make_shared<std::vector<uint8_t>>(trie_->vocab(), 0);
  walk(0, m, *mask);
  std::lock_guard<std::mutex> lock(mutex_);
  if (cache_.size() >= max_cached_masks)
    cache_.clear();
  cache_.emplace(std::move(key), mask);
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
