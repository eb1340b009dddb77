#pragma once
// Reaching another node: "host:port" addresses, and connecting to the actor published
// there through the middleman without blocking the calling actor.
#include <chrono>
#include <optional>
#include <string>

#include "caf/actor_cast.hpp"
#include "caf/io/middleman.hpp"
#include "caf/io/middleman_actor.hpp"
#include "caf/openssl/manager.hpp"

namespace adapterd::actors {

struct node_address {
  std::string host;
  uint16_t port = 0;
};

/// "host:port" with a port in 1..65535, else none.
std::optional<node_address> parse_node_address(const std::string& text);

/// Connects to the actor published at `where` and calls on_connected(Handle) or
/// on_failed(std::string). The handshake, not the interface check, decides whether the
/// other side is one of ours.
template <class Handle, class Self, class Connected, class Failed>
void dial_node(Self* self, const node_address& where, Connected on_connected, Failed on_failed) {
  // With the OpenSSL module loaded, only mutual TLS: a peer without a certificate of the
  // cluster CA cannot complete the connection.
  auto& sys = self->home_system();
  auto mm = sys.has_openssl_manager() ? sys.openssl_manager().actor_handle() : sys.middleman().actor_handle();
  self->request(mm, std::chrono::seconds(10), caf::connect_atom_v, where.host, where.port)
    .then(
      [=](const caf::node_id&, caf::strong_actor_ptr& ptr, const std::set<std::string>&) mutable {
        if (!ptr)
          return on_failed(std::string("nothing is published there"));
        on_connected(caf::actor_cast<Handle>(std::move(ptr)));
      },
      [=](const caf::error& e) mutable { on_failed(caf::to_string(e)); });
}

}  // namespace adapterd::actors
