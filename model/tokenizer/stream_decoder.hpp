#pragma once
// Incremental detokenisation for streaming: text is released only up to the last complete
// character, so a chunk never ends inside a UTF-8 sequence (a byte-level token may carry
// half a character). Works for every decoder by decoding a short window of recent ids and
// emitting what it adds beyond the already-released part.
#include <cstdint>
#include <string>
#include <vector>

#include "model/tokenizer/tokenizer.hpp"

namespace adapterd::model {

class stream_decoder {
public:
  stream_decoder(const tokenizer& tok, bool skip_special_tokens)
    : tok_(tok), skip_special_(skip_special_tokens) {}

  /// Adds one id; returns the text it completes (often empty, never a broken character).
  std::string push(int32_t id);
  /// Returns what is still held back (an incomplete tail becomes U+FFFD).
  std::string finish();

private:
  std::string window_text(size_t from, size_t to) const;

  const tokenizer& tok_;
  bool skip_special_;
  std::vector<int32_t> ids_;
  size_t prefix_offset_ = 0;  // start of the window decoded for context
  size_t read_offset_ = 0;    // everything before this has been released
};

}  // namespace adapterd::model
