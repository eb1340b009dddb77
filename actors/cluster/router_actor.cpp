#include "actors/cluster/router_actor.hpp"

#include <chrono>
#include <string>
#include <tuple>

#include <spdlog/spdlog.h>

#include "caf/send.hpp"

#include "actors/cluster/node_auth.hpp"
#include "actors/cluster/node_dial.hpp"
#include "actors/cluster/router_fan_out.hpp"
#include "actors/cluster/router_state.hpp"
#include "actors/error_mapping.hpp"
#include "actors/handler_firewall.hpp"

namespace adapterd::actors {

namespace {

using namespace router;
using messages::errc;

bool from_self(router_self self) {
  return self->current_sender() == caf::actor_cast<caf::strong_actor_ptr>(self);
}

messages::router_actor::behavior_type router_behavior(router_self self, router_config config) {
  self->state.config = std::move(config);
  self->set_down_handler([self](const caf::down_msg& down) {
    for (auto& [address, link] : self->state.links)
      if (link.handle && link.handle.address() == down.source)
        return worker_went_away(self, link,
                                "connection lost (" + caf::to_string(down.reason) + ")");
  });
  for (const auto& address : self->state.config.workers)
    dial(self, address);
  self->send(self, messages::poll_atom_v);
  auto generate = [=](messages::generate_atom,
                      messages::generate_request& req) -> caf::result<messages::generate_reply> {
    if (!from_this_node(self))
      return not_local();
    // Read the sender first: making the response promise takes it from the message.
    auto requester = caf::actor_cast<messages::chunk_sink>(self->current_sender());
    auto seq = req.arrival_seq;
    routed_request r;
    auto seconds = req.timeout_s > 0 ? req.timeout_s
                                     : static_cast<double>(self->state.config.request_timeout_s);
    r.deadline =
        clock_type::now()
        + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(seconds));
    r.req = std::move(req);
    r.requester = requester;
    r.rp = self->make_response_promise<messages::generate_reply>();
    auto rp = r.rp;
    self->state.requests[seq] = std::move(r);
    dispatch(self, seq);
    return rp;
  };
  auto cancel = [=](messages::cancel_atom, const std::string& id) {
    if (!from_this_node(self))
      return;
    for (auto& [seq, r] : self->state.requests)
      if (r.req.request_id == id) {
        auto it = self->state.links.find(r.address);
        if (it != self->state.links.end() && it->second.state == link_state::up)
          self->send(it->second.handle, messages::cancel_atom_v, id);
      }
  };
  auto health = [=](messages::health_atom) -> caf::result<messages::health_report> {
    if (!from_this_node(self))
      return not_local();
    return health_of(self);
  };
  auto chunk = [=](messages::chunk_atom, messages::stream_chunk& c) {
    auto it = self->state.requests.find(c.arrival_seq);
    if (it == self->state.requests.end())
      return;
    auto& r = it->second;
    auto lit = self->state.links.find(r.address);
    const auto& sender = self->current_sender();
    // Only the worker now serving this request may add to its text.
    if (lit == self->state.links.end() || !sender || sender->node() != lit->second.node)
      return;
    r.streamed = true;
    self->send(r.requester, messages::chunk_atom_v, std::move(c));
  };
  auto join = [=](messages::join_atom,
                  const messages::join_request& req) -> caf::result<std::string> {
    if (!check_proof(self->state.config.secret, "join", req.address, req.proof)) {
      spdlog::warn("router refused a join from {}: wrong cluster secret", req.address);
      return make_failure(errc::unauthorized, "wrong cluster secret");
    }
    if (!parse_node_address(req.address))
      return make_failure(errc::bad_request, "'" + req.address + "' is not a host:port address");
    spdlog::info("router: worker {} asks to join", req.address);
    auto& link = self->state.links[req.address];
    link.address = req.address;
    if (link.state != link_state::up) {
      link.backoff = std::chrono::milliseconds(250);
      // The worker asked over its own connection: talk back on it. Dialling its node
      // port as well would open a second link between the same two nodes, which CAF
      // resolves by dropping one, and with it the proxies on both sides.
      auto worker = caf::actor_cast<messages::worker_actor>(self->current_sender());
      if (worker && !link.dialing) {
        link.dialing = true;
        handshake(self, req.address, std::move(worker));
      } else if (!link.dialing) {
        dial(self, req.address);
      }
    }
    return std::string("ok");
  };
  auto redial = [=](messages::dial_atom, const std::string& address) {
    if (from_self(self))
      dial(self, address);
  };
  auto poll_round = [=](messages::poll_atom) {
    if (from_self(self))
      poll(self);
  };
  return std::apply(
      [&](auto... calls) {
        return guarded_behavior<messages::router_actor::behavior_type>(
            "router", generate, cancel, health, chunk, join, redial, poll_round, calls...);
      },
      router_calls(self, messages::api_calls{}));
}

}  // namespace

messages::router_actor spawn_router(caf::actor_system& sys, router_config config) {
  return sys.spawn(router_behavior, std::move(config));
}

}  // namespace adapterd::actors
