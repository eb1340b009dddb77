// Chat templates rendered exactly as Jinja2 renders them for transformers'
// apply_chat_template: the expected prompts in tests/data/chat_templates.json come from
// Jinja2 itself (tests/data/make_chat_templates.py).
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/template/chat_template.hpp"

using namespace adapterd::model;

namespace {

// An OpenAI message of the goldens as the server reads it: a call's arguments as JSON text.
chat_message message_of(const nlohmann::json& m) {
  chat_message out;
  out.role = m["role"];
  out.null_content = m["content"].is_null();
  out.content = out.null_content ? "" : m["content"].get<std::string>();
  for (const auto& call : m.value("tool_calls", nlohmann::json::array()))
    out.tool_calls.push_back({call["id"], call["function"]["name"],
                              nlohmann::ordered_json(call["function"]["arguments"]).dump()});
  out.tool_call_id = m.value("tool_call_id", "");
  return out;
}

chat_message user_turn(const std::string& content) {
  chat_message m;
  m.role = "user";
  m.content = content;
  return m;
}

chat_template_input input_of(std::vector<chat_message> messages) {
  chat_template_input input;
  input.messages = std::move(messages);
  input.bos_token = "<s>";
  input.eos_token = "</s>";
  return input;
}

nlohmann::json goldens() {
  std::ifstream in(std::string(ADAPTERD_TESTS_DIR) + "/data/chat_templates.json");
  REQUIRE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str());
}

}  // namespace

TEST_CASE("chat templates render as Jinja2 renders them", "[chat]") {
  auto data = goldens();
  // Parsed in file order: the tools keep their key order, as the client sent it.
  std::ifstream in(std::string(ADAPTERD_TESTS_DIR) + "/data/chat_templates.json");
  auto tools = nlohmann::ordered_json::parse(in)["tools"].dump();
  size_t checked = 0, with_tools = 0;
  for (const auto& c : data["cases"]) {
    chat_template_input input;
    for (const auto& m : data["conversations"][c["conversation"].get<std::string>()])
      input.messages.push_back(message_of(m));
    if (c.value("tools", false)) {
      input.tools_json = tools;
      ++with_tools;
    }
    input.add_generation_prompt = c["add_generation_prompt"];
    input.bos_token = data["tokens"]["bos_token"];
    input.eos_token = data["tokens"]["eos_token"];
    auto name = c["template"].get<std::string>() + " / " + c["conversation"].get<std::string>()
                + (input.add_generation_prompt ? " + generation prompt" : "");
    INFO(name);
    auto out = render_chat_template(data["templates"][c["template"].get<std::string>()], input);
    if (c.contains("error")) {
      REQUIRE_FALSE(out);
      CHECK(out.err().code == errc::invalid_argument);
      CHECK(out.err().message.find(c["error"].get<std::string>()) != std::string::npos);
    } else {
      REQUIRE(out);
      CHECK(*out == c["expected"].get<std::string>());
    }
    ++checked;
  }
  CHECK(checked == 134);
  CHECK(with_tools == 24);
}

TEST_CASE("chat templates it cannot render are clear errors", "[chat]") {
  chat_template_input input;
  input.messages = {user_turn("hi")};
  for (const char* bad :
       {"{% macro m() %}x{% endmacro %}", "{{ messages | map(attribute='role') }}",
        "{% if true %}unclosed", "{{ 'unterminated }}", "{{ foo( }}", "{% endfor %}",
        "{{ messages[0].content.nosuchmethod() }}", "{{ 1 / 0 }}", "{{ 'a' + 1 }}",
        "{{ messages | tojson(sort_keys=true) }}", "{{ 'a' | join(d='-') }}"}) {
    INFO(bad);
    auto out = render_chat_template(bad, input);
    REQUIRE_FALSE(out);
    CHECK(out.err().code == errc::invalid_argument);
    CHECK(out.err().message.rfind("chat template: ", 0) == 0);
  }
}

TEST_CASE("a tag ends at its closing braces outside string literals, as Jinja's lexer reads it",
          "[chat]") {
  auto input = input_of({user_turn("hi")});
  auto out = render_chat_template(
      R"({{- "}}" }}{% if "%}" != '' %}|{{ '{{' }}{% endif %}{# "}} #})", input);
  REQUIRE(out);
  CHECK(*out == "}}|{{");
}

TEST_CASE("a template nested beyond the bound is an error, not a stack overflow", "[chat]") {
  auto input = input_of({user_turn("hi")});
  for (const std::string& deep : {"{{ " + std::string(100000, '[') + " }}", "{{ " + [] {
                                    std::string s;
                                    for (int i = 0; i < 50000; ++i)
                                      s += "not ";
                                    return s + "x }}";
                                  }(),
                                  [] {
                                    std::string s;
                                    for (int i = 0; i < 20000; ++i)
                                      s += "{% if true %}";
                                    return s;
                                  }()}) {
    auto r = adapterd::model::render_chat_template(deep, input);
    REQUIRE_FALSE(r);
    CHECK(r.err().message.find("nests deeper") != std::string::npos);
  }
}

TEST_CASE(
    "a template's values stay finite: no self-holding namespace, no unbounded nesting, "
    "no unbounded work, no integer overflow",
    "[chat]") {
  auto input = input_of({user_turn("hi")});
  auto render = [&](const std::string& source) { return render_chat_template(source, input); };
  // A namespace given itself keeps a copy: Jinja would print the cycle as {...}; it renders.
  auto self = render(
      "{% set ns = namespace(a=1) %}{% set ns.me = ns %}{% set ns.me2 = ns %}"
      "{{ ns.me2 }}|{{ ns.me2 | tojson }}|{{ ns.me2 == ns.me2 }}");
  REQUIRE(self);
  CHECK(*self == "{'a': 1, 'me': {'a': 1}}|{\"a\": 1, \"me\": {\"a\": 1}}|True");
  std::string chain;
  for (int i = 0; i < 100000; ++i)
    chain += "{% set a = [a] %}";
  for (const auto& [source, why] : std::vector<std::pair<std::string, std::string>>{
           {"{% set ns = namespace(x=0) %}{% for i in range(100000) %}{% set ns.x = [ns.x] %}"
            "{% endfor %}{{ ns.x }}",
            "nest deeper"},
           {chain + "{{ a }}", "nest deeper"},
           {"{{ range(1000000000000) | length }}", "more work"},
           {"{{ 'x' * 1000000000000 }}", "more work"},
           {"{% set ns = namespace(s='ab') %}{% for i in range(80) %}{% set ns.s = ns.s + ns.s %}"
            "{% endfor %}{{ ns.s | length }}",
            "more work"},
           {"{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            "more work"},
           {"{{ 9223372036854775807 + 1 }}", "integer overflow"},
           {"{{ 4611686018427387904 * 4 }}", "integer overflow"},
           {"{{ 222 ** 2222222 }}", "integer overflow"},
           {"{{ 2 ** 63 }}", "integer overflow"},
           {"{{ (-9223372036854775807 - 1) // -1 }}", "integer overflow"},
           {"{{ 99999999999999999999.0 | int }}", "beyond 64-bit"},
       }) {
    INFO(source.substr(0, 120));
    auto out = render(source);
    REQUIRE_FALSE(out);
    CHECK(out.err().message.find(why) != std::string::npos);
  }
  // Edges of int64 that Python answers and C++ would overflow on.
  auto edges = render(
      "{{ (-9223372036854775807 - 1) % -1 }}|{{ 'abc'[::9223372036854775807] }}|"
      "{{ range(9223372036854775800, 9223372036854775807, 4) | list | length }}");
  REQUIRE(edges);
  CHECK(*edges == "0|a|2");
  // Integer //, % and ** exact as Python's, where a double would round or overflow.
  auto exact = render(
      "{{ 3 ** 39 }}|{{ 2 ** 62 }}|{{ (-2) ** 63 }}|{{ 1 ** 9223372036854775807 }}|"
      "{{ (-1) ** 9223372036854775807 }}|{{ 0 ** 0 }}|{{ 4611686018427387905 // 1 }}|"
      "{{ -7 // 2 }}|{{ 7 // -2 }}|{{ 5 % 9223372036854775807 }}|{{ -5 % 9223372036854775807 }}|"
      "{{ 9223372036854775807 % -2 }}");
  REQUIRE(exact);
  CHECK(*exact
        == "4052555153018976267|4611686018427387904|-9223372036854775808|1|-1|1|"
           "4611686018427387905|-4|-4|5|9223372036854775802|-1");
}

TEST_CASE(
    "a template compiled once renders every conversation, from any thread, as a fresh parse does",
    "[chat]") {
  auto data = goldens();
  for (const auto& [name, source] : data["templates"].items()) {
    INFO(name);
    auto compiled = chat_template::compile(source.get<std::string>());
    REQUIRE(compiled);
    for (const auto& [conversation, turns] : data["conversations"].items()) {
      chat_template_input input;
      for (const auto& m : turns)
        input.messages.push_back(message_of(m));
      input.bos_token = data["tokens"]["bos_token"];
      input.eos_token = data["tokens"]["eos_token"];
      auto fresh = render_chat_template(source.get<std::string>(), input);
      // Two threads render the same compiled template at once: it holds no render state.
      result<std::string> a = std::string(), b = std::string();
      std::thread other([&] { a = (*compiled)->render(input); });
      b = (*compiled)->render(input);
      other.join();
      REQUIRE(static_cast<bool>(fresh) == static_cast<bool>(a));
      if (fresh) {
        CHECK(*a == *fresh);
        CHECK(*b == *fresh);
      }
    }
  }
  auto broken = chat_template::compile("{% for %}");
  REQUIRE_FALSE(broken);
  CHECK(broken.err().message.find("chat template") != std::string::npos);
}
