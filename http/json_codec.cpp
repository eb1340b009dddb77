#include "http/json_codec.hpp"

#include <limits>
#include <optional>

#include <nlohmann/json.hpp>

namespace adapterd::http {

namespace {

using json = nlohmann::json;

api_error bad(std::string code, std::string message) {
  return api_error{400, std::move(code), std::move(message)};
}

double round2(double x) {
  return static_cast<double>(static_cast<int64_t>(x * 100.0 + (x >= 0 ? 0.5 : -0.5))) / 100.0;
}

// Reads an optional field; null counts as absent. Returns an error text on a type mismatch.
template <class Check, class Read>
std::optional<api_error> field(const json& body, const char* name, Check is_type, const char* type,
                               Read read) {
  if (!body.contains(name) || body[name].is_null())
    return std::nullopt;
  if (!is_type(body[name]))
    return bad("invalid_type", std::string("'") + name + "' must be " + type);
  return read(body[name]);
}

}  // namespace

std::variant<messages::generate_request, api_error> parse_generate(const std::string& text,
                                                                   const limits& lim) {
  auto body = json::parse(text, nullptr, false);
  if (body.is_discarded())
    return bad("invalid_json", "the request body is not valid JSON");
  if (!body.is_object())
    return bad("invalid_json", "the request body must be a JSON object");
  messages::generate_request req;
  if (!body.contains("prompt") || body["prompt"].is_null())
    return bad("missing_field", "'prompt' is required");
  if (!body["prompt"].is_string())
    return bad("invalid_type", "'prompt' must be a string");
  req.prompt = body["prompt"].get<std::string>();

  auto is_int = [](const json& v) { return v.is_number_integer(); };
  auto is_num = [](const json& v) { return v.is_number(); };
  auto is_str = [](const json& v) { return v.is_string(); };
  auto is_bool = [](const json& v) { return v.is_boolean(); };
  auto range = [](const char* name, const std::string& what) {
    return bad("out_of_range", std::string("'") + name + "' " + what);
  };
  std::optional<api_error> err;
  if ((err = field(body, "max_new_tokens", is_int, "an integer", [&](const json& v) -> std::optional<api_error> {
         auto n = v.get<int64_t>();
         if (n < 1 || n > static_cast<int64_t>(lim.max_new_tokens))
           return range("max_new_tokens", "must be between 1 and " + std::to_string(lim.max_new_tokens));
         req.max_new_tokens = static_cast<uint32_t>(n);
         return std::nullopt;
       })))
    return *err;
  if ((err = field(body, "temperature", is_num, "a number", [&](const json& v) -> std::optional<api_error> {
         req.temperature = v.get<double>();
         if (!(req.temperature >= 0 && req.temperature <= 100))
           return range("temperature", "must be between 0 and 100");
         return std::nullopt;
       })))
    return *err;
  if ((err = field(body, "top_p", is_num, "a number", [&](const json& v) -> std::optional<api_error> {
         req.top_p = v.get<double>();
         if (!(req.top_p > 0 && req.top_p <= 1))
           return range("top_p", "must be in (0, 1]");
         return std::nullopt;
       })))
    return *err;
  if ((err = field(body, "top_k", is_int, "an integer", [&](const json& v) -> std::optional<api_error> {
         auto k = v.get<int64_t>();
         if (k < 0 || k > 1'000'000)
           return range("top_k", "must be between 0 and 1000000");
         req.top_k = static_cast<int32_t>(k);
         return std::nullopt;
       })))
    return *err;
  if ((err = field(body, "repetition_penalty", is_num, "a number", [&](const json& v) -> std::optional<api_error> {
         req.repetition_penalty = v.get<double>();
         if (!(req.repetition_penalty > 0 && req.repetition_penalty <= 100))
           return range("repetition_penalty", "must be in (0, 100]");
         return std::nullopt;
       })))
    return *err;
  if ((err = field(body, "seed", is_int, "an integer", [&](const json& v) -> std::optional<api_error> {
         if (v.is_number_integer() && !v.is_number_unsigned() && v.get<int64_t>() < 0)
           return range("seed", "must not be negative");
         req.has_seed = true;
         req.seed = v.get<uint64_t>();
         return std::nullopt;
       })))
    return *err;
  auto read_string = [](std::string& out) {
    return [&out](const json& v) -> std::optional<api_error> {
      out = v.get<std::string>();
      return std::nullopt;
    };
  };
  if ((err = field(body, "base_model", is_str, "a string", read_string(req.base_model))))
    return *err;
  if ((err = field(body, "adapter_path", is_str, "a string", read_string(req.adapter_path))))
    return *err;
  auto is_stop = [](const json& v) { return v.is_string() || v.is_array(); };
  if ((err = field(body, "stop", is_stop, "a string or a list of strings", [&](const json& v) -> std::optional<api_error> {
         auto items = v.is_string() ? json::array({v}) : v;
         if (items.size() > 16)
           return range("stop", "may hold at most 16 strings");
         for (const auto& s : items) {
           if (!s.is_string())
             return bad("invalid_type", "'stop' must be a string or a list of strings");
           auto text = s.get<std::string>();
           if (text.empty() || text.size() > 256)
             return range("stop", "strings must be 1 to 256 bytes long");
           req.stop.push_back(text);
         }
         return std::nullopt;
       })))
    return *err;
  if ((err = field(body, "prefer_cpu", is_bool, "a boolean", [&](const json& v) -> std::optional<api_error> {
         req.prefer_cpu = v.get<bool>();
         return std::nullopt;
       })))
    return *err;
  if ((err = field(body, "stream", is_bool, "a boolean", [&](const json& v) -> std::optional<api_error> {
         req.stream = v.get<bool>();
         return std::nullopt;
       })))
    return *err;
  if ((err = field(body, "timeout_s", is_num, "a number", [&](const json& v) -> std::optional<api_error> {
         req.timeout_s = v.get<double>();
         if (!(req.timeout_s > 0 && req.timeout_s <= 86400))
           return range("timeout_s", "must be in (0, 86400] seconds");
         return std::nullopt;
       })))
    return *err;
  return req;
}

std::variant<messages::cleanup_request, api_error> parse_cleanup(const std::string& text) {
  messages::cleanup_request req;
  req.reason = "manual";
  if (text.find_first_not_of(" \t\r\n") == std::string::npos)
    return req;
  auto body = json::parse(text, nullptr, false);
  if (body.is_discarded() || !body.is_object())
    return bad("invalid_json", "the request body must be a JSON object or empty");
  if (body.contains("level") && !body["level"].is_null()) {
    if (!body["level"].is_string())
      return bad("invalid_type", "'level' must be a string");
    req.level = body["level"].get<std::string>();
    if (req.level != "flush" && req.level != "adapters" && req.level != "all")
      return bad("out_of_range", "'level' must be flush, adapters or all");
  }
  if (body.contains("node") && !body["node"].is_null()) {
    if (!body["node"].is_string() || body["node"].get<std::string>().empty())
      return bad("invalid_type", "'node' must be a worker's name or address");
    req.node = body["node"].get<std::string>();
  }
  return req;
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
    {"timings", {{"queue_ms", round2(r.queue_ms)}, {"load_ms", round2(r.load_ms)},
                 {"generate_ms", round2(r.generate_ms)},
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
  if (!r.level.empty())
    out["level"] = r.level;
  out["freed"] = {{"adapters", r.freed.adapters},
                  {"adapter_mb", round2(static_cast<double>(r.freed.adapter_bytes) / 1048576.0)},
                  {"models", r.freed.models},
                  {"model_mb", round2(static_cast<double>(r.freed.model_bytes) / 1048576.0)}};
  if (!r.nodes.empty()) {
    out["nodes"] = json::array();
    for (const auto& n : r.nodes)
      out["nodes"].push_back(cleanup_json(n));
  }
  return out;
}

json node_json(const messages::node_status& n) {
  auto mb = [](uint64_t bytes) { return round2(static_cast<double>(bytes) / 1048576.0); };
  return {
    {"address", n.address},
    {"name", n.name},
    {"state", n.state},
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
    {"gpu_memory", {{"allocated_mb", round2(n.gpu_allocated_mb)}, {"reserved_mb", round2(n.gpu_reserved_mb)}}},
    {"model", n.model.empty() ? json(nullptr) : json(n.model)},
    {"adapters", n.adapters},
    {"budget_free_mb", n.budget_free_bytes == std::numeric_limits<uint64_t>::max() ? json(nullptr)
                                                                                   : json(mb(n.budget_free_bytes))},
    {"last_seen_ms_ago", n.last_seen_ms_ago < 0 ? json(nullptr) : json(round2(n.last_seen_ms_ago))},
  };
}

}  // namespace

std::string to_json(const messages::cleanup_reply& r) {
  return cleanup_json(r).dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string to_json(const messages::health_report& r) {
  const auto& m = r.model;
  json resident = json::array();
  for (const auto& item : m.resident)
    resident.push_back({{"kind", item.kind}, {"path", item.path}, {"device", item.device},
                        {"tier", item.tier},
                        {"mb", round2(static_cast<double>(item.bytes) / 1048576.0)}});
  json out = {
    {"status", r.status},
    {"timestamp", r.timestamp},
    {"active_jobs", r.active_jobs},
    {"gpu_available", r.gpu_available},
    {"gpu_memory", {{"allocated_mb", round2(r.gpu_allocated_mb)},
                    {"reserved_mb", round2(r.gpu_reserved_mb)}}},
    {"queue_depth", r.queue_depth},
    {"running", r.running},
    {"process_rss_mb", round2(static_cast<double>(r.rss_bytes) / 1048576.0)},
    {"uptime_s", round2(r.uptime_s)},
    {"model", {{"loaded", m.loaded},
               {"path", m.loaded ? json(m.path) : json(nullptr)},
               {"device", m.loaded ? json(m.device) : json(nullptr)},
               {"dtype", m.loaded ? json(m.dtype) : json(nullptr)},
               {"weight_mb", round2(static_cast<double>(m.weight_bytes) / 1048576.0)},
               {"adapters_cached", m.adapters_cached},
               {"adapter_mb", round2(static_cast<double>(m.adapter_bytes) / 1048576.0)}}},
    {"memory", {{"resident", resident},
                {"kv_reserve_mb", round2(static_cast<double>(m.kv_reserve_bytes) / 1048576.0)},
                {"kv_cache_last_mb", round2(static_cast<double>(r.kv_cache_bytes_last) / 1048576.0)},
                {"device_budget_mb", m.device_budget_bytes == 0
                                       ? json(nullptr)
                                       : json(round2(static_cast<double>(m.device_budget_bytes) / 1048576.0))}}},
    {"counters", {{"model_loads", m.model_loads},
                  {"adapter_loads", m.adapter_loads},
                  {"evictions", m.evictions},
                  {"host_reloads", m.host_reloads},
                  {"oom_recoveries", r.oom_recoveries},
                  {"oom_failures", r.oom_failures},
                  {"requests_served", r.requests_served},
                  {"requests_failed", r.requests_failed},
                  {"flushes", r.flushes}}},
    {"cleanup_policy", r.cleanup_policy},
    {"batch", {{"max_batch_size", r.batch.max_batch_size},
               {"max_queue", r.batch.max_queue},
               {"last_batch_size", r.batch.last_batch_size},
               {"mean_batch_size", r.batch.steps == 0 ? 0.0
                                     : round2(static_cast<double>(r.batch.step_rows) / static_cast<double>(r.batch.steps))},
               {"steps", r.batch.steps},
               {"kv_pool_tokens", r.batch.kv_pool_tokens},
               {"kv_pool_used_tokens", r.batch.kv_pool_used},
               {"rejected", r.batch.rejected},
               {"cancelled", r.batch.cancelled},
               {"timed_out", r.batch.timed_out}}},
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
