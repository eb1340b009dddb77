#pragma once
// A standalone node: monitor, supervisor, janitor, gpu-owner and http actor, wired
// together, plus the HTTP server in front of them.
#include <memory>
#include <string>
#include <variant>

#include "caf/actor_system.hpp"

#include "actors/service_config.hpp"

namespace adapterd::actors {

class node {
public:
  node(caf::actor_system& sys, service_config config);
  ~node();
  /// Spawns the actors and starts listening; returns the bound port or an error text.
  std::variant<uint16_t, std::string> start();
  /// Stops the HTTP server, then the actors.
  void stop();

private:
  struct parts;
  std::unique_ptr<parts> parts_;
};

}  // namespace adapterd::actors
