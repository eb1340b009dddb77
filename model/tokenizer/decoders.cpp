// Decoder stages of tokenizer.json: each maps the token strings one step further, as
// Hugging Face's decode_chain does.
#include <cstdlib>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "model/tokenizer/stages.hpp"
#include "model/tokenizer/utf8.hpp"

namespace adapterd::model {

namespace {

using json = nlohmann::json;
using strings = std::vector<std::string>;

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  if (from.empty())
    return;
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
    s.replace(pos, from.size(), to);
}

class byte_level final : public token_decoder {
public:
  strings decode_chain(strings tokens) const override {
    static const std::unordered_map<std::string, unsigned char> symbol_to_byte = [] {
      std::unordered_map<std::string, unsigned char> m;
      for (int b = 0; b < 256; ++b)
        m[byte_to_symbol(static_cast<unsigned char>(b))] = static_cast<unsigned char>(b);
      return m;
    }();
    std::string out;
    for (const auto& token : tokens) {
      std::string bytes;
      bool all_mapped = true;
      for (const auto& ch : utf8::split_chars(token)) {
        auto it = symbol_to_byte.find(ch);
        if (it == symbol_to_byte.end()) {
          all_mapped = false;
          break;
        }
        bytes.push_back(static_cast<char>(it->second));
      }
      out += all_mapped ? bytes : token;  // unmapped tokens (added ones) pass through raw
    }
    return {out};
  }
};

class replace final : public token_decoder {
public:
  replace(std::string from, std::string to) : from_(std::move(from)), to_(std::move(to)) {}
  strings decode_chain(strings tokens) const override {
    for (auto& t : tokens)
      replace_all(t, from_, to_);
    return tokens;
  }

private:
  std::string from_, to_;
};

// <0xXX> tokens become bytes; a run that is not valid UTF-8 becomes one U+FFFD per byte.
class byte_fallback final : public token_decoder {
public:
  strings decode_chain(strings tokens) const override {
    strings out;
    std::string pending;
    size_t pending_count = 0;
    auto flush = [&] {
      if (pending_count == 0)
        return;
      if (utf8::lossy(pending) == pending) {
        out.push_back(pending);
      } else {
        for (size_t i = 0; i < pending_count; ++i)
          out.push_back("\xEF\xBF\xBD");
      }
      pending.clear();
      pending_count = 0;
    };
    for (auto& t : tokens) {
      if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>') {
        char* end = nullptr;
        const std::string hex = t.substr(3, 2);  // kept: `end` points into it (ASan found the temporary)
        auto value = std::strtoul(hex.c_str(), &end, 16);
        if (end != nullptr && *end == '\0') {
          pending.push_back(static_cast<char>(value));
          ++pending_count;
          continue;
        }
      }
      flush();
      out.push_back(std::move(t));
    }
    flush();
    return out;
  }
};

class fuse final : public token_decoder {
public:
  strings decode_chain(strings tokens) const override {
    std::string joined;
    for (const auto& t : tokens)
      joined += t;
    return {joined};
  }
};

class strip final : public token_decoder {
public:
  strip(std::string content, size_t start, size_t stop)
    : content_(std::move(content)), start_(start), stop_(stop) {}
  strings decode_chain(strings tokens) const override {
    for (auto& t : tokens) {
      for (size_t i = 0; i < start_ && !content_.empty() && t.compare(0, content_.size(), content_) == 0; ++i)
        t.erase(0, content_.size());
      for (size_t i = 0; i < stop_ && !content_.empty() && t.size() >= content_.size()
                         && t.compare(t.size() - content_.size(), content_.size(), content_) == 0;
           ++i)
        t.erase(t.size() - content_.size());
    }
    return tokens;
  }

private:
  std::string content_;
  size_t start_, stop_;
};

class metaspace final : public token_decoder {
public:
  metaspace(std::string replacement, bool strip_first)
    : replacement_(std::move(replacement)), strip_first_(strip_first) {}
  strings decode_chain(strings tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i)
      replace_all(tokens[i], replacement_, i == 0 && strip_first_ ? "" : " ");
    return tokens;
  }

private:
  std::string replacement_;
  bool strip_first_;
};

class sequence final : public token_decoder {
public:
  explicit sequence(std::vector<std::shared_ptr<const token_decoder>> parts) : parts_(std::move(parts)) {}
  strings decode_chain(strings tokens) const override {
    for (const auto& p : parts_)
      tokens = p->decode_chain(std::move(tokens));
    return tokens;
  }

private:
  std::vector<std::shared_ptr<const token_decoder>> parts_;
};

template <class T, class... Ts>
result<std::shared_ptr<const token_decoder>> make(Ts&&... xs) {
  return std::shared_ptr<const token_decoder>(std::make_shared<T>(std::forward<Ts>(xs)...));
}

}  // namespace

/// Metaspace's prepend scheme, from either spelling tokenizer.json has used.
std::string metaspace_scheme(const json& node) {
  if (node.contains("prepend_scheme") && node["prepend_scheme"].is_string())
    return node["prepend_scheme"].get<std::string>();
  return node.value("add_prefix_space", true) ? "always" : "never";
}

result<std::shared_ptr<const token_decoder>> make_decoder(const json& node) {
  auto type = node.is_null() ? std::string("null") : node.value("type", std::string{});
  if (type == "ByteLevel")
    return make<byte_level>();
  if (type == "Replace" && node.contains("pattern") && node["pattern"].contains("String"))
    return make<replace>(node["pattern"]["String"].get<std::string>(), node.value("content", std::string{}));
  if (type == "ByteFallback")
    return make<byte_fallback>();
  if (type == "Fuse")
    return make<fuse>();
  if (type == "Strip")
    return make<strip>(node.value("content", std::string(" ")), node.value("start", size_t{0}),
                       node.value("stop", size_t{0}));
  if (type == "Metaspace")
    return make<metaspace>(node.value("replacement", std::string("\xE2\x96\x81")),
                           metaspace_scheme(node) != "never");
  if (type == "Sequence") {
    std::vector<std::shared_ptr<const token_decoder>> parts;
    for (const auto& child : node.value("decoders", json::array())) {
      auto part = make_decoder(child);
      if (!part)
        return part.err();
      parts.push_back(*part);
    }
    return make<sequence>(std::move(parts));
  }
  return make_error(errc::invalid_model, "unsupported tokenizer decoder: " + type);
}

}  // namespace adapterd::model
