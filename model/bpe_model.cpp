// The BPE model of tokenizer.json: vocabulary, ranked merges, byte fallback.
#include <algorithm>
#include <climits>
#include <cstdio>
#include <functional>
#include <optional>
#include <queue>

#include <nlohmann/json.hpp>

#include "model/tokenizer_parts.hpp"
#include "model/utf8.hpp"

namespace adapterd::model {

namespace {

uint64_t pair_of(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

// Words this long are rare and not worth a cache entry.
constexpr size_t max_cached_word_bytes = 256;
constexpr size_t max_cached_words = 16384;

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
    m->merges_.emplace(pair_of(left, right), merge_rule{rank++, joined});
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
  bool cacheable = word.size() <= max_cached_word_bytes;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_->mutex);
    if (auto it = cache_->words.find(word); it != cache_->words.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  auto start = out.size();
  merge_word(word, out);
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_->mutex);
    if (cache_->words.size() >= max_cached_words)
      cache_->words.clear();
    cache_->words.emplace(word, std::vector<int32_t>(out.begin() + static_cast<std::ptrdiff_t>(start), out.end()));
  }
}

void bpe_model::merge_word(const std::string& word, std::vector<int32_t>& out) const {
  // Hugging Face's algorithm: symbols in a linked list, candidate pairs in a min-queue by
  // (rank, position). A popped pair whose symbols changed since it was queued is stale.
  // Each merge is O(log n), so a word of n characters costs O(n log n), not O(n^2).
  struct symbol {
    int32_t id;  // -1: a character outside the vocabulary (it never merges)
    uint32_t start, len;
    int32_t prev, next;
  };
  struct candidate {
    int32_t rank;
    int32_t left;  // index of the left symbol
    int32_t joined;
    bool operator>(const candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  std::vector<symbol> symbols;
  for (size_t i = 0; i < word.size();) {
    size_t n = utf8::char_length(word, i);
    auto at = static_cast<int32_t>(symbols.size());
    symbols.push_back({token_to_id(word.substr(i, n)), static_cast<uint32_t>(i), static_cast<uint32_t>(n), at - 1, at + 1});
    i += n;
  }
  symbols.back().next = -1;
  auto candidate_at = [&](int32_t left) -> std::optional<candidate> {
    if (left < 0)
      return std::nullopt;
    const auto& l = symbols[static_cast<size_t>(left)];
    if (l.next < 0 || l.id < 0 || symbols[static_cast<size_t>(l.next)].id < 0)
      return std::nullopt;
    auto it = merges_.find(pair_of(l.id, symbols[static_cast<size_t>(l.next)].id));
    if (it == merges_.end())
      return std::nullopt;
    return candidate{it->second.rank, left, it->second.joined};
  };
  std::vector<candidate> initial;
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i)
    if (auto c = candidate_at(i))
      initial.push_back(*c);
  // Built at once (linear), not pushed one by one.
  std::priority_queue<candidate, std::vector<candidate>, std::greater<candidate>> queue(std::greater<candidate>(),
                                                                                         std::move(initial));
  auto consider = [&](int32_t left) {
    if (auto c = candidate_at(left))
      queue.push(*c);
  };
  while (!queue.empty()) {
    auto top = queue.top();
    queue.pop();
    auto& l = symbols[static_cast<size_t>(top.left)];
    if (l.len == 0 || l.next < 0)
      continue;
    auto& r = symbols[static_cast<size_t>(l.next)];
    auto now = merges_.find(pair_of(l.id, r.id));
    if (now == merges_.end() || now->second.joined != top.joined)
      continue;  // stale
    l.id = top.joined;
    l.len += r.len;
    l.next = r.next;
    r.len = 0;
    if (l.next >= 0)
      symbols[static_cast<size_t>(l.next)].prev = top.left;
    consider(l.prev);
    consider(top.left);
  }
  bool last_was_unk = false;
  for (int32_t at = 0; at >= 0; at = symbols[static_cast<size_t>(at)].next) {
    const auto& sym = symbols[static_cast<size_t>(at)];
    if (sym.id >= 0) {
      out.push_back(sym.id);
      last_was_unk = false;
      continue;
    }
    auto s = word.substr(sym.start, sym.len);
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
