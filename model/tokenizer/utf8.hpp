#pragma once
// UTF-8 helpers shared by the tokenizer and the streaming decoder.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace adapterd::model::utf8 {

/// Appends the UTF-8 encoding of code point `cp`.
void append(std::string& out, char32_t cp);

/// Bytes of the character at `at`: its whole sequence when valid, else 1.
size_t char_length(std::string_view text, size_t at);

/// Splits valid UTF-8 into one string per code point (invalid bytes become one-byte pieces).
std::vector<std::string> split_chars(std::string_view text);

/// Replaces every ill-formed sequence with U+FFFD the way Rust's String::from_utf8_lossy
/// (and so Hugging Face tokenizers) does: one replacement per maximal invalid subpart.
std::string lossy(std::string_view bytes);

/// Length of the longest prefix of `bytes` that does not end inside a multi-byte sequence
/// that could still be completed by more bytes.
size_t complete_prefix(std::string_view bytes);

}  // namespace adapterd::model::utf8
