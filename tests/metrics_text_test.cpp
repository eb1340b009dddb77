// /metrics as the Gateway API Inference Extension's endpoint picker reads it: the vLLM
// names of its model-server protocol, the latest lora_requests_info series, its labels
// split on commas.
#include <catch2/catch.hpp>

#include <map>
#include <set>
#include <sstream>

#include "http/metrics_text.hpp"

using namespace adapterd;

namespace {

struct series {
  std::map<std::string, std::string> labels;
  double value = 0;
};

// Prometheus' text format, as much as the picker uses: name{k="v",...} value, with \" \\ \n
// escapes in label values.
std::multimap<std::string, series> parse(const std::string& text) {
  std::multimap<std::string, series> out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#')
      continue;
    series s;
    size_t i = line.find_first_of("{ ");
    const std::string name = line.substr(0, i);
    if (line[i] == '{') {
      ++i;
      while (line[i] != '}') {
        const auto eq = line.find('=', i);
        const auto key = line.substr(i, eq - i);
        std::string value;
        for (i = eq + 2; line[i] != '"'; ++i) {
          if (line[i] == '\\') {
            ++i;
            value += line[i] == 'n' ? '\n' : line[i];
          } else {
            value += line[i];
          }
        }
        s.labels[key] = value;
        i += line[i + 1] == ',' ? 2 : 1;
      }
      ++i;
    }
    s.value = std::stod(line.substr(i + 1));
    out.emplace(name, s);
  }
  return out;
}

std::set<std::string> split(const std::string& list) {
  std::set<std::string> out;
  std::istringstream in(list);
  std::string item;
  while (std::getline(in, item, ','))
    out.insert(item);
  return out;
}

}  // namespace

TEST_CASE(
    "/metrics carries the gateway protocol's queue, KV and LoRA metrics as its picker reads them",
    "[metrics]") {
  messages::health_report h;
  h.queue_depth = 5;
  h.running = 3;
  h.batch.max_batch_size = 16;
  h.batch.kv_blocks_total = 200;
  h.batch.kv_blocks_used = 50;
  h.batch.kv_blocks_cached = 100;  // cached blocks are given back on demand: not in use
  h.batch.adapters = {{"", 1, 1}, {"sql", 0, 2}, {"chat", 4, 0}, {"odd \"name\"", 0, 0}};
  const auto metrics = parse(http::prometheus_text(h));

  auto gauge = [&](const std::string& name) {
    REQUIRE(metrics.count(name) == 1);
    return metrics.find(name)->second.value;
  };
  CHECK(gauge("vllm:num_requests_waiting") == 5);
  CHECK(gauge("vllm:num_requests_running") == 3);
  CHECK(gauge("vllm:gpu_cache_usage_perc") == Approx(0.25));
  CHECK(gauge("vllm:kv_cache_usage_perc") == Approx(0.25));

  // The picker takes the series with the latest value among those naming any adapter.
  const series* latest = nullptr;
  auto range = metrics.equal_range("vllm:lora_requests_info");
  for (auto it = range.first; it != range.second; ++it) {
    const auto& s = it->second;
    if (s.labels.at("running_lora_adapters").empty()
        && s.labels.at("waiting_lora_adapters").empty())
      continue;
    if (latest == nullptr || s.value > latest->value)
      latest = &s;
  }
  REQUIRE(latest != nullptr);
  CHECK(latest->value > 1.7e9);  // a Unix time: when the series was made
  CHECK(std::stoi(latest->labels.at("max_lora")) == 16);
  CHECK(split(latest->labels.at("running_lora_adapters")) == std::set<std::string>{"sql"});
  CHECK(split(latest->labels.at("waiting_lora_adapters")) == std::set<std::string>{"chat"});

  // adapterd's own gauge, per adapter and state, escaped
  std::map<std::pair<std::string, std::string>, double> per_adapter;
  range = metrics.equal_range("adapterd_adapter_requests");
  for (auto it = range.first; it != range.second; ++it)
    per_adapter[{it->second.labels.at("adapter"), it->second.labels.at("state")}] =
        it->second.value;
  CHECK(per_adapter.at({"chat", "waiting"}) == 4);
  CHECK(per_adapter.at({"sql", "running"}) == 2);
  CHECK(per_adapter.at({"", "waiting"}) == 1);
  CHECK(per_adapter.at({"odd \"name\"", "waiting"}) == 0);
}

TEST_CASE("/metrics counts prompt work and decode work apart, and fair pauses", "[metrics]") {
  messages::health_report h;
  h.batch.prefill_seconds = 1.25;
  h.batch.decode_seconds = 7.5;
  h.batch.fair_pauses = 3;
  const auto metrics = parse(http::prometheus_text(h));
  auto value = [&](const std::string& name) {
    REQUIRE(metrics.count(name) == 1);
    return metrics.find(name)->second.value;
  };
  CHECK(value("adapterd_prefill_seconds_total") == Approx(1.25));
  CHECK(value("adapterd_decode_seconds_total") == Approx(7.5));
  CHECK(value("adapterd_fair_pauses_total") == 3);
}

TEST_CASE("/metrics with nothing running names no adapter and an idle KV pool", "[metrics]") {
  messages::health_report h;
  const auto metrics = parse(http::prometheus_text(h));
  CHECK(metrics.find("vllm:gpu_cache_usage_perc")->second.value == 0);
  const auto& info = metrics.find("vllm:lora_requests_info")->second;
  CHECK(info.labels.at("running_lora_adapters").empty());
  CHECK(info.labels.at("waiting_lora_adapters").empty());
}
