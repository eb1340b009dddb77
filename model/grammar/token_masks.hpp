#pragma once
// Which tokens a constrained generation may take next: each token's bytes run through the
// json_matcher, over a trie of the vocabulary so that tokens sharing a prefix share the
// work and a dead prefix prunes all of them. The answer depends only on the matcher's
// state, so it is cached by state: inside one string, or one number, the mask is computed
// once for the whole schema's lifetime.
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "model/grammar/json_matcher.hpp"
#include "model/grammar/json_schema.hpp"
#include "model/tokenizer/tokenizer.hpp"

namespace adapterd::model {

/// The token ids allowed next, one bit each (a 150k vocabulary in 19 KB).
class token_mask {
 public:
  explicit token_mask(size_t vocab) : words_((vocab + 63) / 64, 0), vocab_(vocab) {}
  void allow(int32_t id) {
    words_[static_cast<size_t>(id) / 64] |= uint64_t(1) << (static_cast<size_t>(id) % 64);
  }
  bool allows(int32_t id) const {
    return id >= 0 && static_cast<size_t>(id) < vocab_
           && (words_[static_cast<size_t>(id) / 64] >> (static_cast<size_t>(id) % 64) & 1) != 0;
  }
  bool any() const;
  /// logits[id] = -inf for every id below n it does not allow (ids past its vocabulary too).
  void apply(float* logits, size_t n) const;
  size_t bytes() const { return words_.size() * sizeof(uint64_t); }

 private:
  std::vector<uint64_t> words_;
  size_t vocab_;
};

/// The bytes each token id stands for, as a trie (special tokens left out: they never
/// appear inside JSON).
class vocab_trie {
 public:
  vocab_trie(const tokenizer& tok, size_t vocab);
  struct node {
    std::vector<std::pair<uint8_t, int32_t>> children;  // byte, node index
    std::vector<int32_t> ids;                           // tokens that end here
  };
  const std::vector<node>& nodes() const { return nodes_; }
  const std::string& bytes(int32_t id) const { return bytes_[static_cast<size_t>(id)]; }
  size_t vocab() const { return bytes_.size(); }

 private:
  std::vector<node> nodes_;
  std::vector<std::string> bytes_;
};

/// One schema over one vocabulary. Thread-safe.
class json_constraint {
 public:
  json_constraint(std::shared_ptr<const vocab_trie> trie, schema_graph graph);
  json_matcher start() const { return json_matcher(graph_); }
  /// The tokens that may come next in m's state. End of sequence is the caller's: allowed
  /// where m.can_end().
  std::shared_ptr<const token_mask> allowed(const json_matcher& m);
  const std::string& bytes(int32_t id) const { return trie_->bytes(id); }
  size_t vocab() const { return trie_->vocab(); }

 private:
  void walk(int32_t node, const json_matcher& m, token_mask& mask) const;

  std::shared_ptr<const vocab_trie> trie_;
  schema_graph graph_;
  std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<const token_mask>> cache_;
  size_t cached_bytes_ = 0;
};

/// A model's constraints by schema text, and its trie, made on first use: requests that
/// send the same schema share one constraint and its cached masks.
class constraint_cache {
 public:
  constraint_cache(std::shared_ptr<const tokenizer> tok, size_t vocab);
  /// schema_text empty: any JSON object. errc::invalid_argument for a schema it refuses.
  result<std::shared_ptr<json_constraint>> get(const std::string& schema_text);

 private:
  std::shared_ptr<const tokenizer> tok_;
  size_t vocab_;
  std::mutex mutex_;
  std::shared_ptr<const vocab_trie> trie_;
  std::vector<std::pair<std::string, std::shared_ptr<json_constraint>>> recent_;  // newest last
};

}  // namespace adapterd::model
