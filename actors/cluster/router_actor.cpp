// Not split yet (775 lines): it holds four jobs (links and dialling, dispatch and failover,
// status polling, fan-out). Issue 15 moves them into actors/cluster/ as separate files;
// splitting them here, inside the hardening change, would have mixed a move with fixes.
#include "actors/cluster/router_actor.hpp"

#include <algorithm>
#include <chrono>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "caf/send.hpp"

#include "actors/cluster/node_auth.hpp"
#include "actors/cluster/node_dial.hpp"
#include "actors/core/route_policy.hpp"
#include "actors/core/timestamp.hpp"
#include "actors/error_mapping.hpp"
#include "actors/handler_firewall.hpp"
#include "model/memory_stats.hpp"

namespace adapterd::actors {

namespace {

using clock_type = std::chrono::steady_clock;
using messages::errc;

/// One worker as this router knows it.
struct worker_link {
  std::string address;
  std::string state = "connecting";  // connecting | up | down | refused
  std::string error;
  messages::worker_actor handle;
  caf::node_id node;
  messages::node_info info;
  messages::health_report last;  // its latest status
  bool seen = false;
  clock_type::time_point last_seen;
  std::set<std::string> held;  // weights it holds: resident paths, and paths it served since
  uint32_t in_flight = 0;
  uint64_t routed = 0, failed_over = 0;
  uint32_t reconnects = 0;
  bool dialing = false;
  std::chrono::milliseconds backoff{250};
  uint32_t missed_polls = 0;  // status polls unanswered in a row: a silent (partitioned) worker
};

/// A request this router has taken and not yet answered.
struct routed_request {
  messages::generate_request req;
  clock_type::time_point deadline;  // the request's timeout_s (or --request-timeout) from arrival
  caf::typed_response_promise<messages::generate_reply> rp;
  messages::chunk_sink requester;  // where streamed text goes
  std::string address;   // the worker serving it now
  uint32_t attempt = 0;
  bool streamed = false;
  std::set<std::string> tried;
  messages::failure last_failure{errc::unavailable, "no worker is up"};
};

}  // namespace

struct router_state {
  static inline const char* name = "router";
  router_state() = default;  // non-aggregate: CAF 0.17's C++20 state trap

  router_config config;
  std::map<std::string, worker_link> links;  // by address
  std::unordered_map<uint64_t, routed_request> requests;  // by arrival_seq
  std::map<std::string, uint64_t> weight_bytes;  // path -> bytes, as any worker reported it
  // Requests that found no worker up while one was reconnecting: they wait for it (within
  // their deadline and reconnect_wait) instead of failing at once.
  std::map<uint64_t, clock_type::time_point> parked;  // seq -> when it stops waiting
  uint64_t served = 0, failed = 0;
  clock_type::time_point started = clock_type::now();
};

namespace {

using self_ptr = messages::router_actor::stateful_pointer<router_state>;

bool from_this_node(self_ptr self) {
  const auto& sender = self->current_sender();
  return sender && sender->node() == self->node();
}

bool from_self(self_ptr self) {
  return self->current_sender() == caf::actor_cast<caf::strong_actor_ptr>(self);
}

caf::error not_local() {
  return make_failure(errc::unauthorized, "only this node's own actors may ask the router");
}

// A request names weights as the client wrote them; workers report resolved paths.
// Whether a resolved `path` a worker reported is the one a client `requested`: the same, or
// ending in it at a '/' boundary.
bool names_path(const std::string& path, const std::string& requested) {
  auto want = requested.rfind("./", 0) == 0 ? requested.substr(2) : requested;
  return path == want || (path.size() > want.size() && path.compare(path.size() - want.size(), want.size(), want) == 0
                          && path[path.size() - want.size() - 1] == '/');
}

bool holds(const worker_link& link, const std::string& requested) {
  if (requested.empty())
    return true;
  return std::any_of(link.held.begin(), link.held.end(), [&](const auto& path) { return names_path(path, requested); });
}

uint64_t known_bytes(const router_state& st, const std::string& requested) {
  for (const auto& [path, bytes] : st.weight_bytes)
    if (names_path(path, requested))
      return bytes;
  return 0;
}

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

void finish(self_ptr self, uint64_t seq, caf::expected<messages::generate_reply> outcome);
void dial(self_ptr self, const std::string& address);
void retry_parked(self_ptr self, bool expired_only);

constexpr auto reconnect_wait = std::chrono::seconds(5);

// Sends request `seq` to the best worker it has not tried, or answers it with the last
// failure when none is left.
void dispatch(self_ptr self, uint64_t seq) {
  auto& st = self->state;
  auto& r = st.requests.at(seq);
  std::vector<route_candidate> candidates;
  std::vector<worker_link*> order;
  for (auto& [address, link] : st.links) {
    route_candidate c;
    c.up = link.state == "up";
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
  bool none_up = std::none_of(candidates.begin(), candidates.end(), [](const auto& c) { return c.up; });
  // Down and connecting links are being redialled; refused ones are not.
  bool reconnecting = std::any_of(st.links.begin(), st.links.end(), [](const auto& l) {
    return l.second.state == "down" || l.second.state == "connecting";
  });
  if (!pick && none_up && reconnecting && !st.parked.count(seq)) {
    // A link that dropped (a restart, a lost connection) usually comes back in well under
    // a second: wait for it rather than fail. A worker that comes up retries the request.
    st.parked[seq] = std::min(r.deadline, clock_type::now() + reconnect_wait);
    r.tried.clear();
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
  auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(r.deadline - clock_type::now());
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
  spdlog::debug("router {} -> {} (load {}, attempt {})", r.req.request_id, link.address, candidates[*pick].load, attempt);
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
          if (lit != self->state.links.end() && lit->second.state == "up")
            self->send(lit->second.handle, messages::cancel_atom_v, r.req.request_id);
          spdlog::warn("router {} timed out on {}", r.req.request_id, r.address);
          return finish(self, seq, make_failure(errc::timeout, "no answer within the request's deadline"));
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

// Parked requests go out again: all of them (a worker came up), or only those whose wait
// is over, which then get the failure they would have had.
void retry_parked(self_ptr self, bool expired_only) {
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
        finish(self, seq, make_failure(errc::timeout, "no worker came up within the request's deadline"));
      else
        finish(self, seq, make_failure(errc::unavailable, "no worker is up (" + std::to_string(st.links.size())
                                                            + " known, none came back within 5 s)"));
      continue;
    }
    dispatch(self, seq);
  }
}

void finish(self_ptr self, uint64_t seq, caf::expected<messages::generate_reply> outcome) {
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

void schedule_redial(self_ptr self, worker_link& link) {
  link.dialing = false;
  self->delayed_send(self, link.backoff, messages::dial_atom_v, link.address);
  link.backoff = std::min(link.backoff * 2, std::chrono::milliseconds(5000));
}

void set_state(worker_link& link, std::string state, std::string error) {
  if (link.state != state || link.error != error) {
    if (state == "up")
      spdlog::info("router: worker {} ({}) is up", link.address, link.info.name);
    else
      spdlog::warn("router: worker {} is {}: {}", link.address, state, error);
  }
  link.state = std::move(state);
  link.error = std::move(error);
}

// The handshake: the worker proves the secret over our nonce, we prove it over its nonce.
void handshake(self_ptr self, const std::string& address, messages::worker_actor handle) {
  auto nonce = make_nonce();
  self->request(handle, std::chrono::seconds(10), messages::hello_atom_v, nonce)
    .then(
      [self, address, handle, nonce](const messages::node_hello& hello) {
        auto& link = self->state.links[address];
        const auto& secret = self->state.config.secret;
        if (!check_proof(secret, "worker", nonce, hello.proof)) {
          set_state(link, "refused", "the worker does not know the cluster secret");
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
              set_state(link, "up", "");
              retry_parked(self, false);
              self->monitor(handle);
            },
            [self, address](const caf::error& e) {
              auto& link = self->state.links[address];
              auto f = to_failure(e);
              set_state(link, f.code == errc::unauthorized ? "refused" : "down", f.message);
              schedule_redial(self, link);
            });
      },
      [self, address](const caf::error& e) {
        auto& link = self->state.links[address];
        set_state(link, "down", to_failure(e).message);
        schedule_redial(self, link);
      });
}

void dial(self_ptr self, const std::string& address) {
  auto& link = self->state.links[address];
  link.address = address;
  if (link.state == "up" || link.dialing)
    return;
  auto where = parse_node_address(address);
  if (!where) {
    set_state(link, "refused", "not a host:port address");
    return;
  }
  link.dialing = true;
  dial_node<messages::worker_actor>(
    self, *where, [self, address](messages::worker_actor handle) { handshake(self, address, std::move(handle)); },
    [self, address](const std::string& why) {
      auto& link = self->state.links[address];
      set_state(link, link.state == "refused" ? "refused" : "down", "cannot connect: " + why);
      schedule_redial(self, link);
    });
}

void worker_went_away(self_ptr self, worker_link& link, const std::string& why) {
  set_state(link, "down", why);
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
    finish(self, seq, make_failure(errc::worker_lost, "worker " + link.address + " went away after it had streamed part of the answer"));
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

void absorb_status(self_ptr self, worker_link& link, messages::health_report report) {
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

void poll(self_ptr self) {
  for (auto& [address, link] : self->state.links) {
    if (link.state != "up")
      continue;
    auto handle = link.handle;
    self->request(link.handle, poll_timeout, messages::health_atom_v)
      .then(
        [self, address = address, handle](messages::health_report& report) {
          auto it = self->state.links.find(address);
          if (it != self->state.links.end() && it->second.state == "up" && it->second.handle == handle) {
            it->second.missed_polls = 0;
            absorb_status(self, it->second, std::move(report));
          }
        },
        [self, address = address, handle](const caf::error& e) {
          spdlog::debug("router: no status from {}: {}", address, caf::to_string(e));
          auto it = self->state.links.find(address);
          if (it == self->state.links.end() || it->second.state != "up" || it->second.handle != handle)
            return;
          // A partition sends no FIN or RST: silence is the only sign. Its requests move on.
          if (++it->second.missed_polls >= max_missed_polls)
            worker_went_away(self, it->second, "silent: " + std::to_string(it->second.missed_polls)
                                                 + " status polls unanswered");
        });
  }
  retry_parked(self, true);
  self->delayed_send(self, std::chrono::milliseconds(self->state.config.poll_ms), messages::poll_atom_v);
}

messages::node_status status_of(const worker_link& link) {
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
    s.last_seen_ms_ago = std::chrono::duration<double, std::milli>(clock_type::now() - link.last_seen).count();
  s.reconnects = link.reconnects;
  return s;
}

messages::health_report health_of(self_ptr self) {
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
    if (link.state != "up")
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

// The up worker with the least load, for questions any worker can answer.
worker_link* any_worker(self_ptr self) {
  worker_link* best = nullptr;
  for (auto& [address, link] : self->state.links)
    if (link.state == "up" && (!best || load_of(link) < load_of(*best)))
      best = &link;
  return best;
}

// Questions any worker can answer go to the least loaded one, which answers the asker.
template <class Reply, class Atom, class Request>
caf::result<Reply> to_any_worker(self_ptr self, Atom atom, Request req) {
  if (!from_this_node(self))
    return not_local();
  auto* w = any_worker(self);
  if (!w)
    return make_failure(errc::unavailable, "no worker is up");
  return self->delegate(w->handle, atom, std::move(req));
}

std::vector<worker_link*> up_workers(self_ptr self) {
  std::vector<worker_link*> out;
  for (auto& [address, link] : self->state.links)
    if (link.state == "up")
      out.push_back(&link);
  return out;
}

// Sends `req` to each of `targets` (answers within `timeout`), starting from `total`: `merge(total, one, worker name)`
// takes each answer and `fail(total, failure, worker name)` each failure; once all have
// answered, `done(total, answered)` makes the reply.
template <class Reply, class Atom, class Request, class Merge, class Fail, class Done>
caf::result<Reply> gather_from_workers(self_ptr self, const std::vector<worker_link*>& targets,
                                       std::chrono::seconds timeout, Reply total, Atom atom, const Request& req,
                                       Merge merge, Fail fail, Done done) {
  if (targets.empty())
    return make_failure(errc::unavailable, "no worker is up");
  struct gathering {
    caf::typed_response_promise<Reply> rp;
    Reply total;
    size_t waiting = 0, answered = 0;
  };
  auto g = std::make_shared<gathering>();
  g->rp = self->make_response_promise<Reply>();
  g->total = std::move(total);
  g->waiting = targets.size();
  auto finish_one = [g, done] {
    if (--g->waiting > 0)
      return;
    auto reply = done(g->total, g->answered);
    if (reply)
      g->rp.deliver(std::move(*reply));
    else
      g->rp.deliver(reply.error());
  };
  for (auto* link : targets) {
    auto name = link->info.name.empty() ? link->address : link->info.name;
    self->request(link->handle, timeout, atom, req)
      .then(
        [g, name, merge, finish_one](Reply& one) {
          ++g->answered;
          merge(g->total, std::move(one), name);
          finish_one();
        },
        [g, name, fail, finish_one](const caf::error& e) {
          fail(g->total, to_failure(e), name);
          finish_one();
        });
  }
  return g->rp;
}

// Sends the cleanup to every worker that is up, or to the one named, and sums the answers.
caf::result<messages::cleanup_reply> fan_out_cleanup(self_ptr self, const messages::cleanup_request& req) {
  std::vector<worker_link*> targets;
  for (auto& [address, link] : self->state.links)
    if (req.node.empty() || req.node == address || req.node == link.info.name) {
      if (!req.node.empty() && link.state != "up")
        return make_failure(errc::unavailable, "worker " + req.node + " is " + link.state);
      if (link.state == "up")
        targets.push_back(&link);
    }
  if (targets.empty() && !req.node.empty())
    return make_failure(errc::bad_request, "no worker is named " + req.node);
  messages::cleanup_reply start;
  start.level = req.level;
  auto merge = [](messages::cleanup_reply& t, messages::cleanup_reply one, const std::string& name) {
    t.gpu_available = t.gpu_available || one.gpu_available;
    t.gpu_allocated_mb += one.gpu_allocated_mb;
    t.gpu_reserved_mb += one.gpu_reserved_mb;
    t.rss_before_bytes += one.rss_before_bytes;
    t.rss_after_bytes += one.rss_after_bytes;
    t.model_unloaded = t.model_unloaded || one.model_unloaded;
    t.freed.adapters += one.freed.adapters;
    t.freed.adapter_bytes += one.freed.adapter_bytes;
    t.freed.models += one.freed.models;
    t.freed.model_bytes += one.freed.model_bytes;
    one.node = name;
    t.nodes.push_back(std::move(one));
  };
  auto fail = [](messages::cleanup_reply& t, const messages::failure& f, const std::string& name) {
    messages::cleanup_reply one;
    one.node = name;
    one.status = "error";
    one.error = f.message;
    t.nodes.push_back(std::move(one));
  };
  auto done = [](messages::cleanup_reply& t, size_t answered) -> caf::expected<messages::cleanup_reply> {
    t.status = answered == t.nodes.size() ? "success" : "partial";
    t.message = "Memory cleaned up on " + std::to_string(answered) + " of " + std::to_string(t.nodes.size())
                + " workers";
    return std::move(t);
  };
  return gather_from_workers(self, targets, std::chrono::seconds(120), std::move(start), messages::cleanup_atom_v, req, merge, fail, done);
}

// Adapters live on workers: a list gathers every worker's, a load or unload goes to all of
// them. The answer lists each adapter with the worker that holds it.
caf::result<messages::adapter_reply> fan_out_adapters(self_ptr self, const messages::adapter_request& req) {
  auto merge = [](messages::adapter_reply& total, messages::adapter_reply one, const std::string& name) {
    if (total.default_model.empty())
      total.default_model = one.default_model;
    for (auto& m : one.models)
      if (std::find(total.models.begin(), total.models.end(), m) == total.models.end())
        total.models.push_back(m);
    for (auto& a : one.adapters) {
      a.node = name;
      total.adapters.push_back(std::move(a));
    }
  };
  // Every worker failed: the first one's reason.
  auto failure = std::make_shared<std::optional<messages::failure>>();
  auto fail = [failure](messages::adapter_reply&, const messages::failure& f, const std::string&) {
    if (!*failure)
      *failure = f;
  };
  auto done = [failure](messages::adapter_reply& total, size_t answered) -> caf::expected<messages::adapter_reply> {
    if (answered == 0 && *failure)
      return make_failure((*failure)->code, (*failure)->message);
    return std::move(total);
  };
  return gather_from_workers(self, up_workers(self), std::chrono::seconds(120), messages::adapter_reply{}, messages::adapters_atom_v, req,
                             merge, fail, done);
}

// Jobs live on workers: a list gathers every worker's; a get or cancel goes to all of
// them and the worker that has the job answers.
caf::result<messages::job_list> fan_out_jobs(self_ptr self, const messages::job_request& req) {
  auto merge = [](messages::job_list& total, messages::job_list one, const std::string&) {
    for (auto& j : one.jobs)
      total.jobs.push_back(std::move(j));
  };
  auto fail = [](messages::job_list&, const messages::failure&, const std::string&) {};  // not there
  auto done = [req](messages::job_list& total, size_t) -> caf::expected<messages::job_list> {
    if (req.action != "list" && total.jobs.empty())
      return make_failure(errc::job_not_found, "no training job '" + req.id + "'");
    return std::move(total);
  };
  return gather_from_workers(self, up_workers(self), std::chrono::seconds(60), messages::job_list{}, messages::jobs_atom_v, req, merge,
                             fail, done);
}

messages::router_actor::behavior_type router_behavior(self_ptr self, router_config config) {
  self->state.config = std::move(config);
  self->set_down_handler([self](const caf::down_msg& down) {
    for (auto& [address, link] : self->state.links)
      if (link.handle && link.handle.address() == down.source)
        return worker_went_away(self, link, "connection lost (" + caf::to_string(down.reason) + ")");
  });
  for (const auto& address : self->state.config.workers)
    dial(self, address);
  self->send(self, messages::poll_atom_v);
  return guarded_behavior<messages::router_actor::behavior_type>(
    "router",
    [=](messages::generate_atom, messages::generate_request& req) -> caf::result<messages::generate_reply> {
      if (!from_this_node(self))
        return not_local();
      // Read the sender first: making the response promise takes it from the message.
      auto requester = caf::actor_cast<messages::chunk_sink>(self->current_sender());
      auto seq = req.arrival_seq;
      routed_request r;
      auto seconds = req.timeout_s > 0 ? req.timeout_s : static_cast<double>(self->state.config.request_timeout_s);
      r.deadline = clock_type::now() + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(seconds));
      r.req = std::move(req);
      r.requester = requester;
      r.rp = self->make_response_promise<messages::generate_reply>();
      auto rp = r.rp;
      self->state.requests[seq] = std::move(r);
      dispatch(self, seq);
      return rp;
    },
    [=](messages::cancel_atom, const std::string& id) {
      if (!from_this_node(self))
        return;
      for (auto& [seq, r] : self->state.requests)
        if (r.req.request_id == id) {
          auto it = self->state.links.find(r.address);
          if (it != self->state.links.end() && it->second.state == "up")
            self->send(it->second.handle, messages::cancel_atom_v, id);
        }
    },
    [=](messages::cleanup_atom, const messages::cleanup_request& req) -> caf::result<messages::cleanup_reply> {
      if (!from_this_node(self))
        return not_local();
      return fan_out_cleanup(self, req);
    },
    [=](messages::health_atom) -> caf::result<messages::health_report> {
      if (!from_this_node(self))
        return not_local();
      return health_of(self);
    },
    [=](messages::tokenize_atom, messages::tokenize_request& req) -> caf::result<messages::tokenize_reply> {
      return to_any_worker<messages::tokenize_reply>(self, messages::tokenize_atom_v, std::move(req));
    },
    [=](messages::detokenize_atom, messages::detokenize_request& req) -> caf::result<messages::detokenize_reply> {
      return to_any_worker<messages::detokenize_reply>(self, messages::detokenize_atom_v, std::move(req));
    },
    [=](messages::adapters_atom, const messages::adapter_request& req) -> caf::result<messages::adapter_reply> {
      if (!from_this_node(self))
        return not_local();
      return fan_out_adapters(self, req);
    },
    [=](messages::train_atom, messages::train_request& req) -> caf::result<messages::job_status> {
      return to_any_worker<messages::job_status>(self, messages::train_atom_v, std::move(req));
    },
    [=](messages::jobs_atom, const messages::job_request& req) -> caf::result<messages::job_list> {
      if (!from_this_node(self))
        return not_local();
      return fan_out_jobs(self, req);
    },
    [=](messages::chunk_atom, messages::stream_chunk& c) {
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
    },
    [=](messages::join_atom, const messages::join_request& req) -> caf::result<std::string> {
      if (!check_proof(self->state.config.secret, "join", req.address, req.proof)) {
        spdlog::warn("router refused a join from {}: wrong cluster secret", req.address);
        return make_failure(errc::unauthorized, "wrong cluster secret");
      }
      if (!parse_node_address(req.address))
        return make_failure(errc::bad_request, "'" + req.address + "' is not a host:port address");
      spdlog::info("router: worker {} asks to join", req.address);
      auto& link = self->state.links[req.address];
      link.address = req.address;
      if (link.state != "up") {
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
    },
    [=](messages::dial_atom, const std::string& address) {
      if (from_self(self))
        dial(self, address);
    },
    [=](messages::poll_atom) {
      if (from_self(self))
        poll(self);
    }
  );
}

}  // namespace

messages::router_actor spawn_router(caf::actor_system& sys, router_config config) {
  return sys.spawn(router_behavior, std::move(config));
}

}  // namespace adapterd::actors
