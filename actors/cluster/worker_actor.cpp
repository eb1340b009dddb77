#include "actors/cluster/worker_actor.hpp"

#include <chrono>
#include <map>
#include <set>
#include <tuple>

#include <spdlog/spdlog.h>

#include "caf/send.hpp"

#include "actors/cluster/node_auth.hpp"
#include "actors/cluster/node_dial.hpp"
#include "actors/error_mapping.hpp"
#include "actors/handler_firewall.hpp"

namespace adapterd::actors {

struct worker_state {
  static inline const char* name = "worker";
  worker_state() = default;  // non-aggregate: CAF 0.17's C++20 state trap

  worker_config config;
  std::map<caf::node_id, std::string> pending;  // node -> the nonce it must prove the secret over
  std::set<caf::node_id> trusted;
  std::map<caf::actor_addr, caf::node_id> trusted_routers;  // monitored: trust ends with the connection
  std::map<std::string, messages::router_actor> joined;  // router address -> its handle
  std::set<std::string> refused;  // routers that refused our secret: not asked again
  std::set<std::string> dialing;  // routers with an attempt under way
  std::chrono::milliseconds join_backoff{250};
};

namespace {

using self_ptr = messages::worker_actor::stateful_pointer<worker_state>;

caf::node_id sender_node(self_ptr self) {
  const auto& sender = self->current_sender();
  return sender ? sender->node() : caf::node_id{};
}

bool trusted(self_ptr self) {
  return self->state.trusted.count(sender_node(self)) > 0;
}

caf::error refusal() {
  return make_failure(messages::errc::unauthorized, "this node has not passed the cluster handshake");
}

// A trusted router's message goes to the node's own actor, which answers the router.
template <class Reply, class Target, class... Ts>
caf::result<Reply> pass_on(self_ptr self, const Target& target, Ts&&... xs) {
  if (!trusted(self))
    return refusal();
  return self->delegate(target, std::forward<Ts>(xs)...);
}

// Each envelope call (messages/calls.hpp) goes to the node's actor that owns it: one handler
// per call, made from the list, so a new call needs nothing here.
template <class Request>
auto pass_on_call(self_ptr self) {
  using atom = typename messages::call_atom<Request>::type;
  using reply = typename messages::call_traits<Request>::reply;
  return [self](atom a, Request& req) -> caf::result<reply> {
    constexpr auto owner = messages::call_traits<Request>::owner;
    const auto& c = self->state.config;
    if constexpr (owner == messages::service::cleanup)
      return pass_on<reply>(self, c.janitor, a, std::move(req));
    else if constexpr (owner == messages::service::catalog)
      return pass_on<reply>(self, c.catalog, a, std::move(req));
    else if constexpr (owner == messages::service::console)
      return pass_on<reply>(self, c.monitor, a, std::move(req));
    else
      return pass_on<reply>(self, c.gpu_owner, a, std::move(req));
  };
}

template <class... Requests>
auto pass_on_calls(self_ptr self, messages::call_list<Requests...>) {
  return std::make_tuple(pass_on_call<Requests>(self)...);
}

void join_routers(self_ptr self) {
  auto& st = self->state;
  bool missing = false;
  for (const auto& address : st.config.join) {
    if (st.joined.count(address) || st.refused.count(address))
      continue;
    missing = true;
    auto where = parse_node_address(address);
    if (!where || !st.dialing.insert(address).second)
      continue;  // a bad address was rejected at start-up
    dial_node<messages::router_actor>(
      self, *where,
      [self, address](messages::router_actor router) {
        auto& st = self->state;
        messages::join_request req{st.config.advertise, make_proof(st.config.secret, "join", st.config.advertise)};
        self->request(router, std::chrono::seconds(10), messages::join_atom_v, std::move(req))
          .then(
            [self, address, router](const std::string&) {
              self->state.dialing.erase(address);
              spdlog::info("worker joined router {}", address);
              self->state.joined[address] = router;
              self->state.join_backoff = std::chrono::milliseconds(250);
              self->monitor(router);
            },
            [self, address](const caf::error& e) {
              self->state.dialing.erase(address);
              auto f = to_failure(e);
              if (f.code == messages::errc::unauthorized) {
                spdlog::error("router {} refused this worker: {} (is the node secret the same?)",
                              address, f.message);
                self->state.refused.insert(address);
              } else {
                spdlog::warn("joining router {} failed: {}", address, f.message);
              }
            });
      },
      [self, address](const std::string& why) {
        self->state.dialing.erase(address);
        spdlog::warn("cannot reach router {}: {}", address, why);
      });
  }
  if (missing) {
    // Ask again until every router took us; the backoff doubles up to 5 s.
    self->delayed_send(self, st.join_backoff, messages::join_atom_v);
    st.join_backoff = std::min(st.join_backoff * 2, std::chrono::milliseconds(5000));
  }
}

messages::worker_actor::behavior_type worker_behavior(self_ptr self, worker_config config) {
  self->state.config = std::move(config);
  self->set_down_handler([self](const caf::down_msg& down) {
    auto& st = self->state;
    if (auto it = st.trusted_routers.find(down.source); it != st.trusted_routers.end()) {
      // The connection went away (or went silent past the middleman's timeout): the node
      // must pass the handshake again before it is heard.
      spdlog::warn("worker: router node {} is gone ({}); its trust ends", caf::to_string(it->second),
                   caf::to_string(down.reason));
      st.trusted.erase(it->second);
      st.trusted_routers.erase(it);
    }
    auto& joined = self->state.joined;
    for (auto it = joined.begin(); it != joined.end(); ++it)
      if (it->second.address() == down.source) {
        spdlog::warn("router {} went away; asking it again", it->first);
        joined.erase(it);
        self->send(self, messages::join_atom_v);
        return;
      }
  });
  if (!self->state.config.join.empty())
    self->send(self, messages::join_atom_v);
  auto hello = [=](messages::hello_atom, const std::string& router_nonce) {
    auto& st = self->state;
    auto nonce = make_nonce();
    st.pending[sender_node(self)] = nonce;
    return messages::node_hello{nonce, make_proof(st.config.secret, "worker", router_nonce)};
  };
  auto auth = [=](messages::auth_atom,
                  const std::string& proof) -> caf::result<messages::node_info> {
    auto& st = self->state;
    auto node = sender_node(self);
    auto it = st.pending.find(node);
    bool ok = it != st.pending.end() && check_proof(st.config.secret, "router", it->second, proof);
    if (it != st.pending.end())
      st.pending.erase(it);
    if (!ok) {
      spdlog::warn("worker refused node {}: wrong cluster secret", caf::to_string(node));
      return make_failure(messages::errc::unauthorized, "wrong cluster secret");
    }
    st.trusted.insert(node);
    if (auto router = self->current_sender()) {
      st.trusted_routers[caf::actor_cast<caf::actor_addr>(router)] = node;
      self->monitor(caf::actor_cast<caf::actor>(router));
    }
    spdlog::info("worker trusts router node {}", caf::to_string(node));
    return messages::node_info{st.config.name, st.config.max_batch_size, st.config.max_queue};
  };
  auto generate = [=](messages::generate_atom,
                      messages::generate_request& req) -> caf::result<messages::generate_reply> {
    return pass_on<messages::generate_reply>(self, self->state.config.gpu_owner,
                                             messages::generate_atom_v, std::move(req));
  };
  auto cancel = [=](messages::cancel_atom, std::string& id) {
    if (trusted(self))
      self->send(self->state.config.gpu_owner, messages::cancel_atom_v, std::move(id));
  };
  auto health = [=](messages::health_atom) -> caf::result<messages::health_report> {
    return pass_on<messages::health_report>(self, self->state.config.monitor,
                                            messages::health_atom_v);
  };
  auto join = [=](messages::join_atom) { join_routers(self); };
  return std::apply(
      [&](auto... calls) {
        return guarded_behavior<messages::worker_actor::behavior_type>(
            "worker", hello, auth, generate, cancel, health, join, calls...);
      },
      pass_on_calls(self, messages::api_calls{}));
}

}  // namespace

messages::worker_actor spawn_worker(caf::actor_system& sys, worker_config config) {
  return sys.spawn(worker_behavior, std::move(config));
}

}  // namespace adapterd::actors
