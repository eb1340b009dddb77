#include <catch2/catch.hpp>

#include "actors/core/route_policy.hpp"

using adapterd::actors::pick_route;
using adapterd::actors::route_candidate;

namespace {

route_candidate up(uint32_t load, bool model = true, bool adapter = false) {
  route_candidate c;
  c.up = true;
  c.load = load;
  c.max_batch_size = 4;
  c.holds_model = model;
  c.holds_adapter = adapter;
  return c;
}

}  // namespace

TEST_CASE("routing skips workers that are down, excluded or without budget", "[route]") {
  CHECK_FALSE(pick_route({}).has_value());
  auto down = up(0);
  down.up = false;
  auto tried = up(0);
  tried.excluded = true;
  auto full_budget = up(0, false);
  full_budget.bytes_needed = 100;
  full_budget.budget_free_bytes = 99;
  CHECK_FALSE(pick_route({down, tried, full_budget}).has_value());
  full_budget.budget_free_bytes = 100;
  CHECK(pick_route({down, tried, full_budget}) == 2u);
}

TEST_CASE("routing prefers the worker holding the adapter while it has batch room", "[route]") {
  // Worker 1 holds the adapter: it wins over an idle worker while its load is within a
  // quarter batch (here 1) of the idle one's, not beyond.
  CHECK(pick_route({up(0), up(1, true, true)}) == 1u);
  CHECK(pick_route({up(0), up(2, true, true)}) == 0u);
  // A full batch loses to a free slot whatever it holds.
  auto big = [](uint32_t load, bool adapter) {
    auto c = up(load, true, adapter);
    c.max_batch_size = 16;
    return c;
  };
  CHECK(pick_route({big(5, false), big(8, true)}) == 1u);   // within 16/4 = 4
  CHECK(pick_route({big(3, false), big(8, true)}) == 0u);   // 5 more: load wins
  CHECK(pick_route({big(15, false), big(16, true)}) == 0u); // full
  // Both full: affinity again (within the slack), then load.
  CHECK(pick_route({up(5), up(6, true, true)}) == 1u);
  // Holding the base model counts as well.
  CHECK(pick_route({up(0, false), up(1, true)}) == 1u);
}

TEST_CASE("routing spreads equal workers by load, then by how often each was used", "[route]") {
  CHECK(pick_route({up(2), up(1), up(3)}) == 1u);
  auto a = up(0), b = up(0);
  a.routed = 5;
  b.routed = 4;
  CHECK(pick_route({a, b}) == 1u);
}
