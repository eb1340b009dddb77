#include <algorithm>
#include <chrono>
#include <limits>
#include <vector>

#include <spdlog/spdlog.h>

#include "actors/cluster/router_state.hpp"
#include "actors/core/route_policy.hpp"
#include "actors/error_mapping.hpp"

namespace adapterd::actors::router {

using messages::errc;

namespace {

// A request names weights as the client wrote them; workers report resolved paths.
// Whether a resolved `path` a worker reported is the one a client `requested`: the same, or
// ending in it at a '/' boundary.
bool names_path(const std::string& path, const std::string& requested) {
  auto want = requested.rfind("./", 0) == 0 ? requested.substr(2) : requested;
  return path == want
         || (path.size() > want.size()
             && path.compare(path.size() - want.size(), want.size(), want) == 0
             && path[path.size() - want.size() - 1] == '/');
}

bool holds(const worker_link& link, const std::string& requested) {
  if (requested.empty())
    return true;
  return std::any_of(link.held.begin(), link.held.end(),
                     [&](const auto& path) { return names_path(path, requested); });
}

uint64_t known_bytes(const router_state& st, const std::string& requested) {
  for (const auto& [path, bytes] : st.weight_bytes)
    if (names_path(path, requested))
      return bytes;
  return 0;
}

constexpr auto reconnect_wait = std::chrono::seconds(5);

}  // namespace

bool from_this_node(router_self self) {
  const auto& sender = self->current_sender();
  return sender && sender->node() == self->node();
}

caf::error not_local() {
  return make_failure(errc::unauthorized, "only this node's own actors may ask the router");
}

void dispatch(router_self self, uint64_t seq) {
  auto& st = self->state;
  auto& r = st.requests.at(seq);
  std::vector<route_candidate> candidates;
  std::vector<worker_link*> order;
  for (auto& [address, link] : st.links) {
    route_candidate c;
    c.up = link.state == link_state::up;
    c.excluded = r.tried.count(address) > 0;
    c.load = load_of(link);
    c.max_batch_size = std::max<uint32_t>(1, link.info.max_batch_size);
    c.holds_model = r.req.base_model.empty() ? (!link.seen || link.last.model.loaded)
                                             : holds(link, r.req.base_model);
    c.holds_adapter = !r.req.adapter_path.empty() && holds(link, r.req.adapter_path);
    c.budget_free_bytes = link.seen ? budget_free(link.last) : std::numeric_limits<uint64_t>::max();
    if (!c.holds_model)
      c.bytes_needed += known_bytes(st, r.req.base_model);
    if (!r.req.adapter_path.empty() && !c.holds_adapter)
      c.bytes_needed += known_bytes(st, r.req.adapter_path);
    c.routed = link.routed;
    candidates.push_back(c);
    order.push_back(&link);
  }
  auto pick = pick_route(candidates);
  bool none_up =
      std::none_of(candidates.begin(), candidates.end(), [](const auto& c) { return c.up; });
  // Down and connecting links are being redialled; refused ones are not.
  bool reconnecting = std::any_of(st.links.begin(), st.links.end(), [](const auto& l) {
    return l.second.state == link_state::down || l.second.state == link_state::connecting;
  });
  if (!pick && none_up && reconnecting && !st.parked.count(seq)) {
    // A link that dropped (a restart, a lost connection) usually comes back in well under
    // a second: wait for it rather than fail. A worker that comes up retries the request.
    st.parked[seq] = std::min(r.deadline, clock_type::now() + reconnect_wait);
    r.tried.clear();
    // A parked request is on no worker: a late answer from where it was is stale, and that
    // link going away again must not move it.
    r.address.clear();
    ++r.attempt;
    return;
  }
  if (!pick) {
    auto f = r.last_failure;
    if (std::none_of(candidates.begin(), candidates.end(), [](const auto& c) { return c.up; }))
      f = {errc::unavailable, "no worker is up (" + std::to_string(st.links.size()) + " known)"};
    spdlog::warn("router {} unanswerable: {}", r.req.request_id, f.message);
    finish(self, seq, make_failure(f.code, f.message));
    return;
  }
  // The router keeps each request's deadline itself: a worker that went silent (a
  // partition sends no FIN) cannot hold a client past it.
  auto remaining =
      std::chrono::duration_cast<std::chrono::milliseconds>(r.deadline - clock_type::now());
  if (remaining.count() <= 0) {
    finish(self, seq, make_failure(errc::timeout, "no answer within the request's deadline"));
    return;
  }
  auto& link = *order[*pick];
  r.address = link.address;
  r.tried.insert(link.address);
  auto attempt = ++r.attempt;
  ++link.in_flight;
  ++link.routed;
  spdlog::debug("router {} -> {} (load {}, attempt {})", r.req.request_id, link.address,
                candidates[*pick].load, attempt);
  self->request(link.handle, remaining, messages::generate_atom_v, r.req)
      .then(
          [self, seq, attempt](messages::generate_reply& reply) {
            auto it = self->state.requests.find(seq);
            if (it == self->state.requests.end() || it->second.attempt != attempt)
              return;  // already answered (its worker went away meanwhile)
            auto lit = self->state.links.find(it->second.address);
            if (lit != self->state.links.end()) {
              --lit->second.in_flight;
              lit->second.held.insert(it->second.req.adapter_path);
              lit->second.held.insert(it->second.req.base_model);
              reply.node = lit->second.info.name;
            }
            finish(self, seq, std::move(reply));
          },
          [self, seq, attempt](const caf::error& e) {
            auto it = self->state.requests.find(seq);
            if (it == self->state.requests.end() || it->second.attempt != attempt)
              return;
            auto& r = it->second;
            auto lit = self->state.links.find(r.address);
            if (lit != self->state.links.end())
              --lit->second.in_flight;
            if (e == caf::sec::request_timeout) {
              if (lit != self->state.links.end() && lit->second.state == link_state::up)
                self->send(lit->second.handle, messages::cancel_atom_v, r.req.request_id);
              spdlog::warn("router {} timed out on {}", r.req.request_id, r.address);
              return finish(self, seq,
                            make_failure(errc::timeout, "no answer within the request's deadline"));
            }
            auto f = to_failure(e);
            // What another worker might do better: its memory, its queue, being there, or
            // holding the model or adapter (ids registered, or trained, on that worker alone).
            bool elsewhere = f.code == errc::insufficient_memory || f.code == errc::out_of_memory
                             || f.code == errc::overloaded || f.code == errc::unavailable
                             || f.code == errc::unauthorized || f.code == errc::unknown_model
                             || f.code == errc::adapter_not_found;
            if (elsewhere && !r.streamed) {
              r.last_failure = f;
              return dispatch(self, seq);
            }
            finish(self, seq, make_failure(f.code, f.message));
          });
}

void retry_parked(router_self self, bool expired_only) {
  auto& st = self->state;
  auto now = clock_type::now();
  std::vector<uint64_t> due;
  for (const auto& [seq, until] : st.parked)
    if (!expired_only || until <= now)
      due.push_back(seq);
  for (auto seq : due) {
    st.parked.erase(seq);
    if (!st.requests.count(seq))
      continue;
    if (expired_only) {
      auto& r = st.requests.at(seq);
      if (r.deadline <= now)
        finish(self, seq,
               make_failure(errc::timeout, "no worker came up within the request's deadline"));
      else
        finish(self, seq,
               make_failure(errc::unavailable, "no worker is up (" + std::to_string(st.links.size())
                                                   + " known, none came back within 5 s)"));
      continue;
    }
    dispatch(self, seq);
  }
}

void finish(router_self self, uint64_t seq, caf::expected<messages::generate_reply> outcome) {
  auto& st = self->state;
  st.parked.erase(seq);
  auto it = st.requests.find(seq);
  if (it == st.requests.end())
    return;
  if (outcome) {
    ++st.served;
    it->second.rp.deliver(std::move(*outcome));
  } else {
    ++st.failed;
    it->second.rp.deliver(std::move(outcome.error()));
  }
  st.requests.erase(it);
}

}  // namespace adapterd::actors::router
