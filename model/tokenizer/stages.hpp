#pragma once
// The pipeline stages of a Hugging Face tokenizer.json, each built from its JSON node.
// A stage this project does not implement is a load error that names it, so that a
// tokenizer is never silently different from Hugging Face's.
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "model/huge_page_allocator.hpp"
#include "model/result.hpp"
#include "model/tokenizer/id_pair_table.hpp"
#include "model/tokenizer/utf8.hpp"

namespace adapterd::model {

class normalizer {
public:
  virtual ~normalizer() = default;
  virtual std::string apply(std::string text) const = 0;
};

class pre_tokenizer {
public:
  using emit_fn = std::function<void(std::string&&)>;
  virtual ~pre_tokenizer() = default;
  /// Splits every piece further; byte-level stages also map bytes to their symbols.
  /// `first_segment`: the text is the first part of the input (not after an added token).
  std::vector<std::string> split(std::vector<std::string> pieces, bool first_segment) const;
  /// The same for one piece, handing each word to `emit` as it is found, so that a long
  /// text is never held as a list of all its words (that made 4 MB cost more than 4 x 1 MB).
  /// `first_piece`: the piece is the first one this stage is given.
  virtual void split_each(std::string piece, bool first_segment, bool first_piece, const emit_fn& emit) const = 0;
};

class token_decoder {
public:
  virtual ~token_decoder() = default;
  /// One step of Hugging Face's decode chain: token strings in, strings out. Joined, the
  /// result is the raw text (which may still hold ill-formed UTF-8 bytes).
  virtual std::vector<std::string> decode_chain(std::vector<std::string> tokens) const = 0;
};

/// null JSON gives a pass-through stage.
result<std::shared_ptr<const normalizer>> make_normalizer(const nlohmann::json& node);
result<std::shared_ptr<const pre_tokenizer>> make_pre_tokenizer(const nlohmann::json& node);
result<std::shared_ptr<const token_decoder>> make_decoder(const nlohmann::json& node);

/// "always" | "first" | "never", from either spelling of a Metaspace node.
std::string metaspace_scheme(const nlohmann::json& node);

/// GPT-2's reversible byte <-> printable-character table.
const std::string& byte_to_symbol(unsigned char byte);
/// Maps a whole byte string to its byte-level symbols.
std::string to_byte_symbols(const std::string& bytes);

class bpe_model {
public:
  static result<std::shared_ptr<const bpe_model>> load(const nlohmann::json& model_node);

  /// Appends the ids of one pre-tokenized word.
  void encode_word(const std::string& word, std::vector<int32_t>& out) const;
  const std::string* id_to_token(int32_t id) const;
  int32_t token_to_id(const std::string& token) const;  // -1 when absent
  size_t vocab_size() const { return id_to_token_.size(); }
  /// Bytes of the longest vocabulary entry as written (never fewer than the raw bytes it
  /// stands for: byte-level and metaspace symbols are at least as long as their bytes).
  size_t longest_token_bytes() const { return longest_token_bytes_; }

  struct merge_rule {
    int32_t rank;
    int32_t joined;  // the id of left + right
  };

  /// How merge_word orders its merges. Both give the same ids.
  enum class merge_order { automatic, heap, rank_buckets };
  /// Appends the ids of one word, merged in the given order and never from the cache.
  void merge_word(const std::string& word, std::vector<int32_t>& out, merge_order order) const;

private:
  // One per character of a word, in a linked list that merges shorten.
  struct symbol {
    int32_t id;  // unknown_char never merges; absorbed: merged into its left neighbour
    int32_t prev, next;
  };
  using symbol_list = std::vector<symbol, huge_page_allocator<symbol>>;
  static constexpr int32_t unknown_char = -1;
  static constexpr int32_t absorbed = -2;
  /// Calls fn(byte offset, id) for each UTF-8 character of text, the id being that
  /// character's own token (negative when the vocabulary has none).
  template <class Fn>
  void for_each_char(const std::string& text, Fn fn) const {
    for (size_t i = 0; i < text.size();) {
      size_t n = utf8::char_length(text, i);
      fn(i, token_to_id(text.substr(i, n)));
      i += n;
    }
  }
  /// Encodes a word from the word cache, merging it on a miss.
  void merge_cached(const std::string& word, std::vector<int32_t>& out) const;
  /// Records the character pairs inside a token that a merge makes.
  void note_joinable_chars(const std::string& joined);
  /// The word's characters as symbols.
  symbol_list split_symbols(const std::string& word) const;
  /// The merge of the symbol at left with its right neighbour, if there is one.
  const merge_rule* rule_after(const symbol_list& symbols, int32_t left) const;
  /// Applies a queued merge unless it went stale; true when it applied.
  bool apply_merge(symbol_list& symbols, int32_t left, const merge_rule& expected) const;
  void merge_by_heap(symbol_list& symbols) const;
  void merge_by_rank_buckets(symbol_list& symbols) const;

  // Words seen before, shared by every thread that encodes with this model.
  struct word_cache {
    std::mutex mutex;
    std::unordered_map<std::string, std::vector<int32_t>> words;
  };

  std::unordered_map<std::string, int32_t> vocab_;
  std::vector<std::string> id_to_token_;
  id_pair_table<merge_rule> merges_;
  // Pairs of single-character tokens that occur side by side in some vocabulary entry. No
  // merge can ever join two characters that are not, so a long word splits there exactly.
  id_pair_table<bool> joinable_chars_;
  std::vector<merge_rule> rules_by_rank_;
  std::unique_ptr<word_cache> cache_ = std::make_unique<word_cache>();
  bool ignore_merges_ = false;
  bool byte_fallback_ = false;
  int32_t unk_id_ = -1;
  bool fuse_unk_ = false;
  size_t longest_token_bytes_ = 0;
};

}  // namespace adapterd::model
