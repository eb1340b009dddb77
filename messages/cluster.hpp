#pragma once
// The cluster family: how a router and its worker nodes greet, authenticate and describe
// each other. The handshake proves a shared secret both ways without sending it.
#include <cstdint>
#include <string>
#include <vector>

#include "caf/meta/type_name.hpp"

namespace adapterd::messages {

/// A worker's answer to a router's hello(router_nonce): its own nonce, and its proof of
/// the secret over the router's nonce.
struct node_hello {
  std::string nonce;
  std::string proof;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_hello& x) {
  return f(caf::meta::type_name("adapterd::node_hello"), x.nonce, x.proof);
}

/// What an authenticated worker tells its router about itself.
struct node_info {
  std::string name;
  uint32_t max_batch_size = 0;
  uint32_t max_queue = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_info& x) {
  return f(caf::meta::type_name("adapterd::node_info"), x.name, x.max_batch_size, x.max_queue);
}

/// A worker asking a router to dial it: where it published itself, and a proof of the
/// secret over that address.
struct join_request {
  std::string address;  // host:port of the worker's node port
  std::string proof;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, join_request& x) {
  return f(caf::meta::type_name("adapterd::join_request"), x.address, x.proof);
}

/// Where a router's link to a worker stands. refused: it failed the handshake, or its
/// address is not one; requests waiting for a worker do not wait for it.
enum class node_state : uint8_t { connecting, up, down, refused };

/// One worker as its router sees it, for the router's /health.
struct node_status {
  std::string address;
  std::string name;
  node_state state = node_state::connecting;
  std::string error;       // why it is down or refused
  uint32_t queue_depth = 0;
  uint32_t running = 0;
  uint32_t max_batch_size = 0;
  uint32_t in_flight = 0;  // requests this router has sent there and not had answered
  uint64_t routed = 0;     // requests this router sent there
  uint64_t failed_over = 0;  // requests moved elsewhere when it went away
  uint64_t rss_bytes = 0;
  bool gpu_available = false;
  double gpu_allocated_mb = 0;
  double gpu_reserved_mb = 0;
  std::string model;                  // the default model's path, when loaded
  std::vector<std::string> adapters;  // adapter paths it holds
  uint64_t budget_free_bytes = 0;     // room left in its device budget; max: unlimited
  double last_seen_ms_ago = -1;       // -1: never
  uint32_t reconnects = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_status& x) {
  return f(caf::meta::type_name("adapterd::node_status"), x.address, x.name, x.state, x.error,
           x.queue_depth, x.running, x.max_batch_size, x.in_flight, x.routed, x.failed_over,
           x.rss_bytes, x.gpu_available, x.gpu_allocated_mb, x.gpu_reserved_mb, x.model,
           x.adapters, x.budget_free_bytes, x.last_seen_ms_ago, x.reconnects);
}

}  // namespace adapterd::messages
