#include <catch2/catch.hpp>

#include "actors/cluster/node_auth.hpp"
#include "actors/cluster/node_dial.hpp"

using namespace adapterd::actors;

TEST_CASE("node proofs bind the secret, the role and the nonce", "[cluster]") {
  auto nonce = make_nonce();
  CHECK(nonce.size() == 64);
  CHECK(make_nonce() != nonce);
  auto proof = make_proof("secret-of-sixteen", "worker", nonce);
  CHECK(check_proof("secret-of-sixteen", "worker", nonce, proof));
  CHECK_FALSE(check_proof("another-secret!!", "worker", nonce, proof));
  CHECK_FALSE(check_proof("secret-of-sixteen", "router", nonce, proof));
  CHECK_FALSE(check_proof("secret-of-sixteen", "worker", make_nonce(), proof));
  CHECK_FALSE(check_proof("secret-of-sixteen", "worker", nonce, proof.substr(1)));
  CHECK_FALSE(check_proof("secret-of-sixteen", "worker", nonce, ""));
  // The wire format, checked against Python's hmac: HMAC-SHA256(secret, label "|" nonce).
  CHECK(make_proof("Jefe", "worker", "what do ya want for nothing?")
        == "1bc80f50fc3283dd6d53f8c0fe5e072024ff0ec0a097b26dba8d01a6a29aa80a");
}

TEST_CASE("node addresses are host:port", "[cluster]") {
  auto a = parse_node_address("127.0.0.1:9000");
  REQUIRE(a);
  CHECK(a->host == "127.0.0.1");
  CHECK(a->port == 9000);
  CHECK(parse_node_address("gpu-box.local:1")->host == "gpu-box.local");
  for (const char* bad : {"", "host", "host:", ":80", "host:0", "host:65536", "host:8x", "host:-1"})
    CHECK_FALSE(parse_node_address(bad).has_value());
}
