#include "model/tools/tool_call_parser.hpp"

#include <algorithm>
#include <random>

#include <nlohmann/json.hpp>

namespace adapterd::model {

namespace {

using json = nlohmann::ordered_json;

constexpr const char* open_tag = "<tool_call>";
constexpr const char* close_tag = "</tool_call>";
constexpr size_t open_len = 11, close_len = 12;

bool blank(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

size_t first_non_blank(const std::string& s) {
  size_t i = 0;
  while (i < s.size() && blank(s[i]))
    ++i;
  return i;
}

// Where the trailing blanks of s begin.
size_t blank_tail(const std::string& s) {
  size_t n = s.size();
  while (n > 0 && blank(s[n - 1]))
    --n;
  return n;
}

bool starts_with(const std::string& s, size_t at, const std::string& what) {
  return s.compare(at, what.size(), what) == 0;
}

// The longest end of s that is a proper beginning of `tag`: it may yet become the tag.
size_t partial_tag(const std::string& s, const std::string& tag) {
  for (size_t n = std::min(s.size(), tag.size() - 1); n > 0; --n)
    if (s.compare(s.size() - n, n, tag, 0, n) == 0)
      return n;
  return 0;
}

// Random ids, as OpenAI's: a client only needs them unique within its conversation.
std::string new_call_id(tool_syntax syntax) {
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_int_distribution<size_t> pick(0, sizeof(alphabet) - 2);
  std::string id = syntax == tool_syntax::mistral ? "" : "call_";
  for (int i = syntax == tool_syntax::mistral ? 9 : 24; i > 0; --i)
    id += alphabet[pick(rng)];
  return id;
}

// The JSON values of `text`, one after another, separated by blanks or ';' (Llama 3 writes
// several calls as "{...}; {...}"). Empty when anything else is there.
std::vector<json> json_values(const std::string& text) {
  std::vector<json> out;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (blank(text[i]) || text[i] == ';'))
      ++i;
    if (i == text.size())
      break;
    if (text[i] != '{' && text[i] != '[')
      return {};
    // The end of this value: brackets matched outside strings.
    int depth = 0;
    bool in_string = false, escaped = false;
    size_t j = i;
    for (; j < text.size(); ++j) {
      char c = text[j];
      if (in_string) {
        if (escaped)
          escaped = false;
        else if (c == '\\')
          escaped = true;
        else if (c == '"')
          in_string = false;
      } else if (c == '"') {
        in_string = true;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if ((c == '}' || c == ']') && --depth == 0) {
        break;
      }
    }
    if (j == text.size())
      return {};
    auto value = json::parse(text.substr(i, j + 1 - i), nullptr, false);
    if (value.is_discarded())
      return {};
    out.push_back(std::move(value));
    i = j + 1;
  }
  return out;
}

}  // namespace

tool_call_parser::tool_call_parser(tool_syntax syntax, std::vector<std::string> names, bool forced)
    : syntax_(syntax), names_(std::move(names)), forced_(forced) {}

std::string tool_call_parser::push(const std::string& text) {
  held_ += text;
  if (forced_)
    return "";
  return syntax_ == tool_syntax::hermes ? push_hermes() : push_whole_answer();
}

// Content streams until an opening tag; a call is held until its closing tag. Blanks next to
// a call are its layout, not content, so they are held until the text goes on.
std::string tool_call_parser::push_hermes() {
  std::string out;
  for (;;) {
    if (mode_ == mode::in_tag) {
      auto end = held_.find(close_tag);
      if (end == std::string::npos)
        return out;
      auto body = held_.substr(0, end);
      held_.erase(0, end + close_len);
      if (add_call(body)) {
        held_.erase(0, first_non_blank(held_));
        mode_ = mode::holding;  // after a call: leading blanks are layout too
      } else {
        out += blanks_ + open_tag + body + close_tag;
        mode_ = mode::content;
      }
      blanks_.clear();
      continue;
    }
    if (mode_ == mode::holding) {
      held_.erase(0, first_non_blank(held_));
      if (held_.empty())
        return out;
      mode_ = mode::content;
    }
    auto start = held_.find(open_tag);
    if (start != std::string::npos) {
      auto before = held_.substr(0, start);
      auto tail = blank_tail(before);
      out += before.substr(0, tail);
      blanks_ = before.substr(tail);
      held_.erase(0, start + open_len);
      mode_ = mode::in_tag;
      continue;
    }
    // Held: a tail that may become the tag, and the blanks before it.
    auto keep = held_.size() - partial_tag(held_, open_tag);
    keep = blank_tail(held_.substr(0, keep));
    out += held_.substr(0, keep);
    held_.erase(0, keep);
    return out;
  }
}

// The whole answer is either calls (it opens with '{', '[', <|python_tag|> or [TOOL_CALLS])
// or content: blanks and a tag's beginning are held until the first other character says.
std::string tool_call_parser::push_whole_answer() {
  if (mode_ == mode::content) {
    auto out = std::move(held_);
    held_.clear();
    return out;
  }
  if (mode_ == mode::holding)
    return "";
  auto at = first_non_blank(held_);
  if (at == held_.size())
    return "";
  auto rest = held_.substr(at);
  for (const std::string tag : {"<|python_tag|>", "[TOOL_CALLS]"})
    if (rest.size() < tag.size() && tag.compare(0, rest.size(), rest) == 0)
      return "";  // may yet be the tag
  bool list_ok = syntax_ != tool_syntax::llama3_json;
  if (rest[0] == '{' || (list_ok && rest[0] == '[') || starts_with(rest, 0, "<|python_tag|>")) {
    mode_ = mode::holding;
    return "";
  }
  mode_ = mode::content;
  return push_whole_answer();
}

std::string tool_call_parser::finish() {
  std::string out;
  if (mode_ == mode::holding && syntax_ == tool_syntax::hermes && !forced_) {
    // only blanks after a call: layout
  } else if (forced_ || mode_ == mode::holding) {
    if (!parse_answer(held_))
      out = held_;
  } else if (mode_ == mode::in_tag) {
    // A call the output ended inside of (end of sequence instead of the closing tag).
    if (!add_call(held_))
      out = blanks_ + open_tag + held_;
  } else {
    out = blanks_ + held_;
  }
  held_.clear();
  blanks_.clear();
  mode_ = mode::content;
  return out;
}

std::vector<chat_tool_call> tool_call_parser::take_calls() {
  std::vector<chat_tool_call> out(calls_.begin() + static_cast<std::ptrdiff_t>(taken_),
                                  calls_.end());
  taken_ = calls_.size();
  return out;
}

bool tool_call_parser::parse_answer(const std::string& text) {
  auto at = first_non_blank(text);
  for (const std::string tag : {"<|python_tag|>", "[TOOL_CALLS]"})
    if (starts_with(text, at, tag))
      at += tag.size();
  auto values = json_values(text.substr(at));
  std::vector<std::string> items;
  for (const auto& v : values) {
    if (v.is_array()) {
      for (const auto& item : v)
        items.push_back(item.dump());
    } else {
      items.push_back(v.dump());
    }
  }
  if (items.empty())
    return false;
  auto before = calls_.size();
  for (const auto& item : items) {
    if (!add_call(item)) {
      calls_.resize(before);  // all of them are calls, or the answer is content
      return false;
    }
  }
  return true;
}

bool tool_call_parser::add_call(const std::string& json_text) {
  auto call = json::parse(json_text, nullptr, false);
  if (!call.is_object() || !call.contains("name") || !call["name"].is_string())
    return false;
  auto name = call["name"].get<std::string>();
  if (std::find(names_.begin(), names_.end(), name) == names_.end())
    return false;
  json args = json::object();
  for (const char* key : {"arguments", "parameters"}) {
    if (!call.contains(key))
      continue;
    args = call[key];
    if (args.is_string())  // some models write the arguments as a JSON string
      args = json::parse(args.get<std::string>(), nullptr, false);
    break;
  }
  if (!args.is_object())
    return false;
  calls_.push_back({new_call_id(syntax_), name, args.dump()});
  return true;
}

}  // namespace adapterd::model
