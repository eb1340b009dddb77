// Pre-tokenizer and decoder stages of tokenizer.json.
#include <array>

#include <nlohmann/json.hpp>

#include "model/regex.hpp"
#include "model/tokenizer_parts.hpp"
#include "model/utf8.hpp"

namespace adapterd::model {

namespace {

using json = nlohmann::json;

// The pattern GPT-2 (and ByteLevel with use_regex) splits words with.
constexpr const char* gpt2_pattern =
  R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

enum class split_behavior { isolated, removed, merged_with_previous, merged_with_next };

std::vector<std::string> split_with(const regex& re, const std::string& text, split_behavior how,
                                    bool invert) {
  struct segment {
    size_t b, e;
    bool match;
  };
  std::vector<segment> segs;
  auto matches = re.find_all(text);
  segs.reserve(2 * matches.size() + 1);
  size_t pos = 0;
  for (auto [b, e] : matches) {
    if (b > pos)
      segs.push_back({pos, b, invert});
    segs.push_back({b, e, !invert});
    pos = e;
  }
  if (pos < text.size())
    segs.push_back({pos, text.size(), invert});

  std::vector<std::string> out;
  out.reserve(segs.size());
  bool glue_next = false;
  for (const auto& s : segs) {
    auto piece = text.substr(s.b, s.e - s.b);
    if (!s.match) {
      if (glue_next && !out.empty())
        out.back() += piece;
      else
        out.push_back(piece);
      glue_next = false;
      continue;
    }
    switch (how) {
      case split_behavior::isolated: out.push_back(piece); break;
      case split_behavior::removed: break;
      case split_behavior::merged_with_previous:
        if (!out.empty() && !glue_next)
          out.back() += piece;
        else
          out.push_back(piece);
        break;
      case split_behavior::merged_with_next:
        out.push_back(piece);
        glue_next = true;
        continue;
    }
    glue_next = false;
  }
  return out;  // every segment is non-empty, and so is every piece made of them
}

class regex_split final : public pre_tokenizer {
public:
  regex_split(std::shared_ptr<const regex> re, split_behavior how, bool invert)
    : re_(std::move(re)), how_(how), invert_(invert) {}
  std::vector<std::string> split(std::vector<std::string> pieces, bool /*first_segment*/) const override {
    if (pieces.size() == 1)
      return split_with(*re_, pieces.front(), how_, invert_);
    std::vector<std::string> out;
    for (const auto& p : pieces)
      for (auto& q : split_with(*re_, p, how_, invert_))
        out.push_back(std::move(q));
    return out;
  }

private:
  std::shared_ptr<const regex> re_;
  split_behavior how_;
  bool invert_;
};

class byte_level final : public pre_tokenizer {
public:
  byte_level(bool add_prefix_space, std::shared_ptr<const regex> re)
    : add_prefix_space_(add_prefix_space), re_(std::move(re)) {}
  std::vector<std::string> split(std::vector<std::string> pieces, bool /*first_segment*/) const override {
    std::vector<std::string> out;
    for (auto& p : pieces) {
      if (add_prefix_space_ && (p.empty() || p[0] != ' '))
        p.insert(p.begin(), ' ');
      if (re_ == nullptr) {
        out.push_back(to_byte_symbols(p));
        continue;
      }
      auto words = split_with(*re_, p, split_behavior::isolated, false);
      out.reserve(out.size() + words.size());
      for (auto& q : words)
        out.push_back(to_byte_symbols(q));
    }
    return out;
  }

private:
  bool add_prefix_space_;
  std::shared_ptr<const regex> re_;  // null: no splitting
};

// SentencePiece-style: spaces become the replacement symbol, which is prepended (always,
// or only at the start of the input) and starts every word when splitting.
class metaspace final : public pre_tokenizer {
public:
  metaspace(std::string replacement, std::string scheme, bool split)
    : replacement_(std::move(replacement)), scheme_(std::move(scheme)), split_(split) {}
  std::vector<std::string> split(std::vector<std::string> pieces, bool first_segment) const override {
    std::vector<std::string> out;
    for (size_t i = 0; i < pieces.size(); ++i) {
      std::string text;
      for (char c : pieces[i])
        text += c == ' ' ? replacement_ : std::string(1, c);
      bool prepend = scheme_ == "always" || (scheme_ == "first" && first_segment && i == 0);
      if (prepend && text.compare(0, replacement_.size(), replacement_) != 0)
        text = replacement_ + text;
      if (!split_) {
        out.push_back(text);
        continue;
      }
      size_t start = 0;
      for (size_t pos = text.find(replacement_, 1); pos != std::string::npos;
           pos = text.find(replacement_, pos + 1)) {
        if (pos > start)
          out.push_back(text.substr(start, pos - start));
        start = pos;
      }
      if (start < text.size())
        out.push_back(text.substr(start));
    }
    return out;
  }

private:
  std::string replacement_, scheme_;
  bool split_;
};

class sequence final : public pre_tokenizer {
public:
  explicit sequence(std::vector<std::shared_ptr<const pre_tokenizer>> parts)
    : parts_(std::move(parts)) {}
  std::vector<std::string> split(std::vector<std::string> pieces, bool first_segment) const override {
    for (const auto& p : parts_)
      pieces = p->split(std::move(pieces), first_segment);
    return pieces;
  }

private:
  std::vector<std::shared_ptr<const pre_tokenizer>> parts_;
};

class identity final : public pre_tokenizer {
public:
  std::vector<std::string> split(std::vector<std::string> pieces, bool /*first_segment*/) const override { return pieces; }
};

result<std::shared_ptr<const pre_tokenizer>> make_split(const json& node) {
  std::string pattern;
  const auto& pat = node.value("pattern", json::object());
  if (pat.contains("Regex"))
    pattern = pat["Regex"].get<std::string>();
  else if (pat.contains("String"))
    pattern = regex_escape(pat["String"].get<std::string>());
  else
    return make_error(errc::invalid_model, "Split pre-tokenizer without a pattern");
  auto behavior = node.value("behavior", std::string("Isolated"));
  split_behavior how;
  if (behavior == "Isolated")
    how = split_behavior::isolated;
  else if (behavior == "Removed")
    how = split_behavior::removed;
  else if (behavior == "MergedWithPrevious")
    how = split_behavior::merged_with_previous;
  else if (behavior == "MergedWithNext")
    how = split_behavior::merged_with_next;
  else
    return make_error(errc::invalid_model, "unsupported Split behavior " + behavior);
  auto re = regex::compile(pattern);
  if (!re)
    return re.err();
  return std::shared_ptr<const pre_tokenizer>(
    std::make_shared<regex_split>(*re, how, node.value("invert", false)));
}


}  // namespace

const std::string& byte_to_symbol(unsigned char byte) {
  static const std::array<std::string, 256> table = [] {
    std::array<std::string, 256> t;
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      utf8::append(t[b], printable ? static_cast<char32_t>(b) : next++);
    }
    return t;
  }();
  return table[byte];
}

std::string to_byte_symbols(const std::string& bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes)
    out += byte_to_symbol(c);
  return out;
}

result<std::shared_ptr<const pre_tokenizer>> make_pre_tokenizer(const json& node) {
  if (node.is_null())
    return std::shared_ptr<const pre_tokenizer>(std::make_shared<identity>());
  auto type = node.value("type", std::string{});
  if (type == "ByteLevel") {
    std::shared_ptr<const regex> re;
    if (node.value("use_regex", true)) {
      auto compiled = regex::compile(gpt2_pattern);
      if (!compiled)
        return compiled.err();
      re = *compiled;
    }
    return std::shared_ptr<const pre_tokenizer>(
      std::make_shared<byte_level>(node.value("add_prefix_space", false), re));
  }
  if (type == "Split")
    return make_split(node);
  if (type == "Digits") {
    auto re = regex::compile(node.value("individual_digits", false) ? R"(\p{N})" : R"(\p{N}+)");
    if (!re)
      return re.err();
    return std::shared_ptr<const pre_tokenizer>(
      std::make_shared<regex_split>(*re, split_behavior::isolated, false));
  }
  if (type == "Metaspace")
    return std::shared_ptr<const pre_tokenizer>(std::make_shared<metaspace>(
      node.value("replacement", std::string("\xE2\x96\x81")), metaspace_scheme(node),
      node.value("split", true)));
  if (type == "Punctuation") {
    // ASCII punctuation or any Unicode P* character, one at a time or in runs.
    auto behavior = node.value("behavior", std::string("Isolated"));
    if (behavior != "Isolated" && behavior != "Contiguous")
      return make_error(errc::invalid_model, "unsupported Punctuation behavior " + behavior);
    std::string cls = R"([\p{P}!-/:-@\[-`{-~])";
    auto re = regex::compile(behavior == "Contiguous" ? cls + "+" : cls);
    if (!re)
      return re.err();
    return std::shared_ptr<const pre_tokenizer>(
      std::make_shared<regex_split>(*re, split_behavior::isolated, false));
  }
  if (type == "Sequence") {
    std::vector<std::shared_ptr<const pre_tokenizer>> parts;
    for (const auto& child : node.value("pretokenizers", json::array())) {
      auto part = make_pre_tokenizer(child);
      if (!part)
        return part.err();
      parts.push_back(*part);
    }
    return std::shared_ptr<const pre_tokenizer>(std::make_shared<sequence>(std::move(parts)));
  }
  return make_error(errc::invalid_model, "unsupported tokenizer pre_tokenizer: " + type);
}

}  // namespace adapterd::model
