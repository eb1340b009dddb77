// tokenizer.json loading and encoding. The input is split at the first NUL: before it a
// tokenizer.json (or, when that does not load, a fixed byte-level one), after it the text.
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "model/tokenizer/tokenizer.hpp"

namespace {

// A small GPT-2-style byte-level BPE: the 256 byte symbols and a few merges.
std::shared_ptr<const adapterd::model::tokenizer> fixed_tokenizer() {
  static auto tok = [] {
    std::string vocab = "{";
    int id = 0;
    auto add = [&](const std::string& t) {
      vocab += (id ? "," : "") + std::string("\"") + t + "\":" + std::to_string(id);
      ++id;
    };
    for (int c = '!'; c <= '~'; ++c)
      add(c == '"' ? "\\\"" : c == '\\' ? "\\\\" : std::string(1, static_cast<char>(c)));
    for (const char* t : {"\\u0120", "\\u0120t", "he", "\\u0120the", "ll", "llo"})
      add(t);
    vocab += "}";
    std::string json = R"({"model":{"type":"BPE","vocab":)" + vocab
                       + R"(,"merges":["\u0120 t","h e","\u0120t he","l l","ll o"]},)"
                         R"("pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"use_regex":true},)"
                         R"("decoder":{"type":"ByteLevel"},)"
                         R"("added_tokens":[{"id":1000,"content":"<|end|>","special":true}]})";
    auto t = adapterd::model::tokenizer::from_json(json, "");
    return t ? *t : nullptr;
  }();
  return tok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const char* begin = reinterpret_cast<const char*>(data);
  const char* nul = static_cast<const char*>(std::memchr(begin, 0, size));
  std::string spec(begin, nul ? nul : begin + size);
  std::string text = nul ? std::string(nul + 1, begin + size) : spec;
  auto loaded = adapterd::model::tokenizer::from_json(spec, "");
  auto tok = loaded ? *loaded : fixed_tokenizer();
  if (!tok)
    return 0;
  auto ids = tok->encode(text, true);
  (void)tok->decode(ids, false);
  return 0;
}
