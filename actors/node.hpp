#pragma once
// One adapterd process in its role (service_config::role):
//  standalone: monitor, supervisor, janitor, gpu-owner and http actor, and the HTTP server;
//  worker: the same actors, the worker actor published on the node port, HTTP /health only;
//  router: the router actor (published on the node port when one is set, for joins), the
//          http actor and the HTTP server; no model.
#include <chrono>
#include <memory>
#include <string>
#include <variant>

#include "caf/actor_system.hpp"

#include "actors/service_config.hpp"
#include "actors/watchdog_actor.hpp"

namespace adapterd::actors {

class node {
public:
  node(caf::actor_system& sys, service_config config);
  ~node();
  /// Spawns the actors and starts listening; returns the bound HTTP port or an error text.
  /// `on_core_down` is called (once, on an actor thread) when a core actor goes down for
  /// any reason but stop().
  std::variant<uint16_t, std::string> start(core_down_fn on_core_down = nullptr);
  /// The bound node port (worker, or a router taking joins); 0 when none.
  uint16_t node_port() const;
  /// Stops taking requests (503 shutting_down from the moment it returns).
  void stop_taking();
  /// Stops taking requests and waits up to `grace` for those taken; returns how many were
  /// still unanswered.
  int drain(std::chrono::milliseconds grace);
  /// Stops the HTTP server, then the actors.
  void stop();

private:
  struct parts;
  std::unique_ptr<parts> parts_;
};

}  // namespace adapterd::actors
