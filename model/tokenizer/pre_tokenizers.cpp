// Pre-tokenizer and decoder stages of tokenizer.json.
#include <array>

#include <nlohmann/json.hpp>

#include "model/tokenizer/regex.hpp"
#include "model/tokenizer/stages.hpp"
#include "model/tokenizer/utf8.hpp"

namespace adapterd::model {

namespace {

using json = nlohmann::json;

// The pattern GPT-2 (and ByteLevel with use_regex) splits words with.
constexpr const char* gpt2_pattern =
  R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

enum class split_behavior { isolated, removed, merged_with_previous, merged_with_next };

// Hugging Face's Split behaviours over the stream of segments (matches and the text between
// them), handing out each finished piece as soon as the next one shows it is finished.
class segment_joiner {
public:
  segment_joiner(split_behavior how, const pre_tokenizer::emit_fn& emit) : how_(how), emit_(emit) {}
  // `delimiter`: the segment is what the pattern splits on (a match, or with invert the text
  // between matches).
  void add(std::string piece, bool delimiter) {
    if (!delimiter) {
      if (glue_next_ && has_pending_)
        pending_ += piece;
      else
        push(std::move(piece));
      glue_next_ = false;
      return;
    }
    switch (how_) {
      case split_behavior::isolated: push(std::move(piece)); break;
      case split_behavior::removed: break;
      case split_behavior::merged_with_previous:
        if (has_pending_ && !glue_next_)
          pending_ += piece;
        else
          push(std::move(piece));
        break;
      case split_behavior::merged_with_next:
        push(std::move(piece));
        glue_next_ = true;
        return;
    }
    glue_next_ = false;
  }
  void finish() {
    if (has_pending_)
      emit_(std::move(pending_));
    has_pending_ = false;
  }

private:
  void push(std::string piece) {
    if (has_pending_)
      emit_(std::move(pending_));
    pending_ = std::move(piece);
    has_pending_ = true;
  }

  split_behavior how_;
  const pre_tokenizer::emit_fn& emit_;
  std::string pending_;
  bool has_pending_ = false;
  bool glue_next_ = false;
};

// Every segment is non-empty, and so is every piece made of them.
void split_with(const regex& re, const std::string& text, split_behavior how, bool invert,
                const pre_tokenizer::emit_fn& emit) {
  segment_joiner joiner(how, emit);
  size_t pos = 0;
  re.for_each_match(text, [&](size_t b, size_t e) {
    if (b > pos)
      joiner.add(text.substr(pos, b - pos), invert);
    joiner.add(text.substr(b, e - b), !invert);
    pos = e;
  });
  if (pos < text.size())
    joiner.add(text.substr(pos), invert);
  joiner.finish();
}

class regex_split final : public pre_tokenizer {
public:
  regex_split(std::shared_ptr<const regex> re, split_behavior how, bool invert)
    : re_(std::move(re)), how_(how), invert_(invert) {}
  void split_each(std::string piece, bool, bool, const emit_fn& emit) const override {
    split_with(*re_, piece, how_, invert_, emit);
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
  void split_each(std::string piece, bool, bool, const emit_fn& emit) const override {
    if (add_prefix_space_ && (piece.empty() || piece[0] != ' '))
      piece.insert(piece.begin(), ' ');
    if (re_ == nullptr)
      return emit(to_byte_symbols(piece));
    split_with(*re_, piece, split_behavior::isolated, false, [&](std::string&& word) { emit(to_byte_symbols(word)); });
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
  void split_each(std::string piece, bool first_segment, bool first_piece, const emit_fn& emit) const override {
    std::string text;
    text.reserve(piece.size());
    for (char c : piece)
      if (c == ' ')
        text += replacement_;
      else
        text += c;
    bool prepend = scheme_ == "always" || (scheme_ == "first" && first_segment && first_piece);
    if (prepend && text.compare(0, replacement_.size(), replacement_) != 0)
      text = replacement_ + text;
    if (!split_)
      return emit(std::move(text));
    size_t start = 0;
    for (size_t pos = text.find(replacement_, 1); pos != std::string::npos; pos = text.find(replacement_, pos + 1)) {
      if (pos > start)
        emit(text.substr(start, pos - start));
      start = pos;
    }
    if (start < text.size())
      emit(text.substr(start));
  }

private:
  std::string replacement_, scheme_;
  bool split_;
};

class sequence final : public pre_tokenizer {
public:
  explicit sequence(std::vector<std::shared_ptr<const pre_tokenizer>> parts)
    : parts_(std::move(parts)) {}
  void split_each(std::string piece, bool first_segment, bool first_piece, const emit_fn& emit) const override {
    std::vector<bool> emitted(parts_.size(), false);
    run(0, std::move(piece), first_segment, first_piece, emit, emitted);
  }

private:
  // Each word of stage k goes straight on to stage k + 1; a stage's first piece is the
  // first word the stage before it gave.
  void run(size_t k, std::string piece, bool first_segment, bool first_piece, const emit_fn& emit,
           std::vector<bool>& emitted) const {
    if (k == parts_.size())
      return emit(std::move(piece));
    parts_[k]->split_each(std::move(piece), first_segment, first_piece, [&](std::string&& word) {
      bool first = first_piece && !emitted[k];
      emitted[k] = true;
      run(k + 1, std::move(word), first_segment, first, emit, emitted);
    });
  }

  std::vector<std::shared_ptr<const pre_tokenizer>> parts_;
};

class identity final : public pre_tokenizer {
public:
  void split_each(std::string piece, bool, bool, const emit_fn& emit) const override { emit(std::move(piece)); }
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

std::vector<std::string> pre_tokenizer::split(std::vector<std::string> pieces, bool first_segment) const {
  std::vector<std::string> out;
  for (size_t i = 0; i < pieces.size(); ++i)
    split_each(std::move(pieces[i]), first_segment, i == 0, [&](std::string&& word) { out.push_back(std::move(word)); });
  return out;
}

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
