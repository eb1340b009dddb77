#pragma once
// A compiled PCRE2 pattern with the Unicode semantics Hugging Face tokenizers' regexes
// expect (\p{L}, \s over all of Unicode, look-ahead).
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "model/result.hpp"

namespace adapterd::model {

class regex {
public:
  static result<std::shared_ptr<const regex>> compile(const std::string& pattern);
  ~regex();
  regex(const regex&) = delete;
  regex& operator=(const regex&) = delete;

  /// Byte ranges [first, second) of every non-overlapping match, left to right.
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view subject) const;
  /// The same matches, each handed to `on_match(begin, end)` as it is found.
  void for_each_match(std::string_view subject, const std::function<void(size_t, size_t)>& on_match) const;
  /// Whether the whole subject matches, within a bounded amount of backtracking; a
  /// pattern that needs more (a hostile one) is an error, never a stalled thread.
  result<bool> matches_whole(std::string_view subject) const;

private:
  regex() = default;
  void* code_ = nullptr;  // pcre2_code_8*
};

/// Escapes `literal` so that it matches itself.
std::string regex_escape(const std::string& literal);

}  // namespace adapterd::model
