#pragma once
// The router's questions that are not generations: those any worker can answer go to the
// least loaded one; cleanup, adapters and jobs are gathered from every worker that is up.
#include <chrono>
#include <memory>
#include <tuple>
#include <vector>

#include "actors/cluster/router_state.hpp"
#include "actors/error_mapping.hpp"

namespace adapterd::actors::router {

// The up worker with the least load, for questions any worker can answer.
inline worker_link* any_worker(router_self self) {
  worker_link* best = nullptr;
  for (auto& [address, link] : self->state.links)
    if (link.state == link_state::up && (!best || load_of(link) < load_of(*best)))
      best = &link;
  return best;
}

// Questions any worker can answer go to the least loaded one, which answers the asker.
template <class Reply, class Atom, class Request>
caf::result<Reply> to_any_worker(router_self self, Atom atom, Request req) {
  if (!from_this_node(self))
    return not_local();
  auto* w = any_worker(self);
  if (!w)
    return make_failure(messages::errc::unavailable, "no worker is up");
  return self->delegate(w->handle, atom, std::move(req));
}

inline std::vector<worker_link*> up_workers(router_self self) {
  std::vector<worker_link*> out;
  for (auto& [address, link] : self->state.links)
    if (link.state == link_state::up)
      out.push_back(&link);
  return out;
}

// Sends `req` to each of `targets` (answers within `timeout`), starting from `total`: `merge(total,
// one, worker name)` takes each answer and `fail(total, failure, worker name)` each failure; once
// all have answered, `done(total, answered)` makes the reply.
template <class Reply, class Atom, class Request, class Merge, class Fail, class Done>
caf::result<Reply> gather_from_workers(router_self self, const std::vector<worker_link*>& targets,
                                       std::chrono::seconds timeout, Reply total, Atom atom,
                                       const Request& req, Merge merge, Fail fail, Done done) {
  if (targets.empty())
    return make_failure(messages::errc::unavailable, "no worker is up");
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

/// Sends the cleanup to every worker that is up, or to the one named, and sums the answers.
caf::result<messages::cleanup_reply> fan_out_cleanup(router_self self,
                                                     const messages::cleanup_request& req);
/// A list gathers every worker's adapters; a load or unload goes to all of them. The answer
/// lists each adapter with the worker that holds it.
caf::result<messages::adapter_reply> fan_out_adapters(router_self self,
                                                      const messages::adapter_request& req);
/// A list gathers every worker's jobs; a get or cancel goes to all, and the one that has
/// the job answers.
caf::result<messages::job_list> fan_out_jobs(router_self self, const messages::job_request& req);

/// How the router answers an envelope call (messages/calls.hpp): by default the least
/// loaded worker answers it; calls whose answer lives on every worker are gathered.
template <class Request>
struct router_call {
  static auto handler(router_self self) {
    using atom = typename messages::call_atom<Request>::type;
    using reply = typename messages::call_traits<Request>::reply;
    return [self](atom a, Request& req) -> caf::result<reply> {
      return to_any_worker<reply>(self, a, std::move(req));
    };
  }
};

template <class Request, class Reply, class Atom,
          caf::result<Reply> (*gather)(router_self, const Request&)>
struct gathered_call {
  static auto handler(router_self self) {
    return [self](Atom, const Request& req) -> caf::result<Reply> {
      if (!from_this_node(self))
        return not_local();
      return gather(self, req);
    };
  }
};

template <>
struct router_call<messages::cleanup_request>
    : gathered_call<messages::cleanup_request, messages::cleanup_reply, messages::cleanup_atom,
                    fan_out_cleanup> {};
template <>
struct router_call<messages::adapter_request>
    : gathered_call<messages::adapter_request, messages::adapter_reply, messages::adapters_atom,
                    fan_out_adapters> {};
template <>
struct router_call<messages::job_request>
    : gathered_call<messages::job_request, messages::job_list, messages::jobs_atom, fan_out_jobs> {
};

/// The console: without a node, the workers' list (a router keeps no history of its own);
/// with one, that worker's own feed.
caf::result<messages::console_feed> console_of(router_self self,
                                               const messages::console_request& req);

template <>
struct router_call<messages::console_request>
    : gathered_call<messages::console_request, messages::console_feed, messages::console_atom,
                    console_of> {};

template <class... Requests>
auto router_calls(router_self self, messages::call_list<Requests...>) {
  return std::make_tuple(router_call<Requests>::handler(self)...);
}

}  // namespace adapterd::actors::router
