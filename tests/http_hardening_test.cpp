// The HTTP layer's guarantees: every client body is read through typed, bounded accessors;
// nesting is capped while parsing; every route is in one table with exact methods; and a
// throwing handler or backend callback answers 500 to its own request only.
#include <atomic>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "http/catalog_codec.hpp"
#include "http/json_fields.hpp"
#include "http/openai.hpp"
#include "http/routes.hpp"

using namespace adapterd;
using nlohmann::json;

namespace {

std::string nested(const std::string& field, int depth) {
  return R"({"prompt":"x",")" + field + "\":" + std::string(static_cast<size_t>(depth), '[')
         + std::string(static_cast<size_t>(depth), ']') + "}";
}

template <class T>
http::api_error error_of(const std::variant<T, http::api_error>& r) {
  REQUIRE(std::holds_alternative<http::api_error>(r));
  return std::get<http::api_error>(r);
}

// A backend that records what reached it, and can be told to throw.
struct fake_backend final : http::backend {
  bool throw_on_call = false;
  bool throw_in_callback = false;
  int calls = 0;
  void generate(messages::generate_request, std::function<void(messages::stream_chunk)>,
                std::function<void(http::outcome<messages::generate_reply>)> done) override {
    hit();
    done(messages::generate_reply{});
  }
  void cancel(std::string) override {}
  void health(std::function<void(http::outcome<messages::health_report>)> done) override {
    hit();
    done(messages::health_report{});
  }
  void call(http::api_call c) override {
    hit();
    std::visit([](auto& pending) { pending.done(http::reply_of<decltype(pending.request)>{}); }, c);
  }

private:
  void hit() {
    ++calls;
    if (throw_on_call)
      throw std::runtime_error("backend exploded");
  }
};

struct recorder final : http::responder {
  int answers = 0;
  http::response last;
  void respond(http::response r) override {
    ++answers;
    last = std::move(r);
  }
  void stream_open() override {}
  void stream_write(std::string) override {}
  void stream_close() override { ++answers; }
  std::string request_id() const override { return "req-test"; }
};

http::response call(fake_backend& svc, const std::string& method, const std::string& target,
                    const std::string& body = "", const http::limits& lim = {}) {
  auto out = std::make_shared<recorder>();
  http::route(http::request_view{method, target, body, "req-test", ""}, svc, lim, out);
  REQUIRE(out->answers == 1);
  return out->last;
}

}  // namespace

TEST_CASE("JSON nesting is refused while parsing, before anything can recurse", "[http][hardening]") {
  CHECK(error_of(http::parse_generate(nested("stop", 200000), {})).code == "too_deep");
  CHECK(error_of(http::openai::parse(http::openai::endpoint::completions, nested("stop", 65), {})).code == "too_deep");
  CHECK(error_of(http::parse_tokenize(nested("text", 1000))).code == "too_deep");
  // Just under the cap, a wrong type is a plain 400.
  CHECK(error_of(http::parse_generate(nested("stop", 60), {})).code == "invalid_type");
}

TEST_CASE("the typed accessor names the field and says why", "[http][hardening]") {
  auto body = json::parse(R"({"n": "3", "x": 1.5, "big": 18446744073709551615, "s": "abcdef", "l": [1, "a"]})");
  http::fields f(body, "outer");
  auto fails = [](auto read) -> http::api_error {
    try {
      read();
    } catch (const http::field_error& e) {
      return e.error;
    }
    FAIL("no field_error");
    return {};
  };
  auto e = fails([&] { f.integer("n", 0, 10); });
  CHECK(e.code == "invalid_type");
  CHECK(e.message.find("'outer.n'") != std::string::npos);
  CHECK(fails([&] { f.integer("x", 0, 10); }).code == "invalid_type");
  CHECK(fails([&] { f.integer("big", 0, INT64_MAX - 1); }).code == "out_of_range");
  CHECK(fails([&] { f.text("s", 3); }).code == "too_long");
  CHECK(fails([&] { f.texts("l", 4, 10); }).code == "invalid_type");
  CHECK(fails([&] { f.number("x", 0, 1); }).code == "out_of_range");
  CHECK_FALSE(f.text("absent"));
  http::fields g(body);
  g.known("big");
  CHECK(fails([&] { g.refuse_unknown(); }).code == "unknown_field");
}

TEST_CASE("OpenAI bodies: wrong types, unknown and unsupported fields are 400s by name", "[http][hardening]") {
  using http::openai::endpoint;
  auto code = [](endpoint kind, const std::string& body) {
    auto r = http::openai::parse(kind, body, http::limits{});
    return std::holds_alternative<http::api_error>(r) ? std::get<http::api_error>(r).code : std::string("ok");
  };
  const auto c = endpoint::completions, chat = endpoint::chat;
  CHECK(code(c, R"({"prompt":"hi","echo":"yes"})") == "invalid_type");
  CHECK(code(c, R"({"prompt":"hi","echo":true})") == "ok");
  CHECK(code(c, R"({"prompt":"hi","echo":false})") == "ok");
  CHECK(code(c, R"({"prompt":"hi","logprobs":5,"echo":true})") == "ok");
  CHECK(code(c, R"({"prompt":"hi","logprobs":0,"echo":true,"stream":true})") == "unsupported");
  CHECK(code(c, R"({"prompt":"hi","logprobs":3,"stream":true})") == "ok");
  CHECK(code(c, R"({"prompt":"hi","logprobs":21})") == "out_of_range");
  CHECK(code(c, R"({"prompt":"hi","logprobs":true})") == "invalid_type");
  CHECK(code(chat,
             R"({"messages":[{"role":"user","content":"hi"}],"logprobs":true,"top_logprobs":20})")
        == "ok");
  CHECK(code(chat, R"({"messages":[{"role":"user","content":"hi"}],"top_logprobs":2})")
        == "invalid_value");
  CHECK(code(chat,
             R"({"messages":[{"role":"user","content":"hi"}],"logprobs":true,"top_logprobs":-1})")
        == "out_of_range");
  CHECK(code(chat, R"({"messages":[{"role":"user","content":"hi"}],"logprobs":3})")
        == "invalid_type");
  CHECK(code(c, R"({"prompt":"hi","user":{}})") == "invalid_type");
  CHECK(code(c, R"({"prompt":"hi","presence_penalty":"x"})") == "invalid_type");
  CHECK(code(c, R"({"prompt":"hi","presence_penalty":0.5,"frequency_penalty":-1})") == "ok");
  CHECK(code(c, R"({"prompt":"hi","presence_penalty":2.5})") == "out_of_range");
  CHECK(code(c, R"({"prompt":"hi","logit_bias":{"12":-100,"7":3.5}})") == "ok");
  CHECK(code(c, R"({"prompt":"hi","logit_bias":{"twelve":1}})") == "invalid_type");
  CHECK(code(c, R"({"prompt":"hi","logit_bias":{"-1":1}})") == "invalid_type");
  CHECK(code(c, R"({"prompt":"hi","logit_bias":{"12":"1"}})") == "invalid_type");
  CHECK(code(c, R"({"prompt":"hi","logit_bias":{"12":101}})") == "out_of_range");
  CHECK(code(c, R"({"prompt":"hi","logit_bias":[1]})") == "invalid_type");
  CHECK(code(c, R"({"prompt":"hi","frobnicate":1})") == "unknown_field");
  CHECK(code(c, R"({"prompt":"hi","n":"2"})") == "invalid_type");
  CHECK(code(c, R"({"prompt":"hi","n":4})") == "ok");
  CHECK(code(c, R"({"prompt":"hi","n":17})") == "out_of_range");
  CHECK(code(c, R"({"prompt":"hi","n":2,"stream":true})") == "ok");
  CHECK(code(c, R"({"prompt":"hi","stream_options":{"include_usage":"yes"}})") == "invalid_type");
  CHECK(code(c, R"({"prompt":"hi","stream_options":{"x":1}})") == "unknown_field");
  CHECK(code(c, R"({"prompt":[1,2,3]})") == "ok");  // token ids
  CHECK(code(c, R"({"prompt":[[1,2,3]]})") == "ok");
  CHECK(code(c, R"({"prompt":[[1,2],[3]]})") == "unsupported");
  CHECK(code(c, R"({"prompt":[1,-2]})") == "invalid_type");
  CHECK(code(c, R"({"prompt":[1,"a"]})") == "invalid_type");
  CHECK(code(c, R"({"prompt":[[]]})") == "invalid_value");
  CHECK(code(c, R"({"prompt":[1,2],"echo":true,"stream":true})") == "unsupported");
  CHECK(code(c, R"({"prompt":[1,2],"return_tokens_as_token_ids":true})") == "ok");
  CHECK(code(c, R"({"prompt":"hi","max_tokens":1e400})") == "invalid_json");
  CHECK(code(chat, R"({"messages":[{"role":"user"}]})") == "missing_field");
  CHECK(code(chat, R"({"messages":[{"role":"wizard","content":"hi"}]})") == "out_of_range");
  CHECK(code(chat, R"({"messages":[{"role":"user","content":5}]})") == "invalid_type");
  CHECK(code(chat, R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})") == "unsupported");
  CHECK(code(chat, R"({"messages":[{"role":"user","content":"hi","extra":1}]})") == "unknown_field");
  CHECK(code(chat, R"({"messages":["hi"]})") == "invalid_type");
  CHECK(code(chat, R"({"messages":[{"role":"developer","content":"be brief"},{"role":"user","content":"hi"}]})")
        == "ok");
}

TEST_CASE("tools, tool_choice and tool turns: read whole, or refused by field",
          "[http][hardening][tools]") {
  using http::openai::endpoint;
  const http::limits lim;
  auto parse = [&](const std::string& body) {
    return http::openai::parse(endpoint::chat, body, lim);
  };
  auto code = [&](const std::string& body) {
    auto r = parse(body);
    return std::holds_alternative<http::api_error>(r) ? std::get<http::api_error>(r).code
                                                      : std::string("ok");
  };
  const std::string user = R"("messages":[{"role":"user","content":"hi"}])";
  const std::string tool = R"({"type":"function","function":{"name":"get_weather","description":"d",
      "parameters":{"type":"object","properties":{"z":{},"a":{}}},"strict":true}})";
  auto read = parse(
      "{" + user + R"(,"tools":[)" + tool
      + R"(],"tool_choice":{"type":"function","function":{"name":"get_weather"}},"parallel_tool_calls":false})");
  REQUIRE(std::holds_alternative<http::openai::request>(read));
  const auto& gen = std::get<http::openai::request>(read).gen;
  CHECK(gen.tool_mode == messages::tool_choice::named);
  CHECK(gen.tool_name == "get_weather");
  CHECK_FALSE(gen.parallel_tool_calls);
  CHECK(gen.tools.find(R"("properties":{"z":{},"a":{}})")
        != std::string::npos);  // the client's key order
  auto automatic = parse("{" + user + R"(,"tools":[)" + tool + "]}");
  CHECK(std::get<http::openai::request>(automatic).gen.tool_mode
        == messages::tool_choice::automatic);
  auto none = parse("{" + user + R"(,"tools":[)" + tool + R"(],"tool_choice":"none"})");
  CHECK(std::get<http::openai::request>(none).gen.tools.empty());  // not offered: not rendered
  CHECK(code("{" + user + R"(,"tools":[)" + tool + R"(],"tool_choice":"required"})") == "ok");
  CHECK(code("{" + user + R"(,"tool_choice":"none"})") == "ok");
  CHECK(code("{" + user + R"(,"tool_choice":"required"})") == "invalid_value");
  CHECK(code("{" + user + R"(,"tools":[)" + tool + R"(],"tool_choice":"sometimes"})")
        == "out_of_range");
  CHECK(code("{" + user + R"(,"tools":[)" + tool + R"(],"tool_choice":3})") == "invalid_type");
  CHECK(code("{" + user + R"(,"tools":[)" + tool
             + R"(],"tool_choice":{"type":"function","function":{"name":"other"}}})")
        == "invalid_value");
  CHECK(code("{" + user + R"(,"tools":[{"type":"function"}]})") == "missing_field");
  CHECK(code("{" + user + R"(,"tools":[{"type":"retrieval","function":{"name":"f"}}]})")
        == "unsupported");
  CHECK(code("{" + user + R"(,"tools":[{"type":"function","function":{"name":"has space"}}]})")
        == "invalid_value");
  CHECK(
      code(
          "{" + user
          + R"(,"tools":[{"type":"function","function":{"name":"f"}},{"type":"function","function":{"name":"f"}}]})")
      == "invalid_value");
  CHECK(code("{" + user
             + R"(,"tools":[{"type":"function","function":{"name":"f","parameters":[]}}]})")
        == "invalid_type");
  CHECK(code("{" + user + R"(,"tools":[{"type":"function","function":{"name":"f","extra":1}}]})")
        == "unknown_field");
  CHECK(
      code(
          "{" + user
          + R"(,"tools":[{"type":"function","function":{"name":"f"}}],"response_format":{"type":"json_object"}})")
      == "unsupported");
  CHECK(code("{" + user + R"(,"functions":[{"name":"f"}]})") == "unsupported");
  CHECK(code("{" + user + R"(,"tools":"all"})") == "invalid_type");
  // The turns of a tool conversation.
  const std::string call =
      R"({"id":"c1","type":"function","function":{"name":"f","arguments":"{\"x\": 1}"}})";
  auto turns = parse(
      R"({"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":null,"tool_calls":[)"
      + call + R"(]},{"role":"tool","tool_call_id":"c1","content":"2"}]})");
  REQUIRE(std::holds_alternative<http::openai::request>(turns));
  const auto& chat = std::get<http::openai::request>(turns).gen.chat;
  REQUIRE(chat.size() == 3);
  CHECK(chat[1].null_content);
  REQUIRE(chat[1].tool_calls.size() == 1);
  CHECK(chat[1].tool_calls[0].arguments == R"({"x": 1})");
  CHECK(chat[2].tool_call_id == "c1");
  CHECK(code(R"({"messages":[{"role":"tool","content":"2"}]})") == "missing_field");
  CHECK(code(R"({"messages":[{"role":"assistant"}]})") == "missing_field");
  CHECK(
      code(
          R"({"messages":[{"role":"assistant","tool_calls":[{"function":{"name":"f","arguments":{}}}]}]})")
      == "invalid_type");
  CHECK(
      code(
          R"({"messages":[{"role":"assistant","tool_calls":[{"type":"code","function":{"name":"f"}}]}]})")
      == "unsupported");
  CHECK(code(R"({"messages":[{"role":"assistant","tool_calls":"f"}]})") == "invalid_type");
  CHECK(code(R"({"messages":[{"role":"function","content":"x"}]})") == "unsupported");
  CHECK(code(R"({"messages":[{"role":"assistant","content":"x","function_call":{}}]})")
        == "unsupported");
  // The completions API has no tools.
  CHECK(std::get<http::api_error>(
            http::openai::parse(endpoint::completions, R"({"prompt":"x","tools":[]})", lim))
            .code
        == "unknown_field");
}

TEST_CASE("every route is in the table: exact methods, 404, 405 with Allow, HEAD", "[http][hardening]") {
  fake_backend svc;
  CHECK(call(svc, "GET", "/health").status == 200);
  auto head = call(svc, "HEAD", "/health");
  CHECK(head.status == 200);
  CHECK(call(svc, "GET", "/nope").status == 404);
  auto wrong = call(svc, "ET", "/health");  // not a prefix match of GET
  CHECK(wrong.status == 405);
  CHECK(json::parse(wrong.body)["error"]["code"] == "method_not_allowed");
  auto post = call(svc, "PUT", "/generate-lite", "{}");
  CHECK(post.status == 405);
  CHECK(post.headers.at(0).second == "POST");
  CHECK(call(svc, "GET", "/jobs/abc").status == 200);
  CHECK(call(svc, "GET", "/jobs/a/b").status == 404);
  CHECK(call(svc, "DELETE", "/adapters/x").status == 200);
  CHECK(call(svc, "GET", "/v1/models?x=1").status == 200);
  CHECK(http::route_label("/jobs/123") == "/jobs/{id}");
  CHECK(http::route_label("/some/random/" + std::string(100, 'x')) == "other");
  http::limits keyed;
  keyed.api_keys = {"k1"};
  keyed.admin_keys = {"adm"};
  CHECK(call(svc, "POST", "/cleanup-memory", "", keyed).status == 401);
  CHECK(call(svc, "GET", "/health", "", keyed).status == 200);
}

TEST_CASE("the console: its page and files open, its feed keyed and its query strict",
          "[http][hardening][console]") {
  fake_backend svc;
  for (const char* target :
       {"/", "/console", "/console/assets/console.js", "/console/assets/uPlot.iife.min.js"}) {
    INFO(target);
    auto r = call(svc, "GET", target);
    CHECK(r.status == 200);
    CHECK(!r.body.empty());
  }
  CHECK(call(svc, "GET", "/").content_type == "text/html; charset=utf-8");
  CHECK(call(svc, "GET", "/console/assets/console.css").content_type == "text/css; charset=utf-8");
  CHECK(call(svc, "HEAD", "/console").status == 200);
  CHECK(call(svc, "POST", "/", "{}").status == 405);
  CHECK(call(svc, "GET", "/console/assets/../../etc/passwd").status == 404);
  CHECK(call(svc, "GET", "/console/assets/").status == 404);
  CHECK(call(svc, "GET", "/console/assets/" + std::string(300, 'a')).status == 404);
  CHECK(call(svc, "GET", "/console/assets/%2e%2e%2fsecret").status == 404);
  CHECK(call(svc, "GET", "/console/feed").status == 200);
  CHECK(call(svc, "GET", "/console/feed?since=12").status == 200);
  CHECK(call(svc, "GET", "/console/feed?").status == 200);
  CHECK(call(svc, "GET", "/console/feed?node=w1&since=3").status == 200);
  CHECK(call(svc, "GET", "/console/feed?node=127.0.0.1:9000").status == 200);
  CHECK(call(svc, "GET", "/favicon.ico").content_type == "image/svg+xml");
  for (const char* query :
       {"?since=", "?since=-1", "?since=1e3", "?since=99999999999999999999", "?since=1&since=2",
        "?until=3", "?since=1&", "?&", "?since=%31", "?node=", "?node=a%20b", "?node=a/b",
        "?node=w1&node=w2", "?node=<script>"}) {
    INFO(query);
    auto r = call(svc, "GET", std::string("/console/feed") + query);
    CHECK(r.status == 400);
    CHECK(json::parse(r.body)["error"]["code"] == "invalid_query");
  }
  http::limits keyed;
  keyed.api_keys = {"k1"};
  CHECK(call(svc, "GET", "/console/feed", "", keyed).status == 401);
  CHECK(call(svc, "GET", "/", "", keyed).status == 200);  // the page asks for the key itself
  http::limits worker;
  worker.health_only = true;
  CHECK(call(svc, "GET", "/console", "", worker).status == 404);  // its router serves it
}

TEST_CASE("a throwing handler or callback answers 500 internal to its own request", "[http][hardening]") {
  fake_backend svc;
  svc.throw_on_call = true;
  for (auto [method, path, body] : std::vector<std::tuple<std::string, std::string, std::string>>{
         {"GET", "/health", ""},
         {"POST", "/generate-lite", R"({"prompt":"x"})"},
         {"POST", "/tokenize", R"({"text":"x"})"},
         {"GET", "/jobs", ""}}) {
    auto r = call(svc, method, path, body);
    CHECK(r.status == 500);
    CHECK(json::parse(r.body)["error"]["code"] == "internal");
  }
  svc.throw_on_call = false;
  CHECK(call(svc, "GET", "/health").status == 200);  // the next request is served
}
