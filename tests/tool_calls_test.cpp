// Tool calls: the form each template family writes them in, told from its template; the
// calls taken out of streamed output whatever the chunking, with no output lost; and the
// schema that forces a call, which accepts exactly the calls it should.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

#include "model/grammar/json_matcher.hpp"
#include "model/grammar/json_schema.hpp"
#include "model/tools/tool_call_parser.hpp"
#include "model/tools/tool_schema.hpp"
#include "model/tools/tool_syntax.hpp"

using namespace adapterd::model;
using json = nlohmann::json;

namespace {

const std::vector<std::string> names = {"get_weather", "get_time"};

struct parsed {
  std::string content;
  std::vector<chat_tool_call> calls;
};

// The output fed in pieces of `piece` bytes (0: whole), as streaming would cut it.
parsed run(tool_syntax syntax, const std::string& output, size_t piece = 0, bool forced = false) {
  tool_call_parser p(syntax, names, forced);
  parsed out;
  if (piece == 0)
    piece = output.size() + 1;
  for (size_t i = 0; i < output.size(); i += piece) {
    out.content += p.push(output.substr(i, piece));
    for (auto& c : p.take_calls())
      out.calls.push_back(std::move(c));
  }
  out.content += p.finish();
  for (auto& c : p.take_calls())
    out.calls.push_back(std::move(c));
  CHECK(out.calls.size() == p.calls().size());
  return out;
}

std::string template_text(const std::string& name) {
  std::ifstream in(std::string(ADAPTERD_TESTS_DIR) + "/data/templates/" + name + ".jinja");
  REQUIRE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const char* tools_json = R"([
  {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
    "required": ["city"], "additionalProperties": false}}},
  {"type": "function", "function": {"name": "get_time"}}])";

bool accepts(const std::string& schema, const std::string& text) {
  auto graph = compile_json_schema(schema);
  REQUIRE(graph);
  json_matcher m(*graph);
  return m.feed(text) && m.can_end();
}

}  // namespace

TEST_CASE("a template's tool-call syntax is told from the template", "[tools]") {
  CHECK(tool_syntax_of(template_text("llama-3.1")) == tool_syntax::llama3_json);
  CHECK(tool_syntax_of(template_text("qwen2.5")) == tool_syntax::hermes);
  CHECK(tool_syntax_of(template_text("mistral-v0.3")) == tool_syntax::mistral);
  CHECK(tool_syntax_of("{{ tools | tojson }}{{ messages[0].content }}") == tool_syntax::json);
  CHECK(tool_syntax_of("{% for m in messages %}{{ m.content }}{% endfor %}") == tool_syntax::none);
  CHECK(std::string(arguments_key(tool_syntax::llama3_json)) == "parameters");
  CHECK(std::string(arguments_key(tool_syntax::hermes)) == "arguments");
}

TEST_CASE("hermes calls come out of the text, however the stream cuts it", "[tools]") {
  const std::string output =
      "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": "
      "\"Oslo\"}}\n"
      "</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>";
  for (size_t piece : {0, 1, 2, 3, 5, 7, 11}) {
    INFO("piece " << piece);
    auto r = run(tool_syntax::hermes, output, piece);
    CHECK(r.content == "Let me check.");
    REQUIRE(r.calls.size() == 2);
    CHECK(r.calls[0].name == "get_weather");
    CHECK(json::parse(r.calls[0].arguments) == json{{"city", "Oslo"}});
    CHECK(r.calls[1].name == "get_time");
    CHECK(r.calls[1].arguments == "{}");
    CHECK(r.calls[0].id.rfind("call_", 0) == 0);
    CHECK(r.calls[0].id.size() == 29);
    CHECK(r.calls[0].id != r.calls[1].id);
  }
}

TEST_CASE("output that only looks like a call is content, byte for byte", "[tools]") {
  const std::vector<std::string> outputs = {
      "plain text with a < sign and <tool and <tool_cal",
      "  leading and trailing blanks \n\n",
      "<tool_call>\n{\"name\": \"rm_rf\", \"arguments\": {}}\n</tool_call> unknown function",
      "a\n<tool_call>\nnot json at all\n</tool_call>\nb",
      "ends inside a call: <tool_call>{\"name\": \"get_weather\", \"argu",
  };
  for (const auto& output : outputs)
    for (size_t piece : {0, 1, 4}) {
      INFO(output << " / piece " << piece);
      auto r = run(tool_syntax::hermes, output, piece);
      CHECK(r.calls.empty());
      CHECK(r.content == output);
    }
  // A call the output ends inside of, but whole as JSON (end of sequence for the tag).
  auto r =
      run(tool_syntax::hermes, "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n", 3);
  REQUIRE(r.calls.size() == 1);
  CHECK(r.content.empty());
}

TEST_CASE("Llama 3 JSON calls, Mistral lists and the forced JSON", "[tools]") {
  for (size_t piece : {0, 1, 6}) {
    INFO("piece " << piece);
    auto one = run(tool_syntax::llama3_json,
                   "\n {\"name\": \"get_weather\", \"parameters\": {\"city\": \"Rome\", \"unit\": "
                   "\"celsius\"}}",
                   piece);
    REQUIRE(one.calls.size() == 1);
    CHECK(one.content.empty());
    CHECK(json::parse(one.calls[0].arguments) == json{{"city", "Rome"}, {"unit", "celsius"}});
    auto two = run(
        tool_syntax::llama3_json,
        "<|python_tag|>{\"name\": \"get_time\", \"parameters\": {}}; {\"name\": \"get_weather\", "
        "\"parameters\": \"{\\\"city\\\": \\\"Oslo\\\"}\"}",
        piece);
    REQUIRE(two.calls.size() == 2);
    CHECK(json::parse(two.calls[1].arguments) == json{{"city", "Oslo"}});
    auto text = run(tool_syntax::llama3_json, "  The weather is {fine}.", piece);
    CHECK(text.calls.empty());
    CHECK(text.content == "  The weather is {fine}.");
    auto bad = run(tool_syntax::llama3_json, "{\"name\": \"get_time\"} trailing words", piece);
    CHECK(bad.calls.empty());
    CHECK(bad.content == "{\"name\": \"get_time\"} trailing words");
    auto mistral = run(
        tool_syntax::mistral,
        "[TOOL_CALLS] [{\"name\": \"get_time\", \"arguments\": {}}, {\"name\": \"get_weather\", "
        "\"arguments\": {\"city\": \"Bern\"}}]",
        piece);
    REQUIRE(mistral.calls.size() == 2);
    CHECK(mistral.calls[0].id.size() == 9);
    auto forced =
        run(tool_syntax::hermes,
            "[{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Kyiv\"}}]", piece, true);
    REQUIRE(forced.calls.size() == 1);
    CHECK(forced.content.empty());
    auto cut = run(tool_syntax::hermes, "[{\"name\": \"get_weather\", \"argum", piece, true);
    CHECK(cut.calls.empty());
    CHECK(cut.content == "[{\"name\": \"get_weather\", \"argum");
  }
}

TEST_CASE("the forced-call schema accepts exactly the calls tool_choice allows", "[tools]") {
  auto named = forced_call_schema(tools_json, "get_weather", true, tool_syntax::hermes);
  REQUIRE(named);
  CHECK(accepts(*named, R"({"name": "get_weather", "arguments": {"city": "Oslo"}})"));
  CHECK(accepts(*named,
                R"({"name": "get_weather", "arguments": {"city": "Oslo", "unit": "celsius"}})"));
  CHECK_FALSE(accepts(*named, R"({"name": "get_time", "arguments": {}})"));
  CHECK_FALSE(accepts(*named, R"({"name": "get_weather", "arguments": {}})"));  // city is required
  CHECK_FALSE(accepts(*named, R"({"name": "get_weather", "arguments": {"city": "Oslo", "x": 1}})"));
  CHECK_FALSE(accepts(*named, R"([{"name": "get_weather", "arguments": {"city": "Oslo"}}])"));

  auto llama = forced_call_schema(tools_json, "get_time", true, tool_syntax::llama3_json);
  REQUIRE(llama);
  CHECK(accepts(*llama, R"({"name": "get_time", "parameters": {"any": [1, 2]}})"));
  CHECK_FALSE(accepts(*llama, R"({"name": "get_time", "arguments": {}})"));

  auto any = forced_call_schema(tools_json, "", true, tool_syntax::hermes);
  REQUIRE(any);
  CHECK(accepts(
      *any,
      R"([{"name": "get_time", "arguments": {}}, {"name": "get_weather", "arguments": {"city": "A"}}])"));
  CHECK_FALSE(accepts(*any, "[]"));
  auto one = forced_call_schema(tools_json, "", false, tool_syntax::hermes);
  REQUIRE(one);
  CHECK(accepts(*one, R"([{"name": "get_time", "arguments": {}}])"));
  CHECK_FALSE(accepts(
      *one, R"([{"name": "get_time", "arguments": {}}, {"name": "get_time", "arguments": {}}])"));

  auto missing = forced_call_schema(tools_json, "launch", true, tool_syntax::hermes);
  REQUIRE_FALSE(missing);
  CHECK(missing.err().message.find("'launch'") != std::string::npos);
  CHECK(tool_names(tools_json) == names);
}
