#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "http/json_codec.hpp"

using namespace adapterd;
using nlohmann::json;

namespace {

http::api_error rejected(const std::string& body) {
  auto r = http::parse_generate(body, http::limits{});
  REQUIRE(std::holds_alternative<http::api_error>(r));
  return std::get<http::api_error>(r);
}

}  // namespace

TEST_CASE("generate-lite bodies are parsed with defaults", "[http]") {
  auto r = http::parse_generate(R"({"prompt":"hi","max_new_tokens":5,"temperature":0,"seed":3,
    "base_model":null,"adapter_path":"a","prefer_cpu":true,"extra":1})", http::limits{});
  REQUIRE(std::holds_alternative<messages::generate_request>(r));
  const auto& req = std::get<messages::generate_request>(r);
  CHECK(req.prompt == "hi");
  CHECK(req.max_new_tokens == 5);
  CHECK(req.temperature == 0.0);
  CHECK(req.has_seed);
  CHECK(req.seed == 3);
  CHECK(req.base_model.empty());
  CHECK(req.adapter_path == "a");
  CHECK(req.prefer_cpu);
}

TEST_CASE("bad generate-lite bodies get a 400 with a code", "[http]") {
  CHECK(rejected("{not json").code == "invalid_json");
  CHECK(rejected("[1,2]").code == "invalid_json");
  CHECK(rejected("{}").code == "missing_field");
  CHECK(rejected(R"({"prompt":3})").code == "invalid_type");
  CHECK(rejected(R"({"prompt":"x","max_new_tokens":"5"})").code == "invalid_type");
  CHECK(rejected(R"({"prompt":"x","max_new_tokens":0})").code == "out_of_range");
  CHECK(rejected(R"({"prompt":"x","max_new_tokens":-3})").code == "out_of_range");
  CHECK(rejected(R"({"prompt":"x","max_new_tokens":100000})").code == "out_of_range");
  CHECK(rejected(R"({"prompt":"x","max_new_tokens":2.5})").code == "invalid_type");
  CHECK(rejected(R"({"prompt":"x","temperature":-1})").code == "out_of_range");
  CHECK(rejected(R"({"prompt":"x","top_p":0})").code == "out_of_range");
  CHECK(rejected(R"({"prompt":"x","top_k":-1})").code == "out_of_range");
  CHECK(rejected(R"({"prompt":"x","seed":-1})").code == "out_of_range");
  CHECK(rejected(R"({"prompt":"x","prefer_cpu":"yes"})").code == "invalid_type");
  CHECK(rejected(R"({"prompt":"x","adapter_path":5})").code == "invalid_type");
  CHECK(rejected(R"({"prompt":"x","adapter_path":5})").status == 400);
  CHECK(rejected(R"({"prompt":"x","stop":5})").code == "invalid_type");
  CHECK(rejected(R"({"prompt":"x","stop":[""]})").code == "out_of_range");
  CHECK(rejected(R"({"prompt":"x","stop":["a",1]})").code == "invalid_type");
  auto one = http::parse_generate(R"({"prompt":"x","stop":"END"})", http::limits{});
  REQUIRE(std::holds_alternative<messages::generate_request>(one));
  CHECK(std::get<messages::generate_request>(one).stop == std::vector<std::string>{"END"});
}

TEST_CASE("replies keep the seed's JSON shapes", "[http]") {
  messages::cleanup_reply cpu;
  cpu.status = "success";
  cpu.message = "Memory cleaned up (CPU only)";
  auto j = json::parse(http::to_json(cpu));
  CHECK(j["status"] == "success");
  CHECK(j["message"] == "Memory cleaned up (CPU only)");
  CHECK_FALSE(j.contains("gpu_memory_allocated_mb"));
  messages::cleanup_reply gpu = cpu;
  gpu.gpu_available = true;
  gpu.gpu_allocated_mb = 234.5;
  gpu.gpu_reserved_mb = 512;
  j = json::parse(http::to_json(gpu));
  CHECK(j["gpu_memory_allocated_mb"] == 234.5);
  CHECK(j["gpu_memory_reserved_mb"] == 512.0);

  messages::health_report h;
  h.timestamp = "2025-10-22T10:30:00";
  j = json::parse(http::to_json(h));
  for (const char* key : {"status", "timestamp", "active_jobs", "gpu_available", "gpu_memory",
                          "queue_depth", "process_rss_mb", "uptime_s", "model"})
    CHECK(j.contains(key));
  CHECK(j["gpu_memory"].contains("allocated_mb"));
  CHECK(j["gpu_memory"].contains("reserved_mb"));

  messages::generate_reply g;
  g.generated_text = "bad \xFF byte";
  j = json::parse(http::to_json(g));  // never throws on ill-formed UTF-8
  for (const char* key : {"generated_text", "tokens_generated", "model", "adapter", "timings"})
    CHECK(j.contains(key));
  CHECK(j["timings"].contains("queue_ms"));
  CHECK(j["timings"].contains("generate_ms"));
}

TEST_CASE("failures map to HTTP statuses", "[http]") {
  using messages::errc;
  CHECK(http::to_api_error({errc::adapter_forbidden, ""}).status == 403);
  CHECK(http::to_api_error({errc::context_overflow, ""}).status == 400);
  CHECK(http::to_api_error({errc::timeout, ""}).status == 504);
  auto body = json::parse(http::error_response({404, "not_found", "x"}).body);
  CHECK(body["error"]["code"] == "not_found");
  CHECK(body["error"]["message"] == "x");
}
