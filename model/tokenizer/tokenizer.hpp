#pragma once
// A Hugging Face tokenizer loaded from tokenizer.json (+ tokenizer_config.json): added and
// special tokens are matched first, then normalizer -> pre-tokenizer -> BPE, then the
// post-processor's template (BOS). No libtorch here.
#include <cstdint>
#include <array>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "model/result.hpp"
#include "model/template/chat_template.hpp"

namespace adapterd::model {

class normalizer;
class pre_tokenizer;
class token_decoder;
class bpe_model;

struct added_token {
  int32_t id = -1;
  std::string content;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
};

class tokenizer {
public:
  /// Reads `dir`/tokenizer.json and, when present, `dir`/tokenizer_config.json.
  static result<std::shared_ptr<const tokenizer>> load(const std::string& dir);
  /// The same from file contents; `config_json` may be empty.
  static result<std::shared_ptr<const tokenizer>> from_json(const std::string& tokenizer_json,
                                                            const std::string& config_json);

  std::vector<int32_t> encode(const std::string& text, bool add_special_tokens) const;
  /// UTF-8 text; ill-formed byte sequences become U+FFFD as in Hugging Face.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const;
  /// The raw bytes the ids stand for (streaming decoders cut them at character borders).
  std::string decode_bytes(const std::vector<int32_t>& ids, bool skip_special_tokens) const;

  /// One past the largest id of the vocabulary and the added tokens.
  size_t vocab_size() const { return vocab_size_; }
  bool is_special(int32_t id) const;
  /// The most bytes of text one token can stand for (its longest vocabulary or added
  /// token, in raw bytes; at least 4 for byte fallback and unknown characters).
  size_t max_token_bytes() const { return max_token_bytes_; }
  std::optional<int32_t> token_id(const std::string& token) const;
  /// The vocabulary's text of `id` (byte-level form, e.g. "Ġhello"); empty when unknown.
  std::string token_text(int32_t id) const;
  std::optional<int32_t> eos_id() const { return eos_id_; }
  /// tokenizer_config.json's chat_template (its "default" one when it names several),
  /// bos_token and eos_token; empty when absent.
  const std::string& chat_template() const { return chat_template_; }
  /// That template parsed once at load, or why it could not be (null with no template).
  const result<std::shared_ptr<const model::chat_template>>& compiled_chat_template() const {
    return compiled_template_;
  }
  const std::string& bos_token() const { return bos_token_; }
  const std::string& eos_token() const { return eos_token_; }

private:
  struct segment {
    std::string text;
    int32_t added_id = -1;
  };
  std::vector<segment> split_added(const std::string& text) const;

  std::shared_ptr<const normalizer> normalizer_;
  std::shared_ptr<const pre_tokenizer> pre_tokenizer_;
  std::shared_ptr<const bpe_model> model_;
  std::shared_ptr<const token_decoder> decoder_;
  std::vector<added_token> added_;                  // longest first
  std::unordered_map<int32_t, size_t> added_by_id_;  // id -> index into added_
  // Indices into added_ by their first byte, longest first: a position is tried only
  // against the added tokens that can start there.
  std::array<std::vector<size_t>, 256> added_by_first_byte_;
  std::vector<int32_t> prefix_ids_, suffix_ids_;    // what add_special_tokens puts around
  std::optional<int32_t> eos_id_;
  std::string chat_template_, bos_token_, eos_token_;
  result<std::shared_ptr<const model::chat_template>> compiled_template_{nullptr};
  size_t vocab_size_ = 0;
  size_t max_token_bytes_ = 4;
};

}  // namespace adapterd::model
