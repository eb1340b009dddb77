#include <random>

#include <catch2/catch.hpp>

#include "model/tokenizer/stages.hpp"
#include "model/tokenizer/stream_decoder.hpp"
#include "model/tokenizer/tokenizer.hpp"
#include "model/tokenizer/utf8.hpp"
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
    if (!tok)
      FAIL(name << ": " << tok.err().message);
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

TEST_CASE("BPE merges rank by rank give the heap's ids on real vocabularies", "[tokenizer][bpe]") {
  ADAPTERD_SKIP_WITHOUT_FIXTURES();
  std::mt19937 rng(7);
  for (const char* name : {"gpt-2", "llama-bpe", "qwen2", "llama-spm", "phi-3"}) {
    INFO(name);
    auto json = read_json(fixtures_dir() + "/tokenizers/" + name + "/tokenizer.json");
    auto bpe = bpe_model::load(json["model"]);
    REQUIRE(bpe);
    std::uniform_int_distribution<int32_t> any_id(0, static_cast<int32_t>((*bpe)->vocab_size()) - 1);
    for (int word = 0; word < 20; ++word) {
      // Words glued from vocabulary entries and repeats of one entry, so long merge chains occur.
      std::string text;
      auto unit = (*bpe)->id_to_token(any_id(rng));
      for (int piece = 0; piece < 400; ++piece) {
        const auto* token = word % 2 == 0 ? (*bpe)->id_to_token(any_id(rng)) : unit;
        if (token != nullptr)
          text += *token;
      }
      std::vector<int32_t> by_heap, by_buckets;
      (*bpe)->merge_word(text, by_heap, bpe_model::merge_order::heap);
      (*bpe)->merge_word(text, by_buckets, bpe_model::merge_order::rank_buckets);
      CHECK(by_heap == by_buckets);
    }
  }
}

TEST_CASE("a merge table whose ranks do not rise merges rank by rank as the heap does", "[tokenizer][bpe]") {
  // "ab" is made at rank 1 but used at rank 0: a rank-by-rank pass alone would leave "ab c".
  auto node = nlohmann::json::parse(R"({"type":"BPE","vocab":{"a":0,"b":1,"c":2,"ab":3,"abc":4},
                                        "merges":["ab c","a b"]})");
  auto bpe = bpe_model::load(node);
  REQUIRE(bpe);
  for (auto order : {bpe_model::merge_order::heap, bpe_model::merge_order::rank_buckets}) {
    std::vector<int32_t> ids;
    (*bpe)->merge_word("abcabc", ids, order);
    CHECK(ids == std::vector<int32_t>{4, 4});
  }
}

TEST_CASE("a long word split where no merge can join gives the whole word's ids", "[tokenizer][bpe]") {
  ADAPTERD_SKIP_WITHOUT_FIXTURES();
  // SentencePiece-style tokenizers see a whole prompt as one word, and it is split into
  // pieces that are merged (and cached) one by one: the ids must be those of one merge.
  const std::string sentence = "\xe2\x96\x81The\xe2\x96\x81quick\xe2\x96\x81" "brown\xe2\x96\x81\xe2\x96\x81\xe2\x96\x81"
                               "fox\xc3\xa9\xe2\x80\x94\xe4\xb8\xad\xe6\x96\x87\xf0\x9f\x98\x80{x[i]};\n\xe2\x96\x81" "1234";
  for (const char* name : {"llama-spm", "phi-3", "gpt-2"}) {
    INFO(name);
    auto json = read_json(fixtures_dir() + "/tokenizers/" + name + "/tokenizer.json");
    auto bpe = bpe_model::load(json["model"]);
    REQUIRE(bpe);
    std::string word;
    for (int i = 0; i < 60; ++i)
      word += sentence.substr(0, sentence.size() - static_cast<size_t>(i % 7));
    std::vector<int32_t> split, whole;
    (*bpe)->encode_word(word, split);
    (*bpe)->merge_word(word, whole, bpe_model::merge_order::heap);
    CHECK(split == whole);
  }
}
