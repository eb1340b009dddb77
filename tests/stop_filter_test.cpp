#include <catch2/catch.hpp>

#include "model/stop_filter.hpp"

using adapterd::model::stop_filter;

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
