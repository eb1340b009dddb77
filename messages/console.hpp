#pragma once
// The console family: the history the monitor keeps for the web console (one sample a
// second, the last 15 minutes, and the flushes and cleanups between them), asked for with
// a cursor so that a page polling once a second receives only what is new.
#include <cstdint>
#include <string>
#include <vector>

#include "caf/meta/type_name.hpp"

#include "messages/batch.hpp"
#include "messages/cluster.hpp"
#include "messages/health.hpp"
#include "messages/memory.hpp"
#include "messages/training.hpp"

namespace adapterd::messages {

/// One second of a node. Latency quantiles are over the last 10 s of requests, in
/// seconds, estimated from the histograms as Prometheus' histogram_quantile does; -1
/// when no request finished a token in that window.
struct console_sample {
  uint64_t seq = 0;  // numbers every sample since the node started
  int64_t t_ms = 0;  // wall clock, Unix milliseconds
  uint64_t rss_bytes = 0;
  double device_allocated_mb = 0;
  double device_reserved_mb = 0;
  uint32_t waiting = 0;
  uint32_t running = 0;
  double tokens_per_s = 0;  // generated tokens over the second before
  uint32_t flushes = 0;     // after-request flushes in that second (the rest are events)
  double ttft_p50_s = -1, ttft_p99_s = -1, itl_p50_s = -1, itl_p99_s = -1;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, console_sample& x) {
  return f(caf::meta::type_name("adapterd::console_sample"), x.seq, x.t_ms, x.rss_bytes,
           x.device_allocated_mb, x.device_reserved_mb, x.waiting, x.running, x.tokens_per_s,
           x.flushes, x.ttft_p50_s, x.ttft_p99_s, x.itl_p50_s, x.itl_p99_s);
}

/// A cleanup someone asked for (at a level) or an idle unload. Flushes after requests, one
/// per request under load, are counted per sample instead: the ring then holds 15 minutes
/// of the cleanups that matter whatever the request rate.
struct console_event {
  uint64_t seq = 0;  // the sample it falls before: a cursor covers both
  int64_t t_ms = 0;
  cleanup_reason reason = cleanup_reason::after_request;
  cleanup_level level = cleanup_level::flush;
  uint64_t rss_after_bytes = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, console_event& x) {
  return f(caf::meta::type_name("adapterd::console_event"), x.seq, x.t_ms, x.reason, x.level,
           x.rss_after_bytes);
}

/// What the page has seen: samples and events from `since` on (0: all that is kept). To a
/// router, `node` names one of its workers (name or address), whose feed it passes on;
/// without it a router answers with its workers' list only.
struct console_request {
  uint64_t since = 0;
  std::string node;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, console_request& x) {
  return f(caf::meta::type_name("adapterd::console_request"), x.since, x.node);
}

/// A training job's loss, step by step (thinned to at most 256 points, the last kept).
struct loss_curve {
  std::string job_id;
  std::vector<int64_t> steps;
  std::vector<double> losses;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, loss_curve& x) {
  return f(caf::meta::type_name("adapterd::loss_curve"), x.job_id, x.steps, x.losses);
}

struct console_feed {
  std::string role;   // standalone | worker | router
  uint64_t next = 0;  // the cursor to ask with next time
  uint32_t period_ms = 1000;
  std::vector<console_sample> samples;
  std::vector<console_event> events;
  model_state model;                    // what is resident, with use counts
  std::vector<adapter_load> adapters;   // requests waiting and running per adapter
  std::vector<job_status> jobs;         // training jobs
  std::vector<loss_curve> loss_curves;  // one per job above that has run a step
  std::vector<node_status> nodes;       // a router's workers; the rest is empty there
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, console_feed& x) {
  return f(caf::meta::type_name("adapterd::console_feed"), x.role, x.next, x.period_ms, x.samples,
           x.events, x.model, x.adapters, x.jobs, x.loss_curves, x.nodes);
}

}  // namespace adapterd::messages
