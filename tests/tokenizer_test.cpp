#include <random>

#include <catch2/catch.hpp>

#include "model/stream_decoder.hpp"
#include "model/tokenizer.hpp"
#include "model/utf8.hpp"
#include "tests/fixtures.hpp"

using namespace adapterd::model;
using adapterd::test::fixtures_dir;
using adapterd::test::read_json;
using adapterd::test::read_text;

namespace {

std::shared_ptr<const tokenizer> load_tokenizer(const std::string& dir) {
  auto t = tokenizer::load(dir);
  if (!t)
    FAIL("load " << dir << ": " << t.err().message);
  return *t;
}

}  // namespace

TEST_CASE("golden fixture tokenizers encode and decode like Hugging Face", "[tokenizer]") {
  ADAPTERD_SKIP_WITHOUT_FIXTURES();
  for (const char* preset : {"llama", "qwen2"}) {
    auto golden = read_json(fixtures_dir() + "/" + preset + "/golden.json");
    auto tok = load_tokenizer(fixtures_dir() + "/" + preset + "/model");
    for (const auto& c : golden["tokenizer"]["encode_cases"]) {
      INFO(preset << " encode: " << c["text"].get<std::string>());
      CHECK(tok->encode(c["text"], c["add_special_tokens"]) == c["ids"].get<std::vector<int32_t>>());
    }
    for (const auto& c : golden["tokenizer"]["decode_cases"]) {
      INFO(preset << " decode: " << c["ids"].dump());
      CHECK(tok->decode(c["ids"], c["skip_special_tokens"]) == c["text"].get<std::string>());
    }
    for (const auto& c : golden["cases"]) {
      INFO(preset << " case " << c["id"].get<std::string>());
      CHECK(tok->encode(c["prompt"], true) == c["prompt_ids"].get<std::vector<int32_t>>());
      CHECK(tok->decode(c["greedy_ids"], true) == c["text"].get<std::string>());
    }
  }
}

TEST_CASE("real byte-level vocabularies give Hugging Face's ids", "[tokenizer]") {
  ADAPTERD_SKIP_WITHOUT_FIXTURES();
  for (const char* name : {"gpt-2", "llama-bpe", "qwen2", "deepseek-llm", "falcon", "mpt", "llama-spm", "phi-3"}) {
    auto dir = fixtures_dir() + "/tokenizers/" + name;
    auto tok = tokenizer::load(dir);
    if (!tok) {
      WARN(name << ": " << tok.err().message);
      continue;
    }
    size_t failed = 0, total = 0;
    for (const auto& c : read_json(dir + "/cases.json")) {
      ++total;
      auto ids = (*tok)->encode(c["text"], false);
      if (ids != c["ids"].get<std::vector<int32_t>>()) {
        ++failed;
        UNSCOPED_INFO(name << " mismatch on: " << c["text"].dump());
      }
    }
    INFO(name << ": " << failed << " of " << total << " cases differ");
    CHECK(failed == 0);
  }
}

TEST_CASE("encode then decode gives back arbitrary UTF-8", "[tokenizer]") {
  ADAPTERD_SKIP_WITHOUT_FIXTURES();
  auto tok = load_tokenizer(fixtures_dir() + "/llama/model");
  std::mt19937 rng(7);
  const char32_t ranges[][2] = {{0x20, 0x7e}, {0xa0, 0x2ff}, {0x400, 0x4ff}, {0x3040, 0x30ff},
                                {0x4e00, 0x4fff}, {0xac00, 0xacff}, {0x1f300, 0x1f64f}, {9, 13}};
  for (int round = 0; round < 200; ++round) {
    std::string text;
    int n = static_cast<int>(rng() % 40);
    for (int i = 0; i < n; ++i) {
      const auto& r = ranges[rng() % 8];
      utf8::append(text, r[0] + rng() % (r[1] - r[0] + 1));
    }
    INFO("text: " << text);
    CHECK(tok->decode(tok->encode(text, false), false) == text);
  }
}

TEST_CASE("lossy UTF-8 and incomplete tails", "[tokenizer]") {
  CHECK(utf8::lossy("a\xE2\x82") == "a\xEF\xBF\xBD");
  CHECK(utf8::lossy("\xFF\xFE") == "\xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(utf8::lossy("\xE2\x82\xAC") == "\xE2\x82\xAC");
  CHECK(utf8::complete_prefix("ab\xE2\x82") == 2);
  CHECK(utf8::complete_prefix("ab\xE2\x82\xAC") == 5);
  CHECK(utf8::complete_prefix("ab\xFF") == 3);
}

TEST_CASE("streaming decode never emits a broken character and adds up", "[tokenizer][stream]") {
  ADAPTERD_SKIP_WITHOUT_FIXTURES();
  for (const char* dir : {"/llama/model", "/qwen2/model", "/tokenizers/llama-spm"}) {
    auto tok = load_tokenizer(fixtures_dir() + dir);
    std::mt19937 rng(11);
    for (int round = 0; round < 50; ++round) {
      std::string text;
      int n = 1 + static_cast<int>(rng() % 30);
      for (int i = 0; i < n; ++i) {
        static const char32_t pool[] = {U'a', U' ', U'\u00e9', U'\u4e2d', U'\U0001F600', U'\n', U'Z', U'\u0416'};
        utf8::append(text, pool[rng() % 8]);
      }
      stream_decoder stream(*tok, true);
      std::string joined;
      for (auto id : tok->encode(text, false)) {
        auto chunk = stream.push(id);
        CHECK(utf8::lossy(chunk) == chunk);                          // valid UTF-8
        CHECK(chunk.find("\xEF\xBF\xBD") == std::string::npos);      // no half characters
        joined += chunk;
      }
      joined += stream.finish();
      INFO(dir << ": " << text);
      CHECK(joined == tok->decode(tok->encode(text, false), true));
    }
  }
}

TEST_CASE("add_bos_token and add_eos_token apply when tokenizer.json has no template", "[tokenizer]") {
  nlohmann::json tj = {
    {"added_tokens", {{{"id", 3}, {"content", "<s>"}, {"special", true}},
                      {{"id", 4}, {"content", "</s>"}, {"special", true}}}},
    {"normalizer", nullptr},
    {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
    {"post_processor", nullptr},
    {"decoder", {{"type", "ByteLevel"}}},
    {"model", {{"type", "BPE"}, {"vocab", {{"a", 0}, {"b", 1}, {"ab", 2}}}, {"merges", {"a b"}}}}};
  auto with = tokenizer::from_json(tj.dump(), R"({"add_bos_token": true, "add_eos_token": true,
    "bos_token": "<s>", "eos_token": {"content": "</s>"}})");
  REQUIRE(with);
  CHECK((*with)->encode("ab", true) == std::vector<int32_t>{3, 2, 4});
  CHECK((*with)->encode("ab", false) == std::vector<int32_t>{2});
  CHECK((*with)->eos_id() == 4);
  CHECK((*with)->decode({3, 2, 4}, true) == "ab");
  CHECK((*with)->decode({3, 2, 4}, false) == "<s>ab</s>");
  auto without = tokenizer::from_json(tj.dump(), "");
  REQUIRE(without);
  CHECK((*without)->encode("ab", true) == std::vector<int32_t>{2});
}

TEST_CASE("unsupported tokenizer parts are refused by name", "[tokenizer]") {
  nlohmann::json tj = {{"model", {{"type", "WordPiece"}, {"vocab", {{"a", 0}}}}}};
  auto r = tokenizer::from_json(tj.dump(), "");
  REQUIRE_FALSE(r);
  CHECK(r.err().message.find("WordPiece") != std::string::npos);
  tj = {{"model", {{"type", "BPE"}, {"vocab", {{"a", 0}}}}}, {"pre_tokenizer", {{"type", "BertPreTokenizer"}}}};
  r = tokenizer::from_json(tj.dump(), "");
  REQUIRE_FALSE(r);
  CHECK(r.err().message.find("BertPreTokenizer") != std::string::npos);
  CHECK_FALSE(tokenizer::from_json("{broken", ""));
}
