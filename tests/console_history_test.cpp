// The console's history: bounded rings, one cursor for samples and events, rates and
// latency quantiles from the cumulative figures the scheduler reports, loss curves.
#include <catch2/catch.hpp>

#include "actors/core/console_history.hpp"

using namespace adapterd;
using actors::console_history;
using actors::histogram_quantile;

namespace {

messages::batch_state batch_with(uint64_t generated) {
  messages::batch_state b;
  b.generated_tokens = generated;
  return b;
}

}  // namespace

TEST_CASE("histogram quantiles interpolate within the bucket of what was observed in between",
          "[console]") {
  messages::histogram before({0.01, 0.1, 1});
  before.observe(0.5);  // seen before the window: not counted
  auto now = before;
  for (int i = 0; i < 90; ++i)
    now.observe(0.005);  // bucket (0, 0.01]
  for (int i = 0; i < 10; ++i)
    now.observe(0.05);  // bucket (0.01, 0.1]
  CHECK(histogram_quantile(0.5, now, before) == Approx(0.01 * 50.0 / 90.0));
  CHECK(histogram_quantile(0.95, now, before) == Approx(0.01 + 0.09 * 5.0 / 10.0));
  CHECK(histogram_quantile(0.5, before, before) == -1);  // nothing in between
  now.observe(7);  // above the highest bound: the bound is all that can be said
  for (int i = 0; i < 200; ++i)
    now.observe(9);
  CHECK(histogram_quantile(0.99, now, before) == 1);
  CHECK(histogram_quantile(0.5, now, messages::histogram{}) > 0);  // no earlier reading at all
}

TEST_CASE("the history keeps 15 minutes of samples, and a cursor returns only what is new",
          "[console]") {
  console_history h;
  auto feed = h.feed(0);
  CHECK(feed.samples.empty());
  CHECK(feed.next == 0);
  for (uint64_t i = 0; i < 1000; ++i)
    h.sample({static_cast<int64_t>(1000 * i), 100 + i, 0, 0}, batch_with(10 * i));
  feed = h.feed(0);
  REQUIRE(feed.samples.size() == console_history::capacity);
  CHECK(feed.samples.front().seq == 1000 - console_history::capacity);
  CHECK(feed.samples.back().seq == 999);
  CHECK(feed.samples.back().rss_bytes == 1099);
  CHECK(feed.samples.back().tokens_per_s == Approx(10.0));
  CHECK(feed.next == 1000);
  CHECK(h.feed(998).samples.size() == 2);
  CHECK(h.feed(1000).samples.empty());
  CHECK(h.feed(5000).samples.empty());
}

TEST_CASE("cleanups come with the cursor of the sample after them, and age out with the samples",
          "[console]") {
  console_history h;
  h.sample({1000, 1, 0, 0}, batch_with(0));
  h.flush(1500, messages::flush_event{messages::cleanup_reason::manual, 42,
                                      messages::cleanup_level::all});
  auto feed = h.feed(0);
  REQUIRE(feed.events.size() == 1);
  CHECK(feed.events[0].seq == 1);
  CHECK(feed.events[0].level == messages::cleanup_level::all);
  CHECK(feed.events[0].rss_after_bytes == 42);
  CHECK(h.feed(1).events.size() == 1);  // a page that has seen sample 0 still gets it
  CHECK(h.feed(2).events.empty());
  for (int i = 0; i < 5000; ++i)  // idle unloads without end: bounded all the same
    h.flush(2000, messages::flush_event{messages::cleanup_reason::idle_unload, 1});
  CHECK(h.feed(0).events.size() <= console_history::capacity);
  for (uint64_t i = 0; i < console_history::capacity + 2; ++i)
    h.sample({static_cast<int64_t>(3000 + i), 1, 0, 0}, batch_with(0));
  CHECK(h.feed(0).events.empty());  // older than every sample kept
}

TEST_CASE("a counter that went back (a restarted scheduler) gives no negative rate", "[console]") {
  console_history h;
  h.sample({0, 1, 0, 0}, batch_with(500));
  h.sample({1000, 1, 0, 0}, batch_with(20));
  CHECK(h.feed(0).samples.back().tokens_per_s == 0);
}

TEST_CASE("a training job's loss curve keeps at most 256 points, the newest last", "[console]") {
  console_history h;
  messages::job_status job;
  job.id = "job-1";
  job.steps = 1000;
  for (int64_t step = 0; step <= 1000; ++step) {
    job.step = step;
    job.loss = 10.0 / static_cast<double>(step + 1);
    h.jobs(messages::job_list{{job}});
    h.jobs(messages::job_list{{job}});  // the same step twice: one point
  }
  auto feed = h.feed(0);
  REQUIRE(feed.loss_curves.size() == 1);
  const auto& c = feed.loss_curves[0];
  CHECK(c.job_id == "job-1");
  CHECK(c.steps.size() <= console_history::curve_points);
  CHECK(c.steps.size() >= console_history::curve_points / 2);
  CHECK(c.steps.back() == 1000);
  CHECK(c.losses.back() == Approx(10.0 / 1001));
  for (size_t i = 1; i < c.steps.size(); ++i)
    CHECK(c.steps[i] > c.steps[i - 1]);
  h.jobs(messages::job_list{});  // the job left the list: so does its curve
  CHECK(h.feed(0).loss_curves.empty());
}

TEST_CASE("flushes after requests are counted per sample, so that load cannot crowd out cleanups",
          "[console]") {
  console_history h;
  h.flush(10, messages::flush_event{messages::cleanup_reason::manual, 5,
                                    messages::cleanup_level::flush});
  for (int i = 0; i < 5000; ++i)  // one per request, under load
    h.flush(20, messages::flush_event{messages::cleanup_reason::after_request, 7});
  h.sample({1000, 1, 0, 0}, batch_with(0));
  h.sample({2000, 1, 0, 0}, batch_with(0));
  auto feed = h.feed(0);
  REQUIRE(feed.samples.size() == 2);
  CHECK(feed.samples[0].flushes == 5000);
  CHECK(feed.samples[1].flushes == 0);
  REQUIRE(feed.events.size() == 1);
  CHECK(feed.events[0].reason == messages::cleanup_reason::manual);
}
