// The BPE model of tokenizer.json: vocabulary, ranked merges, byte fallback.
#include <algorithm>
#include <climits>
#include <cstdio>
#include <functional>
#include <optional>
#include <queue>

#include <nlohmann/json.hpp>

#include "model/tokenizer/stages.hpp"
#include "model/tokenizer/utf8.hpp"

namespace adapterd::model {

namespace {

// Words this long are rare and not worth a cache entry.
constexpr size_t max_cached_word_bytes = 256;
constexpr size_t max_cached_words = 16384;
// Below this many symbols the heap is as fast, and needs no bucket per rank.
constexpr size_t min_symbols_for_buckets = 4096;
constexpr size_t prefetch_distance = 16;

}  // namespace

result<std::shared_ptr<const bpe_model>> bpe_model::load(const nlohmann::json& node) {
  if (node.value("type", std::string("BPE")) != "BPE")
    return make_error(errc::invalid_model,
                      "unsupported tokenizer model: " + node.value("type", std::string{}));
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (node.contains(key) && !node[key].is_null() && !node[key].get<std::string>().empty())
      return make_error(errc::invalid_model, std::string("unsupported BPE option ") + key);
  if (node.contains("dropout") && node["dropout"].is_number() && node["dropout"].get<double>() > 0)
    return make_error(errc::invalid_model, "BPE dropout is not supported for inference");
  if (!node.contains("vocab") || !node["vocab"].is_object())
    return make_error(errc::invalid_model, "BPE model without a vocab object");

  auto m = std::make_shared<bpe_model>();
  for (const auto& [token, id] : node["vocab"].items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT_MAX)
      return make_error(errc::invalid_model, "vocab entry '" + token + "' has a bad id");
    auto i = id.get<int32_t>();
    m->vocab_[token] = i;
    m->longest_token_bytes_ = std::max(m->longest_token_bytes_, token.size());
    if (static_cast<size_t>(i) >= m->id_to_token_.size())
      m->id_to_token_.resize(static_cast<size_t>(i) + 1);
    m->id_to_token_[static_cast<size_t>(i)] = token;
  }
  int32_t rank = 0;
  for (const auto& merge : node.value("merges", nlohmann::json::array())) {
    std::string a, b;
    if (merge.is_string()) {  // "a b"
      auto s = merge.get<std::string>();
      auto space = s.find(' ', 1);
      if (space == std::string::npos)
        return make_error(errc::invalid_model, "malformed merge '" + s + "'");
      a = s.substr(0, space);
      b = s.substr(space + 1);
    } else if (merge.is_array() && merge.size() == 2) {  // ["a", "b"]
      a = merge[0].get<std::string>();
      b = merge[1].get<std::string>();
    } else {
      return make_error(errc::invalid_model, "malformed merge " + merge.dump());
    }
    // As Hugging Face's tokenizers: both parts and their join must be in the vocabulary.
    auto left = m->token_to_id(a), right = m->token_to_id(b), joined = m->token_to_id(a + b);
    if (left < 0 || right < 0 || joined < 0)
      return make_error(errc::invalid_model, "merge '" + a + " " + b + "' names a token outside the vocabulary");
    // A repeated pair keeps its first rank; the later rank is never looked up.
    m->merges_.insert(left, right, merge_rule{rank, joined});
    m->rules_by_rank_.push_back({rank++, joined});
    m->note_joinable_chars(a + b);
  }
  m->ignore_merges_ = node.value("ignore_merges", false);
  m->byte_fallback_ = node.value("byte_fallback", false);
  m->fuse_unk_ = node.value("fuse_unk", false);
  if (node.contains("unk_token") && node["unk_token"].is_string())
    m->unk_id_ = m->token_to_id(node["unk_token"].get<std::string>());
  return std::shared_ptr<const bpe_model>(m);
}

const std::string* bpe_model::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size() || id_to_token_[id].empty())
    return nullptr;
  return &id_to_token_[static_cast<size_t>(id)];
}

int32_t bpe_model::token_to_id(const std::string& token) const {
  auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

void bpe_model::encode_word(const std::string& word, std::vector<int32_t>& out) const {
  if (word.empty())
    return;
  if (ignore_merges_) {
    if (auto id = token_to_id(word); id >= 0) {
      out.push_back(id);
      return;
    }
  }
  if (word.size() <= max_cached_word_bytes) {
    merge_cached(word, out);
    return;
  }
  // A long word splits exactly between two characters that no merge can join. Sentence-
  // piece-style tokenizers see a whole prompt as one word; its pieces are then small and
  // mostly cached, instead of millions of symbols that crowd the caches.
  size_t piece_start = 0;
  int32_t previous = unknown_char;
  for_each_char(word, [&](size_t at, int32_t id) {
    if (previous >= 0 && id >= 0 && joinable_chars_.find(previous, id) == nullptr) {
      merge_cached(word.substr(piece_start, at - piece_start), out);
      piece_start = at;
    }
    previous = id;
  });
  merge_cached(word.substr(piece_start), out);
}

void bpe_model::merge_cached(const std::string& word, std::vector<int32_t>& out) const {
  bool cacheable = word.size() <= max_cached_word_bytes;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_->mutex);
    if (auto it = cache_->words.find(word); it != cache_->words.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  auto start = out.size();
  merge_word(word, out, merge_order::automatic);
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_->mutex);
    if (cache_->words.size() >= max_cached_words)
      cache_->words.clear();
    cache_->words.emplace(word, std::vector<int32_t>(out.begin() + static_cast<std::ptrdiff_t>(start), out.end()));
  }
}

void bpe_model::note_joinable_chars(const std::string& joined) {
  int32_t previous = unknown_char;
  for_each_char(joined, [&](size_t, int32_t id) {
    if (previous >= 0 && id >= 0)
      joinable_chars_.insert(previous, id, true);
    previous = id;
  });
}

bpe_model::symbol_list bpe_model::split_symbols(const std::string& word) const {
  symbol_list symbols;
  symbols.reserve(word.size());
  for_each_char(word, [&](size_t, int32_t id) {
    auto at = static_cast<int32_t>(symbols.size());
    symbols.push_back({id < 0 ? unknown_char : id, at - 1, at + 1});
  });
  symbols.back().next = -1;
  return symbols;
}

const bpe_model::merge_rule* bpe_model::rule_after(const symbol_list& symbols, int32_t left) const {
  if (left < 0)
    return nullptr;
  const auto& l = symbols[static_cast<size_t>(left)];
  if (l.next < 0 || l.id < 0)
    return nullptr;
  auto right_id = symbols[static_cast<size_t>(l.next)].id;
  return right_id < 0 ? nullptr : merges_.find(l.id, right_id);
}

bool bpe_model::apply_merge(symbol_list& symbols, int32_t left, const merge_rule& expected) const {
  // Stale when either symbol changed since it was queued (an absorbed left has no rule).
  const auto* now = rule_after(symbols, left);
  if (now == nullptr || now->rank != expected.rank)
    return false;
  auto& l = symbols[static_cast<size_t>(left)];
  auto& r = symbols[static_cast<size_t>(l.next)];
  l.id = expected.joined;
  l.next = r.next;
  r.id = absorbed;
  if (l.next >= 0)
    symbols[static_cast<size_t>(l.next)].prev = left;
  return true;
}

void bpe_model::merge_by_heap(symbol_list& symbols) const {
  // Hugging Face's algorithm: candidate pairs in a min-queue by (rank, position). Each merge
  // is O(log n), so a word of n characters costs O(n log n), not O(n^2).
  struct candidate {
    merge_rule rule;
    int32_t left;
    bool operator>(const candidate& o) const {
      return rule.rank != o.rule.rank ? rule.rank > o.rule.rank : left > o.left;
    }
  };
  std::vector<candidate> initial;
  for (int32_t at = 0; at >= 0; at = symbols[static_cast<size_t>(at)].next)
    if (const auto* rule = rule_after(symbols, at))
      initial.push_back({*rule, at});
  // Built at once (linear), not pushed one by one.
  std::priority_queue<candidate, std::vector<candidate>, std::greater<candidate>> queue(std::greater<candidate>(),
                                                                                         std::move(initial));
  auto consider = [&](int32_t left) {
    if (const auto* rule = rule_after(symbols, left))
      queue.push({*rule, left});
  };
  while (!queue.empty()) {
    auto top = queue.top();
    queue.pop();
    if (!apply_merge(symbols, top.left, top.rule))
      continue;
    consider(symbols[static_cast<size_t>(top.left)].prev);
    consider(top.left);
  }
}

void bpe_model::merge_by_rank_buckets(symbol_list& symbols) const {
  // The heap's merges in the heap's order, in linear time and mostly in position order
  // (cache-friendly for words of millions of symbols). Ranks run upwards, one bucket each;
  // a bucket is sorted by position when its turn comes. Trained tables mostly create pairs
  // that rank above the merge that made them, which go to later buckets. A pair that ranks
  // at or below the running rank goes to a small heap that is merged with the running
  // bucket by (rank, position), so the order is the heap's in every case.
  struct urgent_pair {
    int32_t rank, left;
    bool operator>(const urgent_pair& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  // One array of left positions per rank: a bucket is read sequentially, never chased.
  using positions = std::vector<int32_t, huge_page_allocator<int32_t>>;
  std::vector<positions> buckets(rules_by_rank_.size());
  std::priority_queue<urgent_pair, std::vector<urgent_pair>, std::greater<urgent_pair>> urgent;
  int32_t running_rank = -1;
  auto consider = [&](int32_t left) {
    const auto* rule = rule_after(symbols, left);
    if (rule == nullptr)
      return;
    if (rule->rank <= running_rank) {
      urgent.push({rule->rank, left});
      return;
    }
    buckets[static_cast<size_t>(rule->rank)].push_back(left);
  };
  auto merge_at = [&](int32_t left, const merge_rule& rule) {
    if (!apply_merge(symbols, left, rule))
      return;
    consider(symbols[static_cast<size_t>(left)].prev);
    consider(left);
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i)
    consider(i);
  for (size_t rank = 0; rank < buckets.size(); ++rank) {
    if (buckets[rank].empty())
      continue;
    // Nothing joins this bucket while it runs (lower or equal ranks go to the urgent heap).
    auto lefts = std::move(buckets[rank]);
    if (!std::is_sorted(lefts.begin(), lefts.end()))  // pushed mostly in position order
      std::sort(lefts.begin(), lefts.end());
    running_rank = static_cast<int32_t>(rank);
    size_t next = 0;
    while (next < lefts.size() || !urgent.empty()) {
      // The lower (rank, position) of the two goes first. A tie is one pair queued twice,
      // and the second is stale.
      urgent_pair from_bucket{running_rank, next < lefts.size() ? lefts[next] : INT32_MAX};
      if (!urgent.empty() && (next >= lefts.size() || from_bucket > urgent.top())) {
        auto top = urgent.top();
        urgent.pop();
        merge_at(top.left, rules_by_rank_[static_cast<size_t>(top.rank)]);
      } else {
        // A bucket's positions are known ahead: fetching their symbols early hides the
        // memory latency of a word far larger than the caches.
        if (next + prefetch_distance < lefts.size())
          __builtin_prefetch(&symbols[static_cast<size_t>(lefts[next + prefetch_distance])]);
        merge_at(lefts[next++], rules_by_rank_[rank]);
      }
    }
  }
}

void bpe_model::merge_word(const std::string& word, std::vector<int32_t>& out, merge_order order) const {
  if (word.empty())
    return;
  auto symbols = split_symbols(word);
  if (order == merge_order::automatic)
    order = symbols.size() >= min_symbols_for_buckets ? merge_order::rank_buckets : merge_order::heap;
  if (order == merge_order::heap)
    merge_by_heap(symbols);
  else
    merge_by_rank_buckets(symbols);
  bool last_was_unk = false;
  size_t offset = 0;  // of the symbol in word: a token's text is the characters it joined
  for (int32_t at = 0; at >= 0; at = symbols[static_cast<size_t>(at)].next) {
    const auto& sym = symbols[static_cast<size_t>(at)];
    if (sym.id >= 0) {
      out.push_back(sym.id);
      offset += id_to_token_[static_cast<size_t>(sym.id)].size();
      last_was_unk = false;
      continue;
    }
    // Unknown characters never merge: this symbol is one character.
    auto s = word.substr(offset, utf8::char_length(word, offset));
    offset += s.size();
    if (byte_fallback_) {
      bool all = true;
      std::vector<int32_t> bytes;
      for (unsigned char c : s) {
        char name[8];
        std::snprintf(name, sizeof name, "<0x%02X>", c);
        auto id = token_to_id(name);
        if (id < 0) {
          all = false;
          break;
        }
        bytes.push_back(id);
      }
      if (all) {
        out.insert(out.end(), bytes.begin(), bytes.end());
        last_was_unk = false;
        continue;
      }
    }
    if (unk_id_ >= 0 && !(fuse_unk_ && last_was_unk))
      out.push_back(unk_id_);
    last_was_unk = true;
  }
}

}  // namespace adapterd::model
