#include "http/console_codec.hpp"

#include <cmath>
#include <nlohmann/json.hpp>

#include "http/catalog_codec.hpp"
#include "messages/names.hpp"

namespace adapterd::http {

namespace {

using json = nlohmann::json;

api_error bad_query(const std::string& message) {
  return {400, "invalid_query", message};
}

// Three decimals are enough for a chart and keep a 15-minute feed small.
double rounded(double v) {
  return std::round(v * 1000) / 1000;
}

// A quantile the window had nothing for is null, not a number to draw.
json seconds_or_null(double s) {
  return s < 0 ? json(nullptr) : json(rounded(s));
}

}  // namespace

std::variant<messages::console_request, api_error> parse_console_query(const std::string& target) {
  messages::console_request req;
  const auto at = target.find('?');
  if (at == std::string::npos || at + 1 == target.size())
    return req;
  const std::string query = target.substr(at + 1);
  bool seen_since = false, seen_node = false;
  size_t from = 0;
  while (from <= query.size()) {
    const size_t end = std::min(query.find('&', from), query.size());
    const std::string pair = query.substr(from, end - from);
    const size_t eq = pair.find('=');
    const std::string name = pair.substr(0, eq);
    const std::string value = eq == std::string::npos ? "" : pair.substr(eq + 1);
    if (name == "since") {
      if (seen_since)
        return bad_query("since is given twice");
      seen_since = true;
      if (value.empty() || value.size() > 15
          || value.find_first_not_of("0123456789") != std::string::npos)
        return bad_query("since must be a sample number: digits, at most 15");
      req.since = std::stoull(value);
    } else if (name == "node") {
      if (seen_node)
        return bad_query("node is given twice");
      seen_node = true;
      // a worker's name or host:port, as /health's nodes list them
      if (value.empty() || value.size() > 128
          || value.find_first_not_of(
                 "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-[]")
                 != std::string::npos)
        return bad_query("node must be a worker's name or host:port address");
      req.node = value;
    } else {
      return bad_query("unknown query parameter '" + name.substr(0, 64)
                       + "' (since and node are read)");
    }
    from = end + 1;
  }
  return req;
}

std::string to_json(const messages::console_feed& f) {
  json rows = json::array();
  for (const auto& s : f.samples)
    rows.push_back({s.seq, s.t_ms, s.rss_bytes, rounded(s.device_allocated_mb),
                    rounded(s.device_reserved_mb), s.waiting, s.running, rounded(s.tokens_per_s),
                    s.flushes, seconds_or_null(s.ttft_p50_s), seconds_or_null(s.ttft_p99_s),
                    seconds_or_null(s.itl_p50_s), seconds_or_null(s.itl_p99_s)});
  json events = json::array();
  for (const auto& e : f.events)
    events.push_back({{"seq", e.seq},
                      {"t_ms", e.t_ms},
                      {"reason", messages::name_of(e.reason)},
                      {"level", messages::name_of(e.level)},
                      {"rss_after_bytes", e.rss_after_bytes}});
  json resident = json::array();
  for (const auto& item : f.model.resident)
    resident.push_back(
        {{"kind", item.kind},
         {"path", item.path},
         {"device", item.device},
         {"tier", item.tier},
         {"bytes", item.bytes},
         {"weights", item.weights.empty() ? json(nullptr) : json(item.weights)},
         {"requests", item.requests},
         {"last_used_ms", item.last_used_ms == 0 ? json(nullptr) : json(item.last_used_ms)}});
  json adapters = json::array();
  for (const auto& a : f.adapters)
    adapters.push_back({{"adapter", a.adapter}, {"waiting", a.waiting}, {"running", a.running}});
  json jobs = json::array();
  for (const auto& j : f.jobs)
    jobs.push_back(job_json(j));
  json curves = json::array();
  for (const auto& c : f.loss_curves)
    curves.push_back({{"job_id", c.job_id}, {"steps", c.steps}, {"losses", c.losses}});
  json nodes = json::array();
  for (const auto& n : f.nodes)
    nodes.push_back({{"name", n.name},
                     {"address", n.address},
                     {"state", messages::name_of(n.state)},
                     {"error", n.error.empty() ? json(nullptr) : json(n.error)}});
  json out = {{"role", f.role},
              {"nodes", std::move(nodes)},
              {"next", f.next},
              {"period_ms", f.period_ms},
              {"fields",
               {"seq", "t_ms", "rss_bytes", "device_allocated_mb", "device_reserved_mb", "waiting",
                "running", "tokens_per_s", "flushes", "ttft_p50_s", "ttft_p99_s", "itl_p50_s",
                "itl_p99_s"}},
              {"samples", std::move(rows)},
              {"events", std::move(events)},
              {"resident", std::move(resident)},
              {"adapters", std::move(adapters)},
              {"jobs", std::move(jobs)},
              {"loss_curves", std::move(curves)}};
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace adapterd::http
