#include <catch2/catch.hpp>

#include <atomic>
#include <vector>

#include "model/llama/spin_pool.hpp"

using adapterd::model::spin_pool;

TEST_CASE("spin pool: every part runs once per call, across many calls", "[kernels]") {
  spin_pool pool(3);
  REQUIRE(pool.parts() == 3);
  std::vector<std::atomic<int>> hits(3);
  for (int call = 0; call < 2000; ++call)
    pool.run([&](size_t part) { hits[part].fetch_add(1); });
  for (auto& h : hits)
    CHECK(h.load() == 2000);
}

TEST_CASE("spin pool: helpers asleep after a pause still take their parts", "[kernels]") {
  spin_pool pool(2);
  std::atomic<int> sum{0};
  pool.run([&](size_t part) { sum += static_cast<int>(part) + 1; });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // past the spin: helpers sleep
  pool.run([&](size_t part) { sum += static_cast<int>(part) + 1; });
  CHECK(sum.load() == 6);
  spin_pool alone(1);
  int ran = 0;
  alone.run([&](size_t) { ++ran; });
  CHECK(ran == 1);
}
