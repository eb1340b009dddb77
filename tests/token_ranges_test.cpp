#include <catch2/catch.hpp>

#include "model/llama/token_ranges.hpp"
#include "model/stop_filter.hpp"

using adapterd::model::stop_filter;
using adapterd::model::token_ranges;

TEST_CASE("token ranges: first fit, and freed neighbours merge", "[kv_pool]") {
  token_ranges r(100);
  auto a = r.take(40), b = r.take(40);
  REQUIRE(a == 0);
  REQUIRE(b == 40);
  CHECK_FALSE(r.take(30));  // 20 left
  CHECK(r.fits(20));
  CHECK(r.used() == 80);
  r.give_back(*a);
  CHECK(r.largest_free() == 40);
  CHECK_FALSE(r.fits(60));  // 40 + 20, not contiguous
  r.give_back(*b);
  CHECK(r.largest_free() == 100);
  CHECK(r.used() == 0);
  CHECK(r.take(100) == 0);
}

TEST_CASE("token ranges: bad lengths and unknown starts change nothing", "[kv_pool]") {
  token_ranges r(10);
  CHECK_FALSE(r.take(0));
  CHECK_FALSE(r.take(-3));
  CHECK_FALSE(r.take(11));
  r.give_back(5);
  CHECK(r.largest_free() == 10);
  auto a = r.take(3), b = r.take(3), c = r.take(3);
  r.give_back(*b);
  r.give_back(*a);
  CHECK(r.take(6) == 0);  // a and b merged
  r.give_back(*c);
}

TEST_CASE("stop filter: holds back what may begin a stop string, cuts before it", "[stream]") {
  stop_filter f({"END", "\n\n"});
  CHECK(f.push("Hello E") == "Hello ");
  CHECK(f.push("N") == "");
  CHECK(f.push("ough") == "ENough");
  CHECK(f.push(" line\n") == " line");
  CHECK(f.push("\nrest") == "");
  CHECK(f.stopped());
  CHECK(f.push("more") == "");
  CHECK(f.finish() == "");
}

TEST_CASE("stop filter: without a stop everything comes out, the tail at the end", "[stream]") {
  stop_filter none({});
  CHECK(none.push("abc") == "abc");
  stop_filter f({"xyz"});
  CHECK(f.push("abx") == "ab");
  CHECK(f.finish() == "x");
  CHECK_FALSE(f.stopped());
  stop_filter inside({"cd"});
  CHECK(inside.push("abcdef") == "ab");  // a stop inside one piece
  CHECK(inside.stopped());
}
