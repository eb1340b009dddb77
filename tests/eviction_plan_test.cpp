#include <catch2/catch.hpp>

#include "actors/core/eviction_plan.hpp"

using adapterd::actors::plan_eviction;
using adapterd::actors::resident;

namespace {

std::vector<resident> tier() {
  return {
    {"m1", true, "", 100, 1},
    {"m2", true, "", 100, 5},
    {"m1|a", false, "m1", 10, 2},
    {"m1|b", false, "m1", 10, 9},
    {"m2|c", false, "m2", 10, 3},
  };
}

}  // namespace

TEST_CASE("nothing is evicted when it fits or there is no budget", "[eviction]") {
  CHECK(plan_eviction(tier(), 0, 1000, {})->empty());
  CHECK(plan_eviction(tier(), 300, 70, {})->empty());
}

TEST_CASE("least recently used adapters go first", "[eviction]") {
  auto plan = plan_eviction(tier(), 240, 20, {"m1", "m2"});
  REQUIRE(plan);
  CHECK(*plan == std::vector<std::string>{"m1|a"});
  plan = plan_eviction(tier(), 240, 30, {"m1", "m2"});
  REQUIRE(plan);
  CHECK(*plan == std::vector<std::string>{"m1|a", "m2|c"});
}

TEST_CASE("then idle base models, with their adapters", "[eviction]") {
  auto plan = plan_eviction(tier(), 240, 100, {"m2"});
  REQUIRE(plan);
  // All adapters are tried first (30 bytes), then m1 (100 bytes; m1|b goes with it).
  CHECK(*plan == std::vector<std::string>{"m1|a", "m2|c", "m1|b", "m1"});
}

TEST_CASE("what cannot fit is refused", "[eviction]") {
  CHECK_FALSE(plan_eviction(tier(), 240, 250, {}));            // larger than the budget
  CHECK_FALSE(plan_eviction(tier(), 240, 150, {"m1", "m2"}));  // models are kept
}
