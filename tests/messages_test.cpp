// Every message type survives CAF's binary serialisation unchanged: the precondition for
// putting actors on other machines without changing the messages.
#include <catch2/catch.hpp>

#include "caf/binary_deserializer.hpp"
#include "caf/binary_serializer.hpp"
#include "caf/deep_to_string.hpp"

#include "messages/interfaces.hpp"
#include "messages/names.hpp"

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
  check_round_trip(cleanup_request{"r-2", cleanup_reason::manual, cleanup_level::all, "worker-1"});
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
  check_round_trip(flush_event{cleanup_reason::manual, 99, cleanup_level::adapters});
  console_feed feed;
  feed.role = "worker";
  feed.next = 7;
  console_sample sample;
  sample.seq = 6;
  sample.ttft_p99_s = 0.25;
  feed.samples = {sample, sample};
  feed.events = {console_event{6, 1700, cleanup_reason::manual, cleanup_level::all, 5}};
  m.resident = {resident_item{"adapter", "/a", "cpu", "device", 10, "", 3, 1700}};
  feed.model = m;
  feed.loss_curves = {loss_curve{"job-1", {1, 2}, {2.5, 2.0}}};
  check_round_trip(feed);
  check_round_trip(console_request{12});
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
  n.state = node_state::up;
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

namespace {

// Sets every field that a message's inspect() names to a value that is not its default
// (nested messages and lists included), so that a round trip proves each of them travels
// with its value, not only its default.
struct filler {
  using result_type = void;
  static constexpr bool reads_state = false;
  static constexpr bool writes_state = true;
  int depth = 0;

  template <class... Ts>
  void operator()(Ts&&... xs) {
    (fill(xs), ...);
  }

  template <class T>
  void fill(T& x) {
    if constexpr (std::is_base_of<caf::meta::annotation, std::decay_t<T>>::value) {
      // type names and other annotations carry no state
    } else if constexpr (std::is_same<T, bool>::value) {
      x = !x;
    } else if constexpr (std::is_enum<T>::value) {
      x = static_cast<T>(static_cast<std::underlying_type_t<T>>(x) + 1);
    } else if constexpr (std::is_arithmetic<T>::value) {
      x = static_cast<T>(7);
    } else if constexpr (std::is_same<T, std::string>::value) {
      x = "filled \xC3\xA9";
    } else if constexpr (caf::detail::is_map_like<T>::value) {
      typename T::key_type key{};
      typename T::mapped_type value{};
      fill(key);
      fill(value);
      x.emplace(std::move(key), std::move(value));
    } else if constexpr (caf::detail::is_list_like<T>::value) {
      if (depth < 3) {  // nested lists of messages (node lists in a health report) stay finite
        typename T::value_type element{};
        ++depth;
        fill(element);
        --depth;
        x.insert(x.end(), std::move(element));
      }
    } else {
      inspect(*this, x);
    }
  }
};

template <caf::type_id_t... Ids>
std::vector<std::string> round_trip_each(std::integer_sequence<caf::type_id_t, Ids...>) {
  std::vector<std::string> names;
  auto one = [&](auto* tag) {
    using type = std::remove_pointer_t<decltype(tag)>;
    type value{};
    if constexpr (!std::is_empty<type>::value) {  // atoms have no fields
      filler f;
      f.fill(value);
      CHECK(caf::deep_to_string(value) != caf::deep_to_string(type{}));
    }
    INFO(caf::type_name<type>::value);
    check_round_trip(value);
    names.emplace_back(caf::type_name<type>::value);
  };
  (one(static_cast<typename caf::type_by_id<caf::id_block::adapterd_first_type_id + Ids>::type*>(nullptr)), ...);
  return names;
}

}  // namespace

TEST_CASE("every registered message type round-trips with every field set", "[messages]") {
  constexpr auto count = caf::id_block::adapterd_last_type_id - caf::id_block::adapterd_first_type_id;
  auto names = round_trip_each(std::make_integer_sequence<caf::type_id_t, count>{});
  CHECK(names.size() == count);
  CHECK(std::find(names.begin(), names.end(), std::string("adapterd::messages::generate_request")) != names.end());
}

namespace {

template <class Enum>
void check_names_round_trip() {
  for (const auto& [value, name] : name_table<Enum>::entries) {
    CHECK(name_of(value) == name);
    CHECK(from_name<Enum>(name) == value);
  }
  CHECK_FALSE(from_name<Enum>("").has_value());
  CHECK_FALSE(from_name<Enum>("LIST").has_value());  // names are exact
}

}  // namespace

TEST_CASE("each enum of messages/ has one name per value, and names read back", "[messages]") {
  check_names_round_trip<adapter_action>();
  check_names_round_trip<job_action>();
  check_names_round_trip<cleanup_reason>();
  check_names_round_trip<cleanup_level>();
  check_names_round_trip<node_state>();
  CHECK(names_of<cleanup_level>() == "flush, adapters or all");
  CHECK(caf::deep_to_string(cleanup_request{"r", cleanup_reason::manual, cleanup_level::all, ""})
            .find("all")
        != std::string::npos);
}
