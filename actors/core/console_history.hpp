#pragma once
// The web console's history, kept by the monitor: a sample a second for the last 15
// minutes (with the after-request flushes counted), the cleanups between them, and each
// training job's loss. Bounded by construction: the rings drop their oldest entries,
// whatever the uptime.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <string>

#include "messages/console.hpp"

namespace adapterd::actors {

/// What the monitor reads once a second.
struct console_reading {
  int64_t t_ms = 0;
  uint64_t rss_bytes = 0;
  double device_allocated_mb = 0;
  double device_reserved_mb = 0;
};

class console_history {
 public:
  static constexpr size_t capacity = 900;       // samples: 15 minutes at one a second
  static constexpr size_t latency_window = 10;  // samples the latency quantiles look back
  static constexpr size_t curve_points = 256;   // per training job

  void sample(const console_reading& r, const messages::batch_state& batch);
  void flush(int64_t t_ms, const messages::flush_event& e);
  void jobs(const messages::job_list& list);

  /// Samples and events from `since` on, the loss curves, and the cursor for next time.
  messages::console_feed feed(uint64_t since) const;

 private:
  struct snapshot {
    int64_t t_ms = 0;
    uint64_t generated = 0;
    messages::histogram ttft, itl;
  };
  std::deque<messages::console_sample> samples_;
  std::deque<messages::console_event> events_;
  std::deque<snapshot> snapshots_;  // the last latency_window + 1 readings
  std::map<std::string, messages::loss_curve> curves_;
  uint64_t next_seq_ = 0;
  uint32_t flushes_since_sample_ = 0;
};

/// The q-quantile of what `now` observed after `before` (both cumulative, same bounds),
/// interpolated within its bucket as Prometheus' histogram_quantile does; -1 when nothing
/// was observed in between, the highest bound for observations above it.
double histogram_quantile(double q, const messages::histogram& now,
                          const messages::histogram& before);

}  // namespace adapterd::actors
