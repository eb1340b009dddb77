#include "model/template/lexer.hpp"

#include <cctype>

#include "model/template/evaluator.hpp"  // strip

namespace adapterd::model::jinja {

std::vector<token> lex(const std::string& src) {
  std::vector<token> out;
  size_t p = 0;
  static const char* ops[] = {"//", "==", "!=", "<=", ">=", "**", "(", ")", "[", "]", "{", "}", ",",
                              ".",  ":",  "|",  "~",  "+",  "-",  "*", "/", "%", "<", ">", "="};
  while (p < src.size()) {
    char c = src[p];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++p;
    } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t q = p;
      while (q < src.size() && (std::isalnum(static_cast<unsigned char>(src[q])) || src[q] == '_'))
        ++q;
      out.push_back({token::name, src.substr(p, q - p)});
      p = q;
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      size_t q = p;
      while (
          q < src.size()
          && (std::isdigit(static_cast<unsigned char>(src[q])) || src[q] == '.' || src[q] == '_'))
        ++q;
      out.push_back({token::number, src.substr(p, q - p)});
      p = q;
    } else if (c == '\'' || c == '"') {
      std::string s;
      size_t q = p + 1;
      for (; q < src.size() && src[q] != c; ++q) {
        if (src[q] == '\\' && q + 1 < src.size()) {
          char e = src[++q];
          s += e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
        } else {
          s += src[q];
        }
      }
      if (q >= src.size())
        throw template_error("unterminated string literal");
      out.push_back({token::string, s});
      p = q + 1;
    } else {
      bool matched = false;
      for (const char* o : ops) {
        size_t n = std::char_traits<char>::length(o);
        if (src.compare(p, n, o) == 0) {
          out.push_back({token::op, o});
          p += n;
          matched = true;
          break;
        }
      }
      if (!matched)
        throw template_error(std::string("unexpected character '") + c + "'");
    }
  }
  out.push_back({token::end, ""});
  return out;
}

namespace {

// Where a tag closes: the first `close` outside string literals, as Jinja's lexer finds it
// ({{- "}}" }} prints two braces). A comment's text is not code: its first close ends it.
size_t tag_end(const std::string& src, const std::string& close, size_t start, bool code) {
  if (!code)
    return src.find(close, start);
  for (size_t q = start; q < src.size(); ++q) {
    const char c = src[q];
    if (c == '\'' || c == '"') {
      for (++q; q < src.size() && src[q] != c; ++q)
        if (src[q] == '\\')
          ++q;
      if (q >= src.size())
        return std::string::npos;
    } else if (src.compare(q, close.size(), close) == 0) {
      return q;
    }
  }
  return std::string::npos;
}

}  // namespace

std::vector<piece> split_source(const std::string& src) {
  std::vector<piece> out;
  size_t p = 0;
  bool trim_next_newline = false, strip_next = false;
  while (p <= src.size()) {
    size_t open = src.find('{', p);
    while (open != std::string::npos && open + 1 < src.size() && src[open + 1] != '{'
           && src[open + 1] != '%' && src[open + 1] != '#')
      open = src.find('{', open + 1);
    if (open + 1 >= src.size())
      open = std::string::npos;
    std::string text = src.substr(p, open == std::string::npos ? std::string::npos : open - p);
    if (strip_next) {
      text = strip(text, "", true, false);
    } else if (trim_next_newline && !text.empty() && text[0] == '\n') {
      text.erase(0, 1);
    } else if (trim_next_newline && text.rfind("\r\n", 0) == 0) {
      text.erase(0, 2);
    }
    strip_next = trim_next_newline = false;
    if (open == std::string::npos) {
      out.push_back({piece::text, text});
      break;
    }
    char kind = src[open + 1];
    bool strip_before = open + 2 < src.size() && src[open + 2] == '-';
    bool keep_before = open + 2 < src.size() && src[open + 2] == '+';
    if (strip_before) {
      text = strip(text, "", false, true);
    } else if (kind != '{' && !keep_before) {
      // lstrip_blocks: spaces and tabs from the start of the line to a block tag.
      size_t line = text.find_last_of('\n');
      size_t from = line == std::string::npos ? 0 : line + 1;
      if (text.find_first_not_of(" \t", from) == std::string::npos
          && (line != std::string::npos || out.empty()))
        text.erase(from);
    }
    out.push_back({piece::text, text});
    std::string close = kind == '{' ? "}}" : kind == '%' ? "%}" : "#}";
    size_t start = open + 2 + (strip_before || keep_before ? 1 : 0);
    size_t end = tag_end(src, close, start, kind != '#');
    if (end == std::string::npos)
      throw template_error(std::string("unclosed '{") + kind + "'");
    bool strip_after = end > start && src[end - 1] == '-';
    bool keep_after = end > start && src[end - 1] == '+';
    std::string inner = src.substr(start, end - start - (strip_after || keep_after ? 1 : 0));
    if (kind == '{')
      out.push_back({piece::output, inner});
    else if (kind == '%')
      out.push_back({piece::statement, inner});
    strip_next = strip_after;
    trim_next_newline = kind != '{' && !strip_after && !keep_after;
    p = end + 2;
  }
  return out;
}

}  // namespace adapterd::model::jinja
