#pragma once
// router: a node with the HTTP API and no model. It dials its workers (configured, or
// joined at runtime), proves the shared secret to each and checks theirs, polls their
// status, and sends each request to one of them (route_policy: free batch slots, then
// the weights already held, then the least load, never past a memory budget). When a
// worker goes away, its requests that have not streamed text yet go to another worker;
// the others end with errc::worker_lost; the router dials it again with backoff.
// /cleanup-memory goes to every worker (or a named one) and the answers are summed.
#include <string>
#include <vector>

#include "caf/typed_event_based_actor.hpp"

#include "messages/interfaces.hpp"

namespace adapterd::actors {

struct router_config {
  std::string secret;
  std::vector<std::string> workers;  // host:port
  unsigned poll_ms = 500;
  unsigned request_timeout_s = 600;
};

messages::router_actor spawn_router(caf::actor_system& sys, router_config config);

}  // namespace adapterd::actors
