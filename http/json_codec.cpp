#include "http/json_codec.hpp"

#include <algorithm>
#include <limits>
#include <map>
#include <optional>

#include <nlohmann/json.hpp>

#include "http/generate_fields.hpp"
#include "http/response_format.hpp"
#include "messages/names.hpp"

namespace adapterd::http {

namespace {

using json = nlohmann::json;

double round2(double x) {
  return static_cast<double>(static_cast<int64_t>(x * 100.0 + (x >= 0 ? 0.5 : -0.5))) / 100.0;
}

}  // namespace

namespace {

// OpenAI's logit_bias: {"token id": bias}, ids as decimal strings, biases -100..100. Ids
// past the vocabulary are the model's to refuse (it knows its size).
std::map<int32_t, float> read_logit_bias(const fields& f, const nlohmann::json& bias) {
  constexpr size_t max_entries = 1024;
  if (bias.size() > max_entries)
    f.fail("logit_bias", "too_long", "has more than " + std::to_string(max_entries) + " entries");
  std::map<int32_t, float> out;
  for (const auto& [key, value] : bias.items()) {
    const bool digits =
        !key.empty() && key.size() <= 9
        && std::all_of(key.begin(), key.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!digits)
      f.fail("logit_bias", "invalid_type", "keys must be token ids (decimal, 0-999999999)");
    if (!value.is_number())
      f.fail("logit_bias", "invalid_type", "values must be numbers");
    const double b = value.get<double>();
    if (!(b >= -100.0 && b <= 100.0))
      f.fail("logit_bias", "out_of_range", "values must be between -100 and 100");
    out[std::stoi(key)] = static_cast<float>(b);
  }
  return out;
}

}  // namespace

void read_sampling(fields& f, messages::generate_request& req) {
  if (auto t = f.number("temperature", 0, 100))
    req.temperature = *t;
  if (auto p = f.number("top_p", 0, 1, true))
    req.top_p = *p;
  if (auto k = f.integer("top_k", 0, 1'000'000))
    req.top_k = static_cast<int32_t>(*k);
  if (auto r = f.number("repetition_penalty", 0, 100, true))
    req.repetition_penalty = *r;
  if (auto x = f.number("presence_penalty", -2, 2))
    req.presence_penalty = *x;
  if (auto x = f.number("frequency_penalty", -2, 2))
    req.frequency_penalty = *x;
  if (const auto* bias = f.object("logit_bias"))
    req.logit_bias = read_logit_bias(f, *bias);
  if (auto seed = f.unsigned_integer("seed")) {
    req.has_seed = true;
    req.seed = *seed;
  }
  if (auto stop = f.text_or_texts("stop", max_stop_strings, max_stop_bytes))
    req.stop = std::move(*stop);
  if (auto ids =
          f.integers("stop_token_ids", max_stop_strings, 0, std::numeric_limits<int32_t>::max()))
    req.stop_token_ids.assign(ids->begin(), ids->end());
  if (auto s = f.boolean("stream"))
    req.stream = *s;
  if (auto t = f.number("timeout_s", 0, 86400, true))
    req.timeout_s = *t;
  if (auto ignore = f.boolean("ignore_eos"))
    req.ignore_eos = *ignore;
  // after the route's max_new_tokens / max_tokens, which it must not exceed
  if (auto n = f.integer("min_tokens", 0, req.max_new_tokens))
    req.min_tokens = static_cast<uint32_t>(*n);
  if (auto p = f.integer("priority", -1000, 1000))
    req.priority = static_cast<int32_t>(*p);
}

std::variant<messages::generate_request, api_error> parse_generate(const std::string& text,
                                                                   const limits& lim) {
  auto body = parse_object(text);
  if (auto* e = std::get_if<api_error>(&body))
    return *e;
  return decode<messages::generate_request>([&] {
    // The seed's route ignores fields it does not know, as its pydantic model did.
    fields f(std::get<json>(body));
    messages::generate_request req;
    req.prompt = f.required_text("prompt", lim.max_body_bytes);
    if (auto n = f.integer("max_new_tokens", 1, lim.max_new_tokens))
      req.max_new_tokens = static_cast<uint32_t>(*n);
    read_sampling(f, req);
    read_json_schema(f, text, req);
    req.base_model = f.text("base_model").value_or("");
    req.adapter_path = f.text("adapter_path", max_path_bytes).value_or("");
    req.prefer_cpu = f.boolean("prefer_cpu").value_or(false);
    return req;
  });
}

std::variant<messages::cleanup_request, api_error> parse_cleanup(const std::string& text) {
  auto body = parse_object(text, true);
  if (auto* e = std::get_if<api_error>(&body))
    return e->code == "invalid_json" ? api_error{400, "invalid_json", "the request body must be a JSON object or empty"} : *e;
  return decode<messages::cleanup_request>([&] {
    fields f(std::get<json>(body));
    messages::cleanup_request req;
    req.reason = messages::cleanup_reason::manual;
    if (auto name = f.text("level")) {
      auto level = messages::from_name<messages::cleanup_level>(*name);
      if (!level)
        f.fail("level", "out_of_range", "must be " + messages::names_of<messages::cleanup_level>());
      req.level = *level;
    }
    if (auto node = f.text("node")) {
      if (node->empty())
        f.fail("node", "invalid_type", "must be a worker's name or address");
      req.node = *node;
    }
    return req;
  });
}

std::string to_json(const messages::generate_reply& r) {
  json out = {
      {"generated_text", r.generated_text},
      {"tokens_generated", r.tokens_generated},
      {"prompt_tokens", r.prompt_tokens},
      {"finish_reason", r.finish_reason},
      {"model", r.model},
      {"adapter", r.adapter.empty() ? json(nullptr) : json(r.adapter)},
      {"device", r.device},
      {"request_id", r.request_id},
      {"timings",
       {{"queue_ms", round2(r.queue_ms)},
        {"load_ms", round2(r.load_ms)},
        {"generate_ms", round2(r.generate_ms)},
        {"prompt_tokens_cached", r.cached_tokens},
        {"started_at_ms", static_cast<double>(r.started_at_us) / 1000.0},
        {"finished_at_ms", static_cast<double>(r.finished_at_us) / 1000.0}}},
      {"order", {{"arrived", r.arrival_seq}, {"served", r.service_seq}}},
      {"batch_size_max", r.batch_size_max},
  };
  if (!r.node.empty())
    out["node"] = r.node;
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string to_json(const messages::stream_chunk& c) {
  json out = {{"text", c.text}, {"tokens", c.tokens}, {"request_id", c.request_id}};
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string sse_event(const std::string& name, const std::string& data) {
  std::string out;
  if (!name.empty())
    out += "event: " + name + "\n";
  out += "data: " + data + "\n\n";  // compact JSON holds no raw newline
  return out;
}

namespace {

json cleanup_json(const messages::cleanup_reply& r) {
  json out = {{"status", r.status}, {"message", r.message}};
  if (!r.node.empty())
    out["node"] = r.node;
  if (!r.error.empty())
    out["error"] = r.error;
  if (r.gpu_available) {
    out["gpu_memory_allocated_mb"] = round2(r.gpu_allocated_mb);
    out["gpu_memory_reserved_mb"] = round2(r.gpu_reserved_mb);
  }
  out["rss_before_mb"] = round2(static_cast<double>(r.rss_before_bytes) / 1048576.0);
  out["rss_after_mb"] = round2(static_cast<double>(r.rss_after_bytes) / 1048576.0);
  out["model_unloaded"] = r.model_unloaded;
  out["level"] = std::string(messages::name_of(r.level));
  out["freed"] = {{"adapters", r.freed.adapters},
                  {"adapter_mb", round2(static_cast<double>(r.freed.adapter_bytes) / 1048576.0)},
                  {"models", r.freed.models},
                  {"model_mb", round2(static_cast<double>(r.freed.model_bytes) / 1048576.0)},
                  {"kv_blocks", r.freed.kv_blocks}};
  if (!r.nodes.empty()) {
    out["nodes"] = json::array();
    for (const auto& n : r.nodes)
      out["nodes"].push_back(cleanup_json(n));
  }
  return out;
}

// Requests waiting and running per adapter ("adapter": null for the base model alone).
json adapter_loads_json(const std::vector<messages::adapter_load>& loads) {
  json out = json::array();
  for (const auto& a : loads)
    out.push_back({{"adapter", a.adapter.empty() ? json(nullptr) : json(a.adapter)},
                   {"waiting", a.waiting},
                   {"running", a.running}});
  return out;
}

json node_json(const messages::node_status& n) {
  auto mb = [](uint64_t bytes) { return round2(static_cast<double>(bytes) / 1048576.0); };
  return {
      {"address", n.address},
      {"name", n.name},
      {"state", std::string(messages::name_of(n.state))},
      {"error", n.error.empty() ? json(nullptr) : json(n.error)},
      {"queue_depth", n.queue_depth},
      {"running", n.running},
      {"max_batch_size", n.max_batch_size},
      {"in_flight", n.in_flight},
      {"routed", n.routed},
      {"failed_over", n.failed_over},
      {"reconnects", n.reconnects},
      {"process_rss_mb", mb(n.rss_bytes)},
      {"gpu_available", n.gpu_available},
      {"gpu_memory",
       {{"allocated_mb", round2(n.gpu_allocated_mb)}, {"reserved_mb", round2(n.gpu_reserved_mb)}}},
      {"model", n.model.empty() ? json(nullptr) : json(n.model)},
      {"adapters", n.adapters},
      {"budget_free_mb", n.budget_free_bytes == std::numeric_limits<uint64_t>::max()
                             ? json(nullptr)
                             : json(mb(n.budget_free_bytes))},
      {"last_seen_ms_ago",
       n.last_seen_ms_ago < 0 ? json(nullptr) : json(round2(n.last_seen_ms_ago))},
  };
}

}  // namespace

std::string to_json(const messages::cleanup_reply& r) {
  return cleanup_json(r).dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string to_json(const messages::health_report& r) {
  const auto& m = r.model;
  json resident = json::array();
  for (const auto& item : m.resident) {
    json entry = {{"kind", item.kind},
                  {"path", item.path},
                  {"device", item.device},
                  {"tier", item.tier},
                  {"mb", round2(static_cast<double>(item.bytes) / 1048576.0)}};
    if (!item.weights.empty())
      entry["weights"] = item.weights;
    resident.push_back(std::move(entry));
  }
  json out = {
      {"status", r.status},
      {"timestamp", r.timestamp},
      {"active_jobs", r.active_jobs},
      {"gpu_available", r.gpu_available},
      {"gpu_memory",
       {{"allocated_mb", round2(r.gpu_allocated_mb)}, {"reserved_mb", round2(r.gpu_reserved_mb)}}},
      {"queue_depth", r.queue_depth},
      {"running", r.running},
      {"process_rss_mb", round2(static_cast<double>(r.rss_bytes) / 1048576.0)},
      {"uptime_s", round2(r.uptime_s)},
      {"model",
       {{"loaded", m.loaded},
        {"path", m.loaded ? json(m.path) : json(nullptr)},
        {"device", m.loaded ? json(m.device) : json(nullptr)},
        {"dtype", m.loaded ? json(m.dtype) : json(nullptr)},
        {"weights", m.loaded ? json(m.weights) : json(nullptr)},
        {"kv_dtype", m.loaded ? json(m.kv_dtype) : json(nullptr)},
        {"weight_mb", round2(static_cast<double>(m.weight_bytes) / 1048576.0)},
        {"adapters_cached", m.adapters_cached},
        {"adapter_mb", round2(static_cast<double>(m.adapter_bytes) / 1048576.0)}}},
      {"memory",
       {{"resident", resident},
        {"kv_reserve_mb", round2(static_cast<double>(m.kv_reserve_bytes) / 1048576.0)},
        {"kv_cache_last_mb", round2(static_cast<double>(r.kv_cache_bytes_last) / 1048576.0)},
        {"device_budget_mb",
         m.device_budget_bytes == 0
             ? json(nullptr)
             : json(round2(static_cast<double>(m.device_budget_bytes) / 1048576.0))}}},
      {"counters",
       {{"model_loads", m.model_loads},
        {"adapter_loads", m.adapter_loads},
        {"evictions", m.evictions},
        {"host_reloads", m.host_reloads},
        {"oom_recoveries", r.oom_recoveries},
        {"oom_failures", r.oom_failures},
        {"requests_served", r.requests_served},
        {"requests_failed", r.requests_failed},
        {"flushes", r.flushes}}},
      {"cleanup_policy", r.cleanup_policy},
      {"batch",
       {{"max_batch_size", r.batch.max_batch_size},
        {"max_queue", r.batch.max_queue},
        {"last_batch_size", r.batch.last_batch_size},
        {"mean_batch_size", r.batch.steps == 0 ? 0.0
                                               : round2(static_cast<double>(r.batch.step_rows)
                                                        / static_cast<double>(r.batch.steps))},
        {"steps", r.batch.steps},
        {"kv_pool_tokens", r.batch.kv_pool_tokens},
        {"kv_pool_used_tokens", r.batch.kv_pool_used},
        {"kv_blocks",
         {{"total", r.batch.kv_blocks_total},
          {"used", r.batch.kv_blocks_used},
          {"cached", r.batch.kv_blocks_cached},
          {"free", r.batch.kv_blocks_total - r.batch.kv_blocks_used - r.batch.kv_blocks_cached}}},
        {"prefix_cache",
         {{"lookups", r.batch.prefix_lookups},
          {"hits", r.batch.prefix_hits},
          {"hit_rate", r.batch.prefix_lookups == 0
                           ? 0.0
                           : round2(static_cast<double>(r.batch.prefix_hits)
                                    / static_cast<double>(r.batch.prefix_lookups))},
          {"cached_tokens", r.batch.cached_tokens}}},
        {"rejected", r.batch.rejected},
        {"cancelled", r.batch.cancelled},
        {"timed_out", r.batch.timed_out},
        {"preempted", r.batch.preempted},
        {"fair_pauses", r.batch.fair_pauses},
        {"prefill_s", round2(r.batch.prefill_seconds)},
        {"decode_s", round2(r.batch.decode_seconds)},
        {"adapters", adapter_loads_json(r.batch.adapters)}}},
      {"role", r.role},
      {"training_jobs", r.training_jobs},
  };
  if (r.role == "router") {
    // A router holds no model: its workers' figures are under nodes.
    for (const char* key : {"model", "memory", "batch", "cleanup_policy"})
      out.erase(key);
    out["counters"] = {{"requests_served", r.requests_served}, {"requests_failed", r.requests_failed}};
    out["nodes"] = json::array();
    for (const auto& n : r.nodes)
      out["nodes"].push_back(node_json(n));
  }
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

api_error to_api_error(const messages::failure& f) {
  using messages::errc;
  unsigned status = 500;
  switch (f.code) {
    case errc::bad_request:
    case errc::unknown_model:
    case errc::adapter_not_found:
    case errc::invalid_adapter:
    case errc::context_overflow: status = 400; break;
    case errc::adapter_forbidden: status = 403; break;
    case errc::out_of_memory:
    case errc::insufficient_memory: status = 507; break;
    case errc::timeout: status = 504; break;
    case errc::unavailable: status = 503; break;
    case errc::overloaded: status = 429; break;
    case errc::cancelled: status = 499; break;  // nobody reads it: the client is gone
    case errc::unauthorized: status = 403; break;
    case errc::worker_lost: status = 502; break;
    case errc::job_not_found: status = 404; break;
    case errc::model_load_failed:
    case errc::internal: status = 500; break;
  }
  return api_error{status, messages::to_string(f.code), f.message};
}

response error_response(const api_error& e) {
  response r;
  r.status = e.status;
  if (e.status == 429)
    r.headers.emplace_back("Retry-After", "1");
  r.body = json{{"error", {{"code", e.code}, {"message", e.message}}}}.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

}  // namespace adapterd::http
