#include "model/tokenizer/regex.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

namespace adapterd::model {

result<std::shared_ptr<const regex>> regex::compile(const std::string& pattern) {
  int err = 0;
  PCRE2_SIZE offset = 0;
  auto* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                             PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &err, &offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(err, buf, sizeof buf);
    return make_error(errc::invalid_model, "regex '" + pattern + "' at " + std::to_string(offset)
                                             + ": " + reinterpret_cast<char*>(buf));
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // best effort: the interpreter works too
  auto re = std::shared_ptr<regex>(new regex());
  re->code_ = code;
  return std::shared_ptr<const regex>(re);
}

regex::~regex() {
  pcre2_code_free(static_cast<pcre2_code*>(code_));
}

std::vector<std::pair<size_t, size_t>> regex::find_all(std::string_view subject) const {
  std::vector<std::pair<size_t, size_t>> out;
  for_each_match(subject, [&](size_t b, size_t e) { out.emplace_back(b, e); });
  return out;
}

void regex::for_each_match(std::string_view subject, const std::function<void(size_t, size_t)>& on_match) const {
  auto* code = static_cast<pcre2_code*>(code_);
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(
    pcre2_match_data_create_from_pattern(code, nullptr), &pcre2_match_data_free);
  size_t start = 0;
  uint32_t options = 0;  // the first call checks the whole subject's UTF-8 ...
  while (start <= subject.size()) {
    int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(), start,
                         options, md.get(), nullptr);
    options = PCRE2_NO_UTF_CHECK;  // ... once: re-checking it at every match made long inputs quadratic
    if (rc < 0)
      break;  // no match (or a match error on invalid input): stop
    auto* ov = pcre2_get_ovector_pointer(md.get());
    size_t b = ov[0], e = ov[1];
    if (e > b) {
      on_match(b, e);
      start = e;
    } else {
      // Empty match: step over one whole UTF-8 character.
      start = b + 1;
      while (start < subject.size() && (static_cast<unsigned char>(subject[start]) & 0xC0) == 0x80)
        ++start;
    }
  }
}

result<bool> regex::matches_whole(std::string_view subject) const {
  auto* code = static_cast<pcre2_code*>(code_);
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(
    pcre2_match_data_create_from_pattern(code, nullptr), &pcre2_match_data_free);
  std::unique_ptr<pcre2_match_context, decltype(&pcre2_match_context_free)> limits(
    pcre2_match_context_create(nullptr), &pcre2_match_context_free);
  pcre2_set_match_limit(limits.get(), 100000);
  pcre2_set_depth_limit(limits.get(), 1000);
  int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(), 0,
                       PCRE2_ANCHORED | PCRE2_ENDANCHORED, md.get(), limits.get());
  if (rc >= 0)
    return true;
  if (rc == PCRE2_ERROR_NOMATCH)
    return false;
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(rc, buf, sizeof buf);
  return make_error(errc::invalid_argument, reinterpret_cast<char*>(buf));
}

std::string regex_escape(const std::string& literal) {
  std::string out;
  for (char c : literal) {
    if (std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos)
      out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

}  // namespace adapterd::model
