#include "model/tokenizer/tokenizer.hpp"

#include <algorithm>
#include <cctype>

#include <nlohmann/json.hpp>

#include "model/io/json_number.hpp"

#include "model/io/text_file.hpp"
#include "model/tokenizer/stages.hpp"
#include "model/tokenizer/utf8.hpp"

namespace adapterd::model {

namespace {

using json = nlohmann::json;

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// Token text of a tokenizer_config.json entry: a plain string or {"content": ...}.
std::optional<std::string> config_token(const json& config, const char* key) {
  if (!config.contains(key))
    return std::nullopt;
  const auto& v = config[key];
  if (v.is_string())
    return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string())
    return v["content"].get<std::string>();
  return std::nullopt;
}

// Finds the TemplateProcessing "single" template in a post_processor tree.
const json* find_template(const json& node) {
  if (!node.is_object())
    return nullptr;
  auto type = node.value("type", std::string{});
  if (type == "TemplateProcessing")
    return &node;
  if (type == "Sequence" && node.contains("processors"))
    for (const auto& child : node["processors"])  // by reference: we return a pointer into it
      if (const auto* t = find_template(child))
        return t;
  return nullptr;
}

bool supported_post_processor(const json& node) {
  if (node.is_null())
    return true;
  auto type = node.value("type", std::string{});
  if (type == "ByteLevel" || type == "TemplateProcessing")
    return true;
  if (type == "Sequence") {
    for (const auto& child : node.value("processors", json::array()))
      if (!supported_post_processor(child))
        return false;
    return true;
  }
  return false;
}

}  // namespace

result<std::shared_ptr<const tokenizer>> tokenizer::load(const std::string& dir) {
  auto text = read_text_file(dir + "/tokenizer.json");
  if (!text)
    return make_error(errc::invalid_model, "no tokenizer.json in " + dir);
  return from_json(*text, read_text_file(dir + "/tokenizer_config.json").value_or(""));
}

result<std::shared_ptr<const tokenizer>> tokenizer::from_json(const std::string& tokenizer_json,
                                                              const std::string& config_json) {
  auto root = json::parse(tokenizer_json, nullptr, false);
  if (root.is_discarded() || !root.is_object())
    return make_error(errc::invalid_model, "tokenizer.json is not a JSON object");
  auto config = config_json.empty() ? json::object() : json::parse(config_json, nullptr, false);
  if (config.is_discarded())
    return make_error(errc::invalid_model, "tokenizer_config.json is not valid JSON");
  try {
    auto t = std::make_shared<tokenizer>();
    auto norm = make_normalizer(root.value("normalizer", json()));
    if (!norm)
      return norm.err();
    auto pre = make_pre_tokenizer(root.value("pre_tokenizer", json()));
    if (!pre)
      return pre.err();
    auto model = bpe_model::load(root.value("model", json::object()));
    if (!model)
      return model.err();
    auto dec = make_decoder(root.value("decoder", json()));
    if (!dec)
      return dec.err();
    t->normalizer_ = *norm;
    t->pre_tokenizer_ = *pre;
    t->model_ = *model;
    t->decoder_ = *dec;
    t->vocab_size_ = t->model_->vocab_size();
    t->max_token_bytes_ = std::max<size_t>(4, t->model_->longest_token_bytes());
    for (const auto& a : root.value("added_tokens", json::array())) {
      added_token tok;
      tok.id = json_integer<int32_t>(a.at("id"), "added token id");
      tok.content = a.at("content").get<std::string>();
      tok.special = a.value("special", false);
      tok.lstrip = a.value("lstrip", false);
      tok.rstrip = a.value("rstrip", false);
      if (tok.content.empty())
        continue;
      t->vocab_size_ = std::max(t->vocab_size_, static_cast<size_t>(tok.id) + 1);
      t->max_token_bytes_ = std::max(t->max_token_bytes_, tok.content.size());
      t->added_.push_back(tok);
    }
    std::stable_sort(t->added_.begin(), t->added_.end(),
                     [](const added_token& a, const added_token& b) {
                       return a.content.size() > b.content.size();
                     });
    for (size_t i = 0; i < t->added_.size(); ++i) {
      t->added_by_id_[t->added_[i].id] = i;
      t->added_by_first_byte_[static_cast<unsigned char>(t->added_[i].content[0])].push_back(i);
    }

    const json post = root.value("post_processor", json());
    if (!supported_post_processor(post))
      return make_error(errc::invalid_model, "unsupported tokenizer post_processor: "
                                               + post.value("type", std::string{}));
    if (const auto* tmpl = find_template(post)) {
      bool before = true;
      for (const auto& item : tmpl->value("single", json::array())) {
        if (item.contains("Sequence")) {
          before = false;
          continue;
        }
        auto name = item.at("SpecialToken").at("id").get<std::string>();
        const auto& specials = tmpl->value("special_tokens", json::object());
        if (!specials.contains(name))
          return make_error(errc::invalid_model, "template names unknown token " + name);
        for (const auto& id : specials[name].at("ids"))
          (before ? t->prefix_ids_ : t->suffix_ids_).push_back(json_integer<int32_t>(id, "special token id"));
      }
    } else {
      auto bos = config_token(config, "bos_token");
      auto eos = config_token(config, "eos_token");
      if (config.value("add_bos_token", false) && bos && t->token_id(*bos))
        t->prefix_ids_.push_back(*t->token_id(*bos));
      if (config.value("add_eos_token", false) && eos && t->token_id(*eos))
        t->suffix_ids_.push_back(*t->token_id(*eos));
    }
    if (auto eos = config_token(config, "eos_token"))
      t->eos_id_ = t->token_id(*eos);
    t->bos_token_ = config_token(config, "bos_token").value_or("");
    t->eos_token_ = config_token(config, "eos_token").value_or("");
    if (config.contains("chat_template")) {
      const auto& ct = config["chat_template"];
      if (ct.is_string())
        t->chat_template_ = ct.get<std::string>();
      else if (ct.is_array())  // [{"name": "default", "template": ...}, {"name": "tool_use", ...}]
        for (const auto& named : ct)
          if (named.value("name", "") == "default")
            t->chat_template_ = named.value("template", "");
    }
    // Parsed once here, not on every chat request; a template that does not parse keeps
    // its error for the chat requests, and plain prompts still work.
    if (!t->chat_template_.empty())
      t->compiled_template_ = chat_template::compile(t->chat_template_);
    return std::shared_ptr<const tokenizer>(t);
  } catch (const std::exception& e) {  // json::exception, or a json_integer out of range
    return make_error(errc::invalid_model, std::string("tokenizer.json: ") + e.what());
  }
}

std::optional<int32_t> tokenizer::token_id(const std::string& token) const {
  for (const auto& a : added_)
    if (a.content == token)
      return a.id;
  auto id = model_->token_to_id(token);
  return id >= 0 ? std::optional<int32_t>(id) : std::nullopt;
}

std::string tokenizer::token_text(int32_t id) const {
  auto added = added_by_id_.find(id);
  if (added != added_by_id_.end())
    return added_[added->second].content;
  const auto* text = model_->id_to_token(id);
  return text ? *text : std::string();
}

bool tokenizer::is_special(int32_t id) const {
  auto it = added_by_id_.find(id);
  return it != added_by_id_.end() && added_[it->second].special;
}

std::vector<tokenizer::segment> tokenizer::split_added(const std::string& text) const {
  std::vector<segment> out;
  size_t plain_start = 0;
  size_t i = 0;
  while (i < text.size()) {
    const added_token* hit = nullptr;
    for (auto k : added_by_first_byte_[static_cast<unsigned char>(text[i])]) {  // longest first
      if (text.compare(i, added_[k].content.size(), added_[k].content) == 0) {
        hit = &added_[k];
        break;
      }
    }
    if (hit == nullptr) {
      ++i;
      continue;
    }
    size_t plain_end = i;
    if (hit->lstrip)
      while (plain_end > plain_start && is_space(text[plain_end - 1]))
        --plain_end;
    if (plain_end > plain_start)
      out.push_back({text.substr(plain_start, plain_end - plain_start), -1});
    out.push_back({hit->content, hit->id});
    i += hit->content.size();
    if (hit->rstrip)
      while (i < text.size() && is_space(text[i]))
        ++i;
    plain_start = i;
  }
  if (plain_start < text.size())
    out.push_back({text.substr(plain_start), -1});
  return out;
}

std::vector<int32_t> tokenizer::encode(const std::string& text, bool add_special_tokens) const {
  std::vector<int32_t> ids;
  if (add_special_tokens)
    ids = prefix_ids_;
  bool first = true;
  for (const auto& seg : split_added(text)) {
    if (seg.added_id >= 0) {
      ids.push_back(seg.added_id);
      first = false;
      continue;
    }
    // Word by word as the pre-tokenizer finds them: a long text is never held as a list.
    pre_tokenizer_->split_each(normalizer_->apply(seg.text), first, true,
                               [&](std::string&& word) { model_->encode_word(word, ids); });
    first = false;
  }
  if (add_special_tokens)
    ids.insert(ids.end(), suffix_ids_.begin(), suffix_ids_.end());
  return ids;
}

std::string tokenizer::decode_bytes(const std::vector<int32_t>& ids,
                                    bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (auto id : ids) {
    if (auto it = added_by_id_.find(id); it != added_by_id_.end()) {
      if (!(skip_special_tokens && added_[it->second].special))
        tokens.push_back(added_[it->second].content);
      continue;
    }
    if (const auto* tok = model_->id_to_token(id))
      tokens.push_back(*tok);
  }
  std::string text;
  for (const auto& piece : decoder_->decode_chain(std::move(tokens)))
    text += piece;
  return text;
}

std::string tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  return utf8::lossy(decode_bytes(ids, skip_special_tokens));
}

}  // namespace adapterd::model
