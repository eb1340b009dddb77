#pragma once
// The router's state and the parts of it that its files share. The router is split by job:
// router_links.cpp (dialling, the handshake, backoff, status polling, a worker going away),
// router_dispatch.cpp (sending each generation to a worker, failover, deadlines, parking),
// router_fan_out.{hpp,cpp} (questions for any worker, and those gathered from all of them),
// and router_actor.cpp (the behavior that ties them to messages).
#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <unordered_map>

#include "caf/typed_response_promise.hpp"

#include "actors/cluster/router_actor.hpp"
#include "messages/interfaces.hpp"
#include "messages/names.hpp"

namespace adapterd::actors {

namespace router {

using clock_type = std::chrono::steady_clock;

/// Where a link to a worker stands, as /health shows it.
using link_state = messages::node_state;

/// One worker as this router knows it.
struct worker_link {
  std::string address;
  link_state state = link_state::connecting;
  std::string error;
  messages::worker_actor handle;
  caf::node_id node;
  messages::node_info info;
  messages::health_report last;  // its latest status
  bool seen = false;
  clock_type::time_point last_seen;
  std::set<std::string> held;  // weights it holds: resident paths, and paths it served since
  uint32_t in_flight = 0;
  uint64_t routed = 0, failed_over = 0;
  uint32_t reconnects = 0;
  bool dialing = false;
  std::chrono::milliseconds backoff{250};
  uint32_t missed_polls = 0;  // status polls unanswered in a row: a silent (partitioned) worker
};

/// A generation this router has taken and not yet answered.
struct routed_request {
  messages::generate_request req;
  clock_type::time_point deadline;  // the request's timeout_s (or --request-timeout) from arrival
  caf::typed_response_promise<messages::generate_reply> rp;
  messages::chunk_sink requester;  // where streamed text goes
  std::string address;             // the worker serving it now
  uint32_t attempt = 0;
  bool streamed = false;
  std::set<std::string> tried;
  messages::failure last_failure{messages::errc::unavailable, "no worker is up"};
};

}  // namespace router

struct router_state {
  static inline const char* name = "router";
  router_state() = default;  // non-aggregate: CAF 0.17's C++20 state trap

  router_config config;
  std::map<std::string, router::worker_link> links;               // by address
  std::unordered_map<uint64_t, router::routed_request> requests;  // by arrival_seq
  std::map<std::string, uint64_t> weight_bytes;  // path -> bytes, as any worker reported it
  // Requests that found no worker up while one was reconnecting: they wait for it (within
  // their deadline and reconnect_wait) instead of failing at once.
  std::map<uint64_t, router::clock_type::time_point> parked;  // seq -> when it stops waiting
  uint64_t served = 0, failed = 0;
  router::clock_type::time_point started = router::clock_type::now();
};

namespace router {

using router_self = messages::router_actor::stateful_pointer<router_state>;

// router_links.cpp
void dial(router_self self, const std::string& address);
/// The handshake over a handle already in hand: the worker proves the secret over our
/// nonce, we prove it over its nonce; then the link is up.
void handshake(router_self self, const std::string& address, messages::worker_actor handle);
/// A worker's connection ended or it went silent: its requests move or fail, and it is
/// dialled again.
void worker_went_away(router_self self, worker_link& link, const std::string& why);
/// One round of status polls; it schedules the next.
void poll(router_self self);
messages::health_report health_of(router_self self);
/// Device memory a worker's budget still has (unbounded without a budget).
uint64_t budget_free(const messages::health_report& h);
uint32_t load_of(const worker_link& link);

// router_dispatch.cpp
/// Sends request `seq` to the best worker it has not tried, or answers it with the last
/// failure when none is left.
void dispatch(router_self self, uint64_t seq);
/// Parked requests go out again: all of them (a worker came up), or only those whose wait
/// is over, which then get the failure they would have had.
void retry_parked(router_self self, bool expired_only);
void finish(router_self self, uint64_t seq, caf::expected<messages::generate_reply> outcome);

/// Whether the message came from an actor of this node (the http actor, not a worker).
bool from_this_node(router_self self);
caf::error not_local();

}  // namespace router

}  // namespace adapterd::actors
