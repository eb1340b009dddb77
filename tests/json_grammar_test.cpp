// Structured outputs: JSON Schema -> matcher -> token masks. Every text a constraint lets
// through parses and follows its schema; what it cannot enforce is refused by name.
#include <random>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "model/base_model.hpp"
#include "model/grammar/json_matcher.hpp"
#include "model/grammar/json_schema.hpp"
#include "model/grammar/token_masks.hpp"
#include "tests/fixtures.hpp"

using namespace adapterd::model;
using adapterd::test::fixtures_dir;
using json = nlohmann::json;

namespace {

const char* person_schema = R"({
  "type": "object",
  "properties": {
    "name": {"type": "string"},
    "age": {"type": "integer"},
    "height": {"type": ["number", "null"]},
    "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3},
    "address": {"type": "object", "properties": {"city": {"type": "string"},
                                                  "zip": {"enum": ["12345", 678, true]}},
                "required": ["city", "zip"], "additionalProperties": false},
    "nickname": {"type": "string"},
    "kind": {"const": "person"}
  },
  "required": ["name", "age", "height", "tags", "address", "kind"],
  "additionalProperties": false
})";

bool accepts(const schema_graph& g, const std::string& text) {
  json_matcher m(g);
  return m.feed(text) && m.can_end();
}

// The subset's own validation of a parsed value, independent of the matcher.
bool valid_person(const json& v) {
  if (!v.is_object() || !v["name"].is_string() || !v["age"].is_number_integer())
    return false;
  if (!(v["height"].is_number() || v["height"].is_null()))
    return false;
  const auto& tags = v["tags"];
  if (!tags.is_array() || tags.empty() || tags.size() > 3)
    return false;
  for (const auto& t : tags)
    if (!t.is_string())
      return false;
  const auto& a = v["address"];
  if (!a.is_object() || a.size() != 2 || !a["city"].is_string())
    return false;
  if (a["zip"] != json("12345") && a["zip"] != json(678) && a["zip"] != json(true))
    return false;
  if (v["kind"] != "person")
    return false;
  for (const auto& [key, value] : v.items())
    if (key != "name" && key != "age" && key != "height" && key != "tags" && key != "address"
        && key != "nickname" && key != "kind")
      return false;
  return !v.contains("nickname") || v["nickname"].is_string();
}

}  // namespace

TEST_CASE("a schema's keywords outside the subset are refused by name", "[grammar]") {
  for (const auto& [schema, keyword] : std::vector<std::pair<std::string, std::string>>{
           {R"({"type": "string", "pattern": "a+"})", "pattern"},
           {R"({"type": "object", "maxProperties": 2})", "maxProperties"},
           {R"({"oneOf": [{"type": "string"}]})", "oneOf"},
           {R"({"type": "integer", "minimum": 0})", "minimum"},
           {R"({"type": "object", "properties": {"a": {"format": "date"}}})", "format"},
           {R"({"type": "wizard"})", "wizard"},
           {R"({"$ref": "#/$defs/missing"})", "missing"},
           {R"({"type": "object", "properties": {"a": {}}, "required": ["b"]})", "required"}}) {
    auto g = compile_json_schema(schema);
    REQUIRE_FALSE(g);
    CHECK(g.err().code == errc::invalid_argument);
    CHECK(g.err().message.find(keyword) != std::string::npos);
  }
  CHECK_FALSE(compile_json_schema("{not json"));
}

TEST_CASE("the matcher follows a nested schema byte by byte", "[grammar]") {
  auto g = compile_json_schema(person_schema);
  REQUIRE(g);
  const std::string good =
      R"({"name":"Ann \"A\" \u00e9","age":-12,"height":1.5e3,"tags":["x"],"address":{"city":"Oslo","zip":678},"kind":"person"})";
  CHECK(accepts(*g, good));
  CHECK(accepts(*g, R"({ "name": "B", "age": 0, "height": null, "tags": ["a", "b", "c"],
    "address": {"city": "", "zip": true}, "nickname": "b", "kind": "person"})"));
  CHECK_FALSE(accepts(*g, R"({"name":"A","age":1.5})"));                       // not an integer
  CHECK_FALSE(accepts(*g, R"({"age":1,"name":"A"})"));                         // out of order
  CHECK_FALSE(accepts(*g, R"({"name":"A","extra":1})"));                       // not listed
  CHECK_FALSE(accepts(*g, R"({"name":"A","age":1,"height":null,"tags":[])"));  // minItems
  CHECK_FALSE(accepts(*g, R"({"name":"A","age":1,"height":null,"tags":["a","b","c","d"])"));
  CHECK_FALSE(accepts(*g, R"({"name":"A","age":01})"));  // leading zero
  CHECK_FALSE(accepts(
      *g, R"({"name":"A","age":1,"height":null,"tags":["a"],"address":{"city":"c","zip":"1"})"));
  CHECK_FALSE(accepts(*g, good + " "));  // nothing after it
  CHECK_FALSE(accepts(
      *g,
      R"({"name":"A","age":1,"height":null,"tags":["a"],"address":{"city":"c","zip":678},"kind":"person")"));
  json_matcher m(*g);
  CHECK(m.feed(good));
  CHECK(m.finished());
  json_matcher blank(*g);
  CHECK_FALSE(blank.feed(std::string("{") + std::string(json_matcher::max_whitespace + 1, ' ')));
}

TEST_CASE("json_object, recursion through $defs, anyOf and a number at the top", "[grammar]") {
  auto any = any_json_object_graph();
  CHECK(accepts(any, R"({"a":[1,{"b":null}],"c":"d","e":-0.5E+3,"f":false})"));
  CHECK_FALSE(accepts(any, R"([1])"));
  CHECK_FALSE(accepts(any, R"({"a":tru})"));
  auto tree = compile_json_schema(R"({"$defs": {"node": {"type": "object",
      "properties": {"v": {"type": "integer"}, "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
      "required": ["v", "kids"]}}, "$ref": "#/$defs/node"})");
  REQUIRE(tree);
  CHECK(accepts(*tree, R"({"v":1,"kids":[{"v":2,"kids":[]},{"v":3,"kids":[{"v":4,"kids":[]}]}]})"));
  CHECK_FALSE(accepts(*tree, R"({"v":1,"kids":[{"v":2}]})"));
  auto either = compile_json_schema(
      R"({"anyOf": [{"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                                                  {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "null"}}, "required": ["a", "b"]}]})");
  REQUIRE(either);
  CHECK(accepts(*either, R"({"a":"x"})"));
  CHECK(accepts(*either, R"({"a":5,"b":null})"));
  CHECK_FALSE(accepts(*either, R"({"a":5})"));
  auto sized = compile_json_schema(R"({"type": "string", "minLength": 2, "maxLength": 3})");
  REQUIRE(sized);
  CHECK(accepts(*sized, R"("ab")"));
  CHECK(accepts(*sized, R"("a\n")"));
  CHECK(accepts(*sized, "\"\xc3\xa9\\u00e9x\""));  // characters, not bytes
  CHECK_FALSE(accepts(*sized, R"("a")"));
  CHECK_FALSE(accepts(*sized, "\"a\x80\x80\x80\""));  // continuation bytes without a lead
  CHECK_FALSE(accepts(*sized, "\"a\xc3\""));          // a character cut short
  CHECK_FALSE(accepts(*sized, "\"a\xff\""));
  CHECK_FALSE(accepts(*sized, "\"a\xf4\xa7\xb9\xa1\""));  // past U+10FFFF
  CHECK_FALSE(accepts(*sized, "\"a\xed\xa0\x80\""));      // a surrogate
  CHECK_FALSE(accepts(*sized, "\"a\xe0\x80\xaf\""));      // overlong
  CHECK(accepts(*sized, "\"a\xf4\x8f\xbf\xbf\""));
  CHECK_FALSE(accepts(*sized, R"("abcd")"));
  CHECK_FALSE(compile_json_schema(R"({"type": "string", "minLength": 4, "maxLength": 3})"));
  auto number = compile_json_schema(R"({"type": "number"})");
  REQUIRE(number);
  json_matcher m(*number);
  CHECK(m.feed("12"));
  CHECK(m.can_end());
  CHECK_FALSE(m.finished());  // more digits may follow
  CHECK(m.feed(".5"));
  CHECK_FALSE(m.feed("x"));
  CHECK(m.can_end());  // unchanged by the refused bytes
}

TEST_CASE("random walks through a real vocabulary's masks always give valid JSON", "[grammar]") {
  ADAPTERD_SKIP_WITHOUT_FIXTURES();
  auto tok = tokenizer::load(fixtures_dir() + "/tokenizers/gpt-2");
  REQUIRE(tok);
  constraint_cache cache(*tok, (*tok)->vocab_size());
  auto constraint = cache.get(person_schema);
  REQUIRE(constraint);
  CHECK(cache.get(person_schema)->get() == constraint->get());  // shared by schema text
  std::mt19937 rng(3);
  int whole = 0;
  for (int walk = 0; walk < 20; ++walk) {
    auto m = (*constraint)->start();
    std::string text;
    for (int step = 0; step < 400 && !m.finished(); ++step) {
      auto allowed = (*constraint)->allowed(m);
      std::vector<int32_t> ids;
      for (size_t id = 0; id < (*constraint)->vocab(); ++id)
        if (allowed->allows(static_cast<int32_t>(id)))
          ids.push_back(static_cast<int32_t>(id));
      REQUIRE_FALSE(ids.empty());
      // Mostly tokens that close a string or a value, so that walks reach the end.
      std::vector<int32_t> closing;
      for (auto id : ids)
        if ((*constraint)->bytes(id).find_first_of("\"]},:") != std::string::npos)
          closing.push_back(id);
      const auto& pool = !closing.empty() && rng() % 10 < 7 ? closing : ids;
      auto id = pool[std::uniform_int_distribution<size_t>(0, pool.size() - 1)(rng)];
      REQUIRE(m.feed((*constraint)->bytes(id)));
      text += (*constraint)->bytes(id);
    }
    if (!m.finished())
      continue;
    ++whole;
    auto parsed = json::parse(text, nullptr, false);
    REQUIRE_FALSE(parsed.is_discarded());
    CHECK(valid_person(parsed));
  }
  CHECK(whole >= 10);
}

TEST_CASE("a constrained generation gives its JSON whole, and ends there", "[grammar][model]") {
  ADAPTERD_SKIP_WITHOUT_FIXTURES();
  auto model = base_model::load(fixtures_dir() + "/llama/model", load_options{"cpu", 0, "float32"});
  REQUIRE(model);
  // Short strings: a model of random weights rarely closes one on its own.
  auto constraint = (*model)->json_constraint_for(
      R"({"type": "object", "properties": {"ok": {"type": "boolean"}, "n": {"type": "integer"},
          "tag": {"type": "string", "maxLength": 8}}, "required": ["ok", "n", "tag"], "additionalProperties": false})");
  REQUIRE(constraint);
  CHECK_FALSE((*model)->json_constraint_for(R"({"type": "string", "pattern": "x"})"));
  auto prompt = (*model)->tok().encode("A person:", true);
  int whole = 0;
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    generation_params p;
    p.max_new_tokens = 300;
    p.sampling.temperature = 1.0;
    p.sampling.seed = seed;
    p.constraint = *constraint;
    std::vector<int32_t> streamed;  // every token reaches on_token, the last one too
    auto out = (*model)->generate_ids(prompt, p, nullptr, [&](int32_t id) {
      streamed.push_back(id);
      return true;
    });
    REQUIRE(out);
    CHECK(streamed == out->output_ids);
    if (out->finish_reason == "length")
      continue;
    ++whole;
    CHECK(out->finish_reason == "stop");
    const auto text = (*model)->tok().decode(out->output_ids, true);
    auto parsed = json::parse(text, nullptr, false);
    INFO(text);
    REQUIRE_FALSE(parsed.is_discarded());
    CHECK(parsed.size() == 3);
    CHECK(parsed["ok"].is_boolean());
    CHECK(parsed["n"].is_number_integer());
    CHECK(parsed["tag"].is_string());
  }
  CHECK(whole >= 3);
}
