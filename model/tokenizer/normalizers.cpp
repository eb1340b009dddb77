// Normalizer stages of tokenizer.json.
#include <cstdlib>

#include <nlohmann/json.hpp>
#include <utf8proc.h>

#include "model/tokenizer/stages.hpp"

namespace adapterd::model {

namespace {

using json = nlohmann::json;

class identity final : public normalizer {
public:
  std::string apply(std::string text) const override { return text; }
};

class unicode_form final : public normalizer {
public:
  explicit unicode_form(utf8proc_option_t options) : options_(options) {}
  std::string apply(std::string text) const override {
    utf8proc_uint8_t* out = nullptr;
    auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                          static_cast<utf8proc_ssize_t>(text.size()), &out, options_);
    if (n < 0)
      return text;  // ill-formed input: leave it to the byte-level stages
    std::string result(reinterpret_cast<char*>(out), static_cast<size_t>(n));
    std::free(out);
    return result;
  }

private:
  utf8proc_option_t options_;
};

class lowercase final : public normalizer {
public:
  std::string apply(std::string text) const override {
    std::string out;
    const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
    utf8proc_ssize_t left = static_cast<utf8proc_ssize_t>(text.size());
    while (left > 0) {
      utf8proc_int32_t cp = 0;
      auto n = utf8proc_iterate(p, left, &cp);
      if (n <= 0) {
        out.push_back(static_cast<char>(*p));
        ++p;
        --left;
        continue;
      }
      utf8proc_uint8_t buf[4];
      auto m = utf8proc_encode_char(utf8proc_tolower(cp), buf);
      out.append(reinterpret_cast<char*>(buf), static_cast<size_t>(m));
      p += n;
      left -= n;
    }
    return out;
  }
};

class prepend final : public normalizer {
public:
  explicit prepend(std::string prefix) : prefix_(std::move(prefix)) {}
  std::string apply(std::string text) const override {
    return text.empty() ? text : prefix_ + text;
  }

private:
  std::string prefix_;
};

class replace final : public normalizer {
public:
  replace(std::string from, std::string to) : from_(std::move(from)), to_(std::move(to)) {}
  std::string apply(std::string text) const override {
    if (from_.empty())
      return text;
    std::string out;
    size_t pos = 0;
    for (auto hit = text.find(from_); hit != std::string::npos; hit = text.find(from_, pos)) {
      out.append(text, pos, hit - pos).append(to_);
      pos = hit + from_.size();
    }
    return out.append(text, pos, std::string::npos);
  }

private:
  std::string from_, to_;
};

class sequence final : public normalizer {
public:
  explicit sequence(std::vector<std::shared_ptr<const normalizer>> parts) : parts_(std::move(parts)) {}
  std::string apply(std::string text) const override {
    for (const auto& p : parts_)
      text = p->apply(std::move(text));
    return text;
  }

private:
  std::vector<std::shared_ptr<const normalizer>> parts_;
};

}  // namespace

result<std::shared_ptr<const normalizer>> make_normalizer(const json& node) {
  if (node.is_null())
    return std::shared_ptr<const normalizer>(std::make_shared<identity>());
  auto type = node.value("type", std::string{});
  auto stable = UTF8PROC_STABLE;
  if (type == "NFC")
    return std::shared_ptr<const normalizer>(
      std::make_shared<unicode_form>(utf8proc_option_t(stable | UTF8PROC_COMPOSE)));
  if (type == "NFD")
    return std::shared_ptr<const normalizer>(
      std::make_shared<unicode_form>(utf8proc_option_t(stable | UTF8PROC_DECOMPOSE)));
  if (type == "NFKC")
    return std::shared_ptr<const normalizer>(std::make_shared<unicode_form>(
      utf8proc_option_t(stable | UTF8PROC_COMPOSE | UTF8PROC_COMPAT)));
  if (type == "NFKD")
    return std::shared_ptr<const normalizer>(std::make_shared<unicode_form>(
      utf8proc_option_t(stable | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT)));
  if (type == "Lowercase")
    return std::shared_ptr<const normalizer>(std::make_shared<lowercase>());
  if (type == "Prepend")
    return std::shared_ptr<const normalizer>(
      std::make_shared<prepend>(node.value("prepend", std::string{})));
  if (type == "Replace" && node.contains("pattern") && node["pattern"].contains("String"))
    return std::shared_ptr<const normalizer>(std::make_shared<replace>(
      node["pattern"]["String"].get<std::string>(), node.value("content", std::string{})));
  if (type == "Sequence") {
    std::vector<std::shared_ptr<const normalizer>> parts;
    for (const auto& child : node.value("normalizers", json::array())) {
      auto part = make_normalizer(child);
      if (!part)
        return part.err();
      parts.push_back(*part);
    }
    return std::shared_ptr<const normalizer>(std::make_shared<sequence>(std::move(parts)));
  }
  return make_error(errc::invalid_model, "unsupported tokenizer normalizer: " + node.dump());
}

}  // namespace adapterd::model
