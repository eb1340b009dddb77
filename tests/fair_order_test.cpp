// The waiting queue's order: priority, then fair rounds over adapter-and-key flows.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "actors/core/fair_order.hpp"
#include "actors/core/fair_places.hpp"

using adapterd::actors::fair_order;

namespace {

// Requests as the scheduler queues them: each new one goes behind every one whose ticket
// goes first; the head is served.
struct queue {
  fair_order order;
  std::vector<std::pair<std::string, fair_order::ticket>> waiting;

  void add(const std::string& id, const std::string& flow, int32_t priority = 0) {
    auto t = order.issue(flow, priority);
    auto at = waiting.end();
    while (at != waiting.begin() && fair_order::before(t, std::prev(at)->second))
      --at;
    waiting.insert(at, {id, t});
  }
  std::string serve() {
    auto [id, t] = waiting.front();
    waiting.erase(waiting.begin());
    order.served(t);
    return id;
  }
};

}  // namespace

TEST_CASE("a flow that floods the queue takes one place per round", "[fair]") {
  queue q;
  for (int i = 0; i < 50; ++i)
    q.add("a" + std::to_string(i), "flood");
  CHECK(q.serve() == "a0");
  q.add("b0", "quiet");
  q.add("c0", "other");
  // behind at most one request of each other flow, not behind the 49 queued
  CHECK(q.serve() == "a1");
  CHECK(q.serve() == "b0");
  CHECK(q.serve() == "c0");
  q.add("b1", "quiet");
  CHECK(q.serve() == "a2");
  CHECK(q.serve() == "b1");
}

TEST_CASE("flows that never waited start in the current round; lower priority values go first",
          "[fair]") {
  queue q;
  for (int i = 0; i < 10; ++i)
    q.add("a" + std::to_string(i), "flood");
  for (int i = 0; i < 8; ++i)
    q.serve();
  q.add("b0", "quiet");  // the flood's round is 8: b0 is not put ahead of a8 by an old tag
  CHECK(q.serve() == "a8");
  CHECK(q.serve() == "b0");
  q.add("x", "flood", 5);
  q.add("urgent", "quiet", -1);
  CHECK(q.serve() == "urgent");
  CHECK(q.serve() == "a9");
  CHECK(q.serve() == "x");
  CHECK(q.order.flows() <= 1);  // served flows are forgotten
}

TEST_CASE("a full batch frees a place for a flow without one: the flood's youngest", "[fair]") {
  using adapterd::actors::batch_place;
  using adapterd::actors::place_to_free;
  std::vector<batch_place> batch = {{"flood", 0, 1, true, false},
                                    {"flood", 0, 2, true, false},
                                    {"other", 0, 3, true, false},
                                    {"flood", 0, 4, true, false},
                                    {"other", 0, 5, true, false}};
  CHECK(adapterd::actors::active_places(batch) == 5);
  CHECK(place_to_free(batch, "quiet", 0, 5) == std::optional<size_t>(3));  // flood holds 3
  CHECK_FALSE(place_to_free(batch, "quiet", 0, 6));  // a place is free already
  CHECK_FALSE(place_to_free(batch, "other", 0, 5));  // it has places
  CHECK_FALSE(place_to_free(batch, "quiet", 0, 1));  // one at a time never pauses
  CHECK_FALSE(place_to_free(batch, "quiet", 1, 5));  // less urgent than every sequence
  batch[3].priority = -1;                            // more urgent than the request
  CHECK(place_to_free(batch, "quiet", 0, 5) == std::optional<size_t>(1));
  batch[1].pausable = false;                                               // in prefill
  CHECK(place_to_free(batch, "quiet", 0, 5) == std::optional<size_t>(0));  // flood still holds 3
  batch[0].pausable = false;
  CHECK(place_to_free(batch, "quiet", 0, 5) == std::optional<size_t>(4));  // then other's youngest
  // Once paused, a sequence holds no place in the step, but its flow still has one.
  batch[4].paused = true;
  CHECK(adapterd::actors::active_places(batch) == 4);
  CHECK_FALSE(place_to_free(batch, "other", 0, 4));
  // Flows of one place each never give it up.
  std::vector<batch_place> spread = {{"a", 0, 1, true, false}, {"b", 0, 2, true, false}};
  CHECK_FALSE(place_to_free(spread, "c", 0, 2));
}
