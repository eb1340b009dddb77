#include "http/metrics_text.hpp"

#include "http/routes.hpp"

#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <tuple>
#include <utility>

namespace adapterd::http {

namespace {

struct request_counts {
  std::mutex mutex;
  std::map<std::tuple<std::string, std::string, unsigned>, uint64_t> counts;  // route, method, status
};

request_counts& counts() {
  static request_counts c;
  return c;
}

// Labels come from fixed sets, so that no client can grow the series without bound.
std::string method_label(const std::string& method) {
  for (const char* known : {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
    if (method == known)
      return method;
  return "other";
}

// A label value in Prometheus' text format: backslash, double quote and newline escaped.
std::string label_value(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"')
      out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string number(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", x);
  return buf;
}

class writer {
public:
  void family(const char* name, const char* type, const char* help) {
    out_ += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  }
  void sample(const std::string& name, double value, const std::string& labels = "") {
    out_ += name + (labels.empty() ? "" : "{" + labels + "}") + " " + number(value) + "\n";
  }
  void gauge(const char* name, const char* help, double value) {
    family(name, "gauge", help);
    sample(name, value);
  }
  void counter(const char* name, const char* help, double value) {
    family(name, "counter", help);
    sample(name, value);
  }
  void histogram(const char* name, const char* help, const messages::histogram& h) {
    family(name, "histogram", help);
    uint64_t cumulative = 0;
    for (size_t i = 0; i < h.bounds.size() && i < h.counts.size(); ++i) {
      cumulative += h.counts[i];
      sample(std::string(name) + "_bucket", static_cast<double>(cumulative), "le=\"" + number(h.bounds[i]) + "\"");
    }
    sample(std::string(name) + "_bucket", static_cast<double>(h.count), "le=\"+Inf\"");
    sample(std::string(name) + "_sum", h.sum);
    sample(std::string(name) + "_count", static_cast<double>(h.count));
  }
  std::string take() { return std::move(out_); }

private:
  std::string out_;
};

// The model-server metrics of the Gateway API Inference Extension's protocol
// (docs/proposals/003-model-server-protocol), under the names its endpoint picker reads
// from vLLM, so that a gateway routes to adapterd with adapter affinity without glue.
void gateway_metrics(writer& w, const messages::health_report& h) {
  const auto& b = h.batch;
  w.gauge("vllm:num_requests_waiting", "Requests waiting (the protocol's TotalQueuedRequests).",
          h.queue_depth);
  w.gauge("vllm:num_requests_running", "Requests running (the protocol's TotalRunningRequests).",
          h.running);
  // Blocks that running sequences hold; cached ones are given back on demand.
  const double usage = b.kv_blocks_total > 0 ? static_cast<double>(b.kv_blocks_used)
                                                   / static_cast<double>(b.kv_blocks_total)
                                             : 0.0;
  w.gauge("vllm:gpu_cache_usage_perc", "KV cache in use, 0-1 (the protocol's KVCacheUtilization).",
          usage);
  w.gauge("vllm:kv_cache_usage_perc", "The same, under vLLM's newer name.", usage);
  std::string running, waiting;
  for (const auto& a : b.adapters) {
    if (a.adapter.empty())
      continue;
    if (a.running > 0)
      running += (running.empty() ? "" : ",") + a.adapter;
    if (a.waiting > 0)
      waiting += (waiting.empty() ? "" : ",") + a.adapter;
  }
  // The value is when it was made: the picker takes the latest series.
  w.family("vllm:lora_requests_info", "gauge",
           "Adapters running and waiting; max_lora: the most adapters one batch serves.");
  w.sample(
      "vllm:lora_requests_info",
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count(),
      "max_lora=\"" + std::to_string(b.max_batch_size) + "\",running_lora_adapters=\""
          + label_value(running) + "\",waiting_lora_adapters=\"" + label_value(waiting) + "\"");
}

}  // namespace

void count_request(const std::string& method, const std::string& path, unsigned status) {
  auto& c = counts();
  std::lock_guard<std::mutex> lock(c.mutex);
  ++c.counts[{route_label(path), method_label(method), status < 600 ? status : 0}];
}

std::string prometheus_text(const messages::health_report& h) {
  writer w;
  w.family("adapterd_http_requests_total", "counter", "HTTP requests answered, by route, method and status.");
  {
    auto& c = counts();
    std::lock_guard<std::mutex> lock(c.mutex);
    for (const auto& [key, n] : c.counts) {
      const auto& [route, method, status] = key;
      w.sample("adapterd_http_requests_total", static_cast<double>(n),
               "route=\"" + route + "\",method=\"" + method + "\",status=\"" + std::to_string(status) + "\"");
    }
  }
  const auto& b = h.batch;
  const auto& m = h.model;
  w.gauge("adapterd_queue_depth", "Requests waiting for the batch.", h.queue_depth);
  w.gauge("adapterd_running_sequences", "Sequences in the batch.", h.running);
  w.histogram("adapterd_batch_size", "Sequences per decode step.", b.batch_sizes);
  w.histogram("adapterd_time_to_first_token_seconds", "From arrival to the first generated token.", b.ttft_s);
  w.histogram("adapterd_inter_token_latency_seconds", "Between consecutive tokens of a sequence.", b.itl_s);
  w.counter("adapterd_prompt_tokens_total", "Prompt tokens prefilled.", static_cast<double>(b.prompt_tokens));
  w.counter("adapterd_generated_tokens_total", "Tokens generated.", static_cast<double>(b.generated_tokens));
  w.counter("adapterd_prefill_seconds_total",
            "Time the steps spent computing prompt slices (chunked prefill).", b.prefill_seconds);
  w.counter("adapterd_decode_seconds_total", "Time the steps spent decoding the running rows.",
            b.decode_seconds);
  w.counter("adapterd_requests_served_total", "Generations answered.", static_cast<double>(h.requests_served));
  w.counter("adapterd_requests_failed_total", "Generations that failed.", static_cast<double>(h.requests_failed));
  w.counter("adapterd_requests_rejected_total", "Requests refused with 429.", static_cast<double>(b.rejected));
  w.counter("adapterd_requests_cancelled_total", "Requests whose client went away.", static_cast<double>(b.cancelled));
  w.counter("adapterd_preemptions_total",
            "Times a sequence gave its KV blocks back so that others could grow.",
            static_cast<double>(b.preempted));
  w.counter("adapterd_fair_pauses_total",
            "Times a sequence paused so that a flow without a place in the full batch got one.",
            static_cast<double>(b.fair_pauses));
  w.gauge("adapterd_process_resident_memory_bytes", "Resident set size of the process.", static_cast<double>(h.rss_bytes));
  w.gauge("adapterd_device_memory_allocated_bytes", "GPU memory allocated (0 without a GPU).", h.gpu_allocated_mb * 1048576.0);
  w.gauge("adapterd_device_memory_reserved_bytes", "GPU memory reserved by the caching allocator.", h.gpu_reserved_mb * 1048576.0);
  w.gauge("adapterd_model_weight_bytes", "Weights of the default (or last used) model.", static_cast<double>(m.weight_bytes));
  w.gauge("adapterd_kv_pool_tokens", "Tokens the KV pool holds.", static_cast<double>(b.kv_pool_tokens));
  w.gauge("adapterd_kv_pool_used_tokens", "Tokens of the KV pool in use.", static_cast<double>(b.kv_pool_used));
  w.gauge("adapterd_kv_blocks_total", "Blocks of 16 tokens in the KV pool.",
          static_cast<double>(b.kv_blocks_total));
  w.gauge("adapterd_kv_blocks_used", "KV blocks held by running sequences.",
          static_cast<double>(b.kv_blocks_used));
  w.gauge("adapterd_kv_blocks_cached", "KV blocks held only by the prefix cache.",
          static_cast<double>(b.kv_blocks_cached));
  w.counter("adapterd_prefix_cache_lookups_total",
            "Admitted prompts long enough to share a KV block.",
            static_cast<double>(b.prefix_lookups));
  w.counter("adapterd_prefix_cache_hits_total", "Admitted prompts that reused cached KV blocks.",
            static_cast<double>(b.prefix_hits));
  w.counter("adapterd_prefix_cache_tokens_total",
            "Prompt tokens not prefilled: their KV came from the cache.",
            static_cast<double>(b.cached_tokens));
  w.family("adapterd_adapter_bytes", "gauge", "Adapter weights held, by tier.");
  uint64_t device = 0, host = 0;
  for (const auto& item : m.resident)
    if (item.kind == "adapter")
      (item.tier == "host" ? host : device) += item.bytes;
  w.sample("adapterd_adapter_bytes", static_cast<double>(device), "tier=\"device\"");
  w.sample("adapterd_adapter_bytes", static_cast<double>(host), "tier=\"host\"");
  w.counter("adapterd_model_loads_total", "Base models loaded.", static_cast<double>(m.model_loads));
  w.counter("adapterd_adapter_loads_total", "Adapters loaded from disk.", static_cast<double>(m.adapter_loads));
  w.counter("adapterd_evictions_total", "Adapters and models evicted.", static_cast<double>(m.evictions));
  w.counter("adapterd_flushes_total", "Allocator cache flushes.", static_cast<double>(h.flushes));
  w.counter("adapterd_oom_recoveries_total", "Out-of-memory errors recovered from.", static_cast<double>(h.oom_recoveries));
  w.gauge("adapterd_uptime_seconds", "Seconds since the node started.", h.uptime_s);
  w.family("adapterd_adapter_requests", "gauge",
           "Requests waiting and running, by adapter (\"\": the base model alone).");
  for (const auto& a : b.adapters)
    for (auto [state, n] : {std::pair{"waiting", a.waiting}, std::pair{"running", a.running}})
      w.sample("adapterd_adapter_requests", n,
               "adapter=\"" + label_value(a.adapter) + "\",state=\"" + state + "\"");
  gateway_metrics(w, h);
  return w.take();
}

}  // namespace adapterd::http
