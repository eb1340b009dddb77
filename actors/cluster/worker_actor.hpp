#pragma once
// worker: the face a worker node shows its routers, published on its node port. It
// answers the shared-secret handshake, then passes an authenticated router's generation,
// cancel, cleanup and health messages to the node's own gpu-owner, janitor and monitor
// (delegated, so their answers and streamed text go straight back to the router).
// Messages from nodes that did not pass the handshake get errc::unauthorized.
// With routers to join, it asks each to dial it, and asks again when one goes away.
#include <string>
#include <vector>

#include "caf/typed_event_based_actor.hpp"

#include "messages/interfaces.hpp"

namespace adapterd::actors {

struct worker_config {
  std::string name;
  std::string secret;
  std::string advertise;          // host:port routers dial
  std::vector<std::string> join;  // routers' host:port
  uint32_t max_batch_size = 0;
  uint32_t max_queue = 0;
  messages::gpu_owner_actor gpu_owner;
  messages::janitor_actor janitor;
  messages::monitor_actor monitor;
  messages::catalog_service catalog;  // the node's supervisor
};

messages::worker_actor spawn_worker(caf::actor_system& sys, worker_config config);

}  // namespace adapterd::actors
