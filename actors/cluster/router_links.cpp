#include <algorithm>
#include <chrono>
#include <limits>

#include <spdlog/spdlog.h>

#include "actors/cluster/node_auth.hpp"
#include "actors/cluster/node_dial.hpp"
#include "actors/cluster/router_state.hpp"
#include "actors/core/timestamp.hpp"
#include "actors/error_mapping.hpp"
#include "model/memory_stats.hpp"

namespace adapterd::actors::router {

using messages::errc;

uint64_t budget_free(const messages::health_report& h) {
  const auto& m = h.model;
  if (m.device_budget_bytes == 0)
    return std::numeric_limits<uint64_t>::max();
  uint64_t used = m.kv_reserve_bytes;
  for (const auto& item : m.resident)
    if (item.tier == "device")
      used += item.bytes;
  return used >= m.device_budget_bytes ? 0 : m.device_budget_bytes - used;
}

uint32_t load_of(const worker_link& link) {
  return std::max(link.last.queue_depth + link.last.running, link.in_flight);
}

// Helpers of this file alone are static.
static void schedule_redial(router_self self, worker_link& link) {
  link.dialing = false;
  self->delayed_send(self, link.backoff, messages::dial_atom_v, link.address);
  link.backoff = std::min(link.backoff * 2, std::chrono::milliseconds(5000));
}

static void set_state(worker_link& link, link_state state, std::string error) {
  if (link.state != state || link.error != error) {
    if (state == link_state::up)
      spdlog::info("router: worker {} ({}) is up", link.address, link.info.name);
    else
      spdlog::warn("router: worker {} is {}: {}", link.address, to_string(state), error);
  }
  link.state = state;
  link.error = std::move(error);
}

// The handshake: the worker proves the secret over our nonce, we prove it over its nonce.
void handshake(router_self self, const std::string& address, messages::worker_actor handle) {
  auto nonce = make_nonce();
  self->request(handle, std::chrono::seconds(10), messages::hello_atom_v, nonce)
      .then(
          [self, address, handle, nonce](const messages::node_hello& hello) {
            auto& link = self->state.links[address];
            const auto& secret = self->state.config.secret;
            if (!check_proof(secret, "worker", nonce, hello.proof)) {
              set_state(link, link_state::refused, "the worker does not know the cluster secret");
              return schedule_redial(self, link);
            }
            self->request(handle, std::chrono::seconds(10), messages::auth_atom_v,
                          make_proof(secret, "router", hello.nonce))
                .then(
                    [self, address, handle](const messages::node_info& info) {
                      auto& link = self->state.links[address];
                      link.handle = handle;
                      link.node = handle.node();
                      link.info = info;
                      link.dialing = false;
                      link.backoff = std::chrono::milliseconds(250);
                      link.seen = false;
                      link.last = {};  // what it reported before it went away no longer holds
                      link.held.clear();
                      set_state(link, link_state::up, "");
                      retry_parked(self, false);
                      self->monitor(handle);
                    },
                    [self, address](const caf::error& e) {
                      auto& link = self->state.links[address];
                      auto f = to_failure(e);
                      set_state(
                          link,
                          f.code == errc::unauthorized ? link_state::refused : link_state::down,
                          f.message);
                      schedule_redial(self, link);
                    });
          },
          [self, address](const caf::error& e) {
            auto& link = self->state.links[address];
            set_state(link, link_state::down, to_failure(e).message);
            schedule_redial(self, link);
          });
}

void dial(router_self self, const std::string& address) {
  auto& link = self->state.links[address];
  link.address = address;
  if (link.state == link_state::up || link.dialing)
    return;
  auto where = parse_node_address(address);
  if (!where) {
    set_state(link, link_state::refused, "not a host:port address");
    return;
  }
  link.dialing = true;
  dial_node<messages::worker_actor>(
      self, *where,
      [self, address](messages::worker_actor handle) {
        handshake(self, address, std::move(handle));
      },
      [self, address](const std::string& why) {
        auto& link = self->state.links[address];
        set_state(link, link.state == link_state::refused ? link_state::refused : link_state::down,
                  "cannot connect: " + why);
        schedule_redial(self, link);
      });
}

void worker_went_away(router_self self, worker_link& link, const std::string& why) {
  set_state(link, link_state::down, why);
  if (link.handle)
    self->demonitor(link.handle.address());
  link.handle = nullptr;
  link.missed_polls = 0;
  link.in_flight = 0;
  ++link.reconnects;
  std::vector<uint64_t> moved, lost;
  for (auto& [seq, r] : self->state.requests)
    if (r.address == link.address)
      (r.streamed ? lost : moved).push_back(seq);
  for (auto seq : lost)
    finish(self, seq,
           make_failure(
               errc::worker_lost,
               "worker " + link.address + " went away after it had streamed part of the answer"));
  for (auto seq : moved) {
    ++link.failed_over;
    auto& r = self->state.requests.at(seq);
    r.last_failure = {errc::unavailable, "worker " + link.address + " went away"};
    dispatch(self, seq);
  }
  if (!moved.empty() || !lost.empty())
    spdlog::warn("router: worker {} went away: {} requests moved, {} lost mid-stream", link.address,
                 moved.size(), lost.size());
  schedule_redial(self, link);
}

static void absorb_status(router_self self, worker_link& link, messages::health_report report) {
  link.last = std::move(report);
  link.seen = true;
  link.last_seen = clock_type::now();
  link.held.clear();
  for (const auto& item : link.last.model.resident) {
    link.held.insert(item.path);
    self->state.weight_bytes[item.path] = item.bytes;
  }
}

constexpr auto poll_timeout = std::chrono::seconds(2);
constexpr uint32_t max_missed_polls = 2;

void poll(router_self self) {
  for (auto& [address, link] : self->state.links) {
    if (link.state != link_state::up)
      continue;
    auto handle = link.handle;
    self->request(link.handle, poll_timeout, messages::health_atom_v)
        .then(
            [self, address = address, handle](messages::health_report& report) {
              auto it = self->state.links.find(address);
              if (it != self->state.links.end() && it->second.state == link_state::up
                  && it->second.handle == handle) {
                it->second.missed_polls = 0;
                absorb_status(self, it->second, std::move(report));
              }
            },
            [self, address = address, handle](const caf::error& e) {
              spdlog::debug("router: no status from {}: {}", address, caf::to_string(e));
              auto it = self->state.links.find(address);
              if (it == self->state.links.end() || it->second.state != link_state::up
                  || it->second.handle != handle)
                return;
              // A partition sends no FIN or RST: silence is the only sign. Its requests move on.
              if (++it->second.missed_polls >= max_missed_polls)
                worker_went_away(self, it->second,
                                 "silent: " + std::to_string(it->second.missed_polls)
                                     + " status polls unanswered");
            });
  }
  retry_parked(self, true);
  self->delayed_send(self, std::chrono::milliseconds(self->state.config.poll_ms),
                     messages::poll_atom_v);
}

static messages::node_status status_of(const worker_link& link) {
  messages::node_status s;
  s.address = link.address;
  s.name = link.info.name;
  s.state = link.state;
  s.error = link.error;
  s.queue_depth = link.last.queue_depth;
  s.running = link.last.running;
  s.max_batch_size = link.info.max_batch_size;
  s.in_flight = link.in_flight;
  s.routed = link.routed;
  s.failed_over = link.failed_over;
  s.rss_bytes = link.last.rss_bytes;
  s.gpu_available = link.last.gpu_available;
  s.gpu_allocated_mb = link.last.gpu_allocated_mb;
  s.gpu_reserved_mb = link.last.gpu_reserved_mb;
  if (link.last.model.loaded)
    s.model = link.last.model.path;
  for (const auto& item : link.last.model.resident)
    if (item.kind == "adapter")
      s.adapters.push_back(item.path);
  s.budget_free_bytes = link.seen ? budget_free(link.last) : std::numeric_limits<uint64_t>::max();
  if (link.seen)
    s.last_seen_ms_ago =
        std::chrono::duration<double, std::milli>(clock_type::now() - link.last_seen).count();
  s.reconnects = link.reconnects;
  return s;
}

messages::health_report health_of(router_self self) {
  const auto& st = self->state;
  messages::health_report r;
  r.role = "router";
  r.timestamp = local_timestamp();
  r.uptime_s = std::chrono::duration<double>(clock_type::now() - st.started).count();
  r.rss_bytes = model::read_memory_figures().rss_bytes;
  r.requests_served = st.served;
  r.requests_failed = st.failed;
  bool any_up = false;
  for (const auto& [address, link] : st.links) {
    r.nodes.push_back(status_of(link));
    if (link.state != link_state::up)
      continue;
    any_up = true;
    r.queue_depth += link.last.queue_depth;
    r.running += link.last.running;
    r.active_jobs += link.last.active_jobs;
    r.gpu_available = r.gpu_available || link.last.gpu_available;
    r.gpu_allocated_mb += link.last.gpu_allocated_mb;
    r.gpu_reserved_mb += link.last.gpu_reserved_mb;
  }
  r.status = any_up ? "healthy" : "degraded";
  return r;
}

}  // namespace adapterd::actors::router
