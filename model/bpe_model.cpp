// The BPE model of tokenizer.json: vocabulary, ranked merges, byte fallback.
#include <climits>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "model/tokenizer_parts.hpp"
#include "model/utf8.hpp"

namespace adapterd::model {

namespace {

std::string pair_key(const std::string& a, const std::string& b) {
  std::string k;
  k.reserve(a.size() + b.size() + 1);
  return k.append(a).append(1, '\x01').append(b);
}

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
    m->merge_rank_.emplace(pair_key(a, b), rank++);
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
  std::vector<std::string> symbols = utf8::split_chars(word);
  // Merge the lowest-ranked adjacent pair (leftmost on ties) until none is left.
  for (;;) {
    int32_t best = INT_MAX;
    size_t at = 0;
    for (size_t i = 0; i + 1 < symbols.size(); ++i) {
      auto it = merge_rank_.find(pair_key(symbols[i], symbols[i + 1]));
      if (it != merge_rank_.end() && it->second < best) {
        best = it->second;
        at = i;
      }
    }
    if (best == INT_MAX)
      break;
    symbols[at] += symbols[at + 1];
    symbols.erase(symbols.begin() + static_cast<std::ptrdiff_t>(at) + 1);
  }
  bool last_was_unk = false;
  for (const auto& s : symbols) {
    if (auto id = token_to_id(s); id >= 0) {
      out.push_back(id);
      last_was_unk = false;
      continue;
    }
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
