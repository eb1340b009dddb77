#include "actors/http_actor.hpp"

#include <unordered_map>

#include "caf/send.hpp"

#include "actors/error_mapping.hpp"
#include "actors/handler_firewall.hpp"

namespace adapterd::actors {

struct http_state {
  static inline const char* name = "http";
  http_state() = default;  // non-aggregate: CAF 0.17's C++20 state trap

  http_targets targets;
  uint64_t arrivals = 0;
  // arrival_seq -> its connection. Not the request id: two clients may send the same
  // X-Request-Id, and neither may see the other's text.
  std::unordered_map<uint64_t, chunk_fn> streams;
};

namespace {

// Forwards `args` to `target` and completes `done` with the answer or the failure. No
// timeout here: CAF 0.17 keeps a request's timeout entry until it expires, so long
// timeouts pile up per request; the HTTP session bounds the client's wait instead, and a
// dead target answers at once with an error.
template <class Reply, class Done, class Target, class... Ts>
void forward(http_actor::stateful_pointer<http_state> self, const Target& target, Done done,
             Ts&&... args) {
  self->request(target, caf::infinite, std::forward<Ts>(args)...)
    .then([done](Reply& r) { done(std::move(r)); },
          [done](const caf::error& e) { done(to_failure(e)); });
}

// The service that owns a call, as messages/calls.hpp names it.
template <class Request>
auto target_of(const http_targets& targets) {
  constexpr auto owner = messages::call_traits<Request>::owner;
  if constexpr (owner == messages::service::cleanup)
    return targets.cleanup;
  else if constexpr (owner == messages::service::catalog)
    return targets.catalog;
  else if constexpr (owner == messages::service::training)
    return targets.training;
  else
    return targets.console;
}

class actor_backend final : public http::backend {
public:
  explicit actor_backend(http_actor actor) : actor_(std::move(actor)) {}
  void generate(messages::generate_request req, chunk_fn on_chunk, generate_done done) override {
    caf::anon_send(actor_, messages::generate_atom_v, std::move(req), std::move(on_chunk), std::move(done));
  }
  void cancel(std::string request_id) override {
    caf::anon_send(actor_, messages::cancel_atom_v, std::move(request_id));
  }
  void health(health_done done) override {
    caf::anon_send(actor_, messages::health_atom_v, std::move(done));
  }
  void call(http::api_call c) override { caf::anon_send(actor_, std::move(c)); }

 private:
  http_actor actor_;
};

http_actor::behavior_type http_behavior(http_actor::stateful_pointer<http_state> self,
                                        http_targets targets) {
  self->state.targets = std::move(targets);
  return guarded_behavior<http_actor::behavior_type>(
      "http",
      [=](messages::generate_atom, messages::generate_request& req, chunk_fn& on_chunk,
          generate_done& done) {
        req.arrival_seq = ++self->state.arrivals;
        if (!req.stream) {
          forward<messages::generate_reply>(self, self->state.targets.generation, std::move(done),
                                            messages::generate_atom_v, std::move(req));
          return;
        }
        // The gpu-owner (or router) sends the text to this actor (the requester) before its reply.
        auto seq = req.arrival_seq;
        self->state.streams[seq] = std::move(on_chunk);
        generate_done finished =
            [self, seq, done = std::move(done)](http::outcome<messages::generate_reply> r) {
              self->state.streams.erase(seq);
              done(std::move(r));
            };
        forward<messages::generate_reply>(self, self->state.targets.generation, std::move(finished),
                                          messages::generate_atom_v, std::move(req));
      },
      [=](messages::chunk_atom, messages::stream_chunk& c) {
        auto it = self->state.streams.find(c.arrival_seq);
        if (it != self->state.streams.end())
          it->second(std::move(c));
      },
      [=](messages::cancel_atom, std::string& id) {
        self->send(self->state.targets.generation, messages::cancel_atom_v, std::move(id));
      },
      [=](messages::health_atom, health_done& done) {
        forward<messages::health_report>(self, self->state.targets.health, std::move(done),
                                         messages::health_atom_v);
      },
      [=](http::api_call& c) {
        std::visit(
            [&](auto& pending) {
              using request = std::decay_t<decltype(pending.request)>;
              using atom = typename messages::call_atom<request>::type;
              forward<http::reply_of<request>>(self, target_of<request>(self->state.targets),
                                               std::move(pending.done), atom{},
                                               std::move(pending.request));
            },
            c);
      });
}

}  // namespace

http_actor spawn_http_actor(caf::actor_system& sys, http_targets targets) {
  return sys.spawn(http_behavior, std::move(targets));
}

std::unique_ptr<http::backend> make_actor_backend(http_actor actor) {
  return std::make_unique<actor_backend>(std::move(actor));
}

}  // namespace adapterd::actors
