// Every message type survives CAF's binary serialisation unchanged: the precondition for
// putting actors on other machines without changing the messages.
#include <catch2/catch.hpp>

#include "caf/binary_deserializer.hpp"
#include "caf/binary_serializer.hpp"
#include "caf/deep_to_string.hpp"

#include "messages/interfaces.hpp"

using namespace adapterd::messages;

namespace {

template <class T>
void check_round_trip(T original) {
  std::vector<char> buf;
  caf::binary_serializer sink{nullptr, buf};
  REQUIRE_FALSE(sink(original));
  T copy;
  caf::binary_deserializer source{nullptr, buf};
  REQUIRE_FALSE(source(copy));
  CHECK(caf::deep_to_string(copy) == caf::deep_to_string(original));
}

}  // namespace

TEST_CASE("messages round-trip through the binary serializer", "[messages]") {
  generate_request req;
  req.request_id = "r-1";
  req.prompt = "h\xC3\xA9llo";
  req.max_new_tokens = 7;
  req.temperature = 0.5;
  req.has_seed = true;
  req.seed = 42;
  req.adapter_path = "models/a";
  req.arrival_seq = 3;
  check_round_trip(req);
  generate_reply reply;
  reply.generated_text = "out";
  reply.tokens_generated = 3;
  reply.queue_ms = 1.5;
  reply.service_seq = 9;
  check_round_trip(reply);
  check_round_trip(cleanup_request{"r-2", "manual", "all", "worker-1"});
  cleanup_reply c;
  c.status = "success";
  c.rss_after_bytes = 1234;
  check_round_trip(c);
  check_round_trip(request_event{request_event::started, "r-3"});
  model_state m;
  m.loaded = true;
  m.path = "/m";
  m.model_loads = 2;
  check_round_trip(m);
  check_round_trip(flush_event{"after_request", 99});
  health_report h;
  h.queue_depth = 4;
  h.model = m;
  check_round_trip(h);
}

TEST_CASE("cluster messages round-trip, nested node lists included", "[messages][cluster]") {
  check_round_trip(node_hello{"nonce", "proof"});
  check_round_trip(node_info{"w1", 16, 256});
  check_round_trip(join_request{"127.0.0.1:9000", "proof"});
  health_report h;
  h.role = "router";
  node_status n;
  n.address = "127.0.0.1:9000";
  n.state = "up";
  n.adapters = {"models/a", "models/b"};
  n.last_seen_ms_ago = 12.5;
  h.nodes = {n, n};
  check_round_trip(h);
  cleanup_reply total;
  total.status = "partial";
  cleanup_reply one;
  one.node = "w1";
  one.error = "gone";
  total.nodes = {one};
  check_round_trip(total);
  generate_reply r;
  r.node = "w2";
  check_round_trip(r);
  CHECK(caf::deep_to_string(r).find("w2") != std::string::npos);
}
