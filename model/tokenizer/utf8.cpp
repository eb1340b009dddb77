#include "model/tokenizer/utf8.hpp"

namespace adapterd::model::utf8 {

namespace {

// Length of the valid sequence starting at s[i], or 0 with `maximal` set to the length
// of the maximal invalid subpart (at least 1).
size_t valid_length(std::string_view s, size_t i, size_t& maximal) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  maximal = 1;
  if (c < 0x80)
    return 1;
  size_t need = 0;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    need = 1;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 2;
    if (c == 0xE0)
      lo = 0xA0;
    if (c == 0xED)
      hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3;
    if (c == 0xF0)
      lo = 0x90;
    if (c == 0xF4)
      hi = 0x8F;
  } else {
    return 0;
  }
  for (size_t k = 1; k <= need; ++k) {
    if (i + k >= s.size())
      return 0;
    unsigned char x = b(i + k);
    unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
    if (x < l || x > h)
      return 0;
    maximal = k + 1;
  }
  return need + 1;
}

}  // namespace

void append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

size_t char_length(std::string_view text, size_t at) {
  size_t maximal = 1;
  size_t n = valid_length(text, at, maximal);
  return n == 0 ? 1 : n;
}

std::vector<std::string> split_chars(std::string_view text) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < text.size()) {
    size_t maximal = 1;
    size_t n = valid_length(text, i, maximal);
    if (n == 0)
      n = 1;
    out.emplace_back(text.substr(i, n));
    i += n;
  }
  return out;
}

std::string lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t i = 0;
  while (i < bytes.size()) {
    size_t maximal = 1;
    size_t n = valid_length(bytes, i, maximal);
    if (n > 0) {
      out.append(bytes.substr(i, n));
      i += n;
    } else {
      out.append("\xEF\xBF\xBD");
      i += maximal;
    }
  }
  return out;
}

size_t complete_prefix(std::string_view bytes) {
  // Look back at most 3 bytes for the start of an unfinished sequence.
  size_t n = bytes.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    size_t i = n - back;
    size_t maximal = 1;
    auto lead = static_cast<unsigned char>(bytes[i]);
    if (lead >= 0xC2 && lead <= 0xF4 && valid_length(bytes, i, maximal) == 0 && maximal == back)
      return i;  // a valid but incomplete prefix: hold it back
  }
  return n;
}

}  // namespace adapterd::model::utf8
