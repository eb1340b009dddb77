#include "actors/core/console_history.hpp"

#include <algorithm>

namespace adapterd::actors {

double histogram_quantile(double q, const messages::histogram& now,
                          const messages::histogram& before) {
  const auto& bounds = now.bounds;
  std::vector<uint64_t> counts(now.counts.size(), 0);
  uint64_t total = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    const uint64_t was = i < before.counts.size() ? before.counts[i] : 0;
    counts[i] = now.counts[i] > was ? now.counts[i] - was : 0;
    total += counts[i];
  }
  if (total == 0 || bounds.empty())
    return -1;
  const double rank = q * static_cast<double>(total);
  double below = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] == 0 || below + static_cast<double>(counts[i]) < rank) {
      below += static_cast<double>(counts[i]);
      continue;
    }
    if (i >= bounds.size())
      return bounds.back();  // above the highest bound: all that can be said
    const double lower = i == 0 ? 0 : bounds[i - 1];
    return lower + (bounds[i] - lower) * (rank - below) / static_cast<double>(counts[i]);
  }
  return bounds.back();
}

void console_history::sample(const console_reading& r, const messages::batch_state& batch) {
  snapshots_.push_back({r.t_ms, batch.generated_tokens, batch.ttft_s, batch.itl_s});
  while (snapshots_.size() > latency_window + 1)
    snapshots_.pop_front();
  messages::console_sample s;
  s.seq = next_seq_++;
  s.t_ms = r.t_ms;
  s.rss_bytes = r.rss_bytes;
  s.device_allocated_mb = r.device_allocated_mb;
  s.device_reserved_mb = r.device_reserved_mb;
  s.flushes = flushes_since_sample_;
  flushes_since_sample_ = 0;
  s.waiting = batch.waiting;
  s.running = batch.running;
  if (snapshots_.size() >= 2) {
    const auto& prev = snapshots_[snapshots_.size() - 2];
    const double dt = static_cast<double>(r.t_ms - prev.t_ms) / 1000.0;
    if (dt > 0 && batch.generated_tokens >= prev.generated)
      s.tokens_per_s = static_cast<double>(batch.generated_tokens - prev.generated) / dt;
    const auto& first = snapshots_.front();
    s.ttft_p50_s = histogram_quantile(0.5, batch.ttft_s, first.ttft);
    s.ttft_p99_s = histogram_quantile(0.99, batch.ttft_s, first.ttft);
    s.itl_p50_s = histogram_quantile(0.5, batch.itl_s, first.itl);
    s.itl_p99_s = histogram_quantile(0.99, batch.itl_s, first.itl);
  }
  samples_.push_back(s);
  while (samples_.size() > capacity)
    samples_.pop_front();
  // Events older than every kept sample have nothing left to mark.
  while (!events_.empty() && events_.front().seq < samples_.front().seq)
    events_.pop_front();
}

void console_history::flush(int64_t t_ms, const messages::flush_event& e) {
  if (e.reason == messages::cleanup_reason::after_request) {
    ++flushes_since_sample_;
    return;
  }
  events_.push_back({next_seq_, t_ms, e.reason, e.level, e.rss_after_bytes});
  while (events_.size() > capacity)
    events_.pop_front();
}

void console_history::jobs(const messages::job_list& list) {
  std::map<std::string, messages::loss_curve> kept;
  for (const auto& job : list.jobs) {
    auto it = curves_.find(job.id);
    if (it == curves_.end() && job.step == 0)
      continue;
    auto& c = kept[job.id];
    if (it != curves_.end())
      c = std::move(it->second);
    c.job_id = job.id;
    if (job.step > 0 && (c.steps.empty() || job.step > c.steps.back())) {
      c.steps.push_back(job.step);
      c.losses.push_back(job.loss);
    }
    if (c.steps.size() > curve_points) {  // every other point, the newest kept
      size_t out = 0;
      for (size_t i = c.steps.size() % 2 == 0 ? 1 : 0; i < c.steps.size(); i += 2, ++out) {
        c.steps[out] = c.steps[i];
        c.losses[out] = c.losses[i];
      }
      c.steps.resize(out);
      c.losses.resize(out);
    }
  }
  curves_ = std::move(kept);
}

messages::console_feed console_history::feed(uint64_t since) const {
  messages::console_feed f;
  f.next = next_seq_;
  for (const auto& s : samples_)
    if (s.seq >= since)
      f.samples.push_back(s);
  for (const auto& e : events_)
    if (e.seq >= since)
      f.events.push_back(e);
  for (const auto& [id, c] : curves_)
    f.loss_curves.push_back(c);
  return f;
}

}  // namespace adapterd::actors
