// The cluster protocol over a real middleman on loopback, in one process: a worker refuses
// strangers and nodes with the wrong secret; a router passes the handshake, routes a
// streamed request to the worker and relays its text. The worker's model actors are
// stand-ins here; tests/e2e/test_cluster.py runs real processes.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <optional>
#include <thread>

#include "caf/actor_system.hpp"
#include "caf/actor_system_config.hpp"
#include "caf/io/middleman.hpp"
#include "caf/scoped_actor.hpp"

#include "actors/cluster/node_auth.hpp"
#include "actors/cluster/router_actor.hpp"
#include "actors/cluster/worker_actor.hpp"
#include "actors/error_mapping.hpp"
#include "messages/type_ids.hpp"

using namespace adapterd;
using namespace std::chrono_literals;

namespace {

const std::string secret = "a-secret-of-some-length";

struct cluster_config : caf::actor_system_config {
  cluster_config() {
    add_message_types<caf::id_block::adapterd>();
    load<caf::io::middleman>();
    set("middleman.app-identifier", "adapterd");
    set("scheduler.max-threads", 2);
  }
};

messages::gpu_owner_actor::behavior_type echo_gpu_owner(messages::gpu_owner_actor::pointer self) {
  return {
    [=](messages::generate_atom, messages::generate_request& req) {
      auto sink = caf::actor_cast<messages::chunk_sink>(self->current_sender());
      if (req.stream)
        for (const char* piece : {"ec", "ho"}) {
          messages::stream_chunk c;
          c.request_id = req.request_id;
          c.text = piece;
          c.tokens = 1;
          c.arrival_seq = req.arrival_seq;
          self->send(sink, messages::chunk_atom_v, std::move(c));
        }
      messages::generate_reply r;
      r.request_id = req.request_id;
      r.generated_text = "echo";
      return r;
    },
    [](messages::cancel_atom, const std::string&) {},
    [](messages::step_atom) {},
    [](messages::train_atom, const messages::train_request&) -> caf::result<messages::job_status> {
      return actors::make_failure(messages::errc::bad_request, "no training here");
    },
    [](messages::jobs_atom, const messages::job_request&) { return messages::job_list{}; },
    [](messages::train_step_atom) {},
  };
}

// A worker that refuses every request with `code`: its budget is full, say, or it does
// not know the adapter.
messages::gpu_owner_actor::behavior_type refusing_gpu_owner(messages::gpu_owner_actor::pointer,
                                                            messages::errc code) {
  return {
    [code](messages::generate_atom, messages::generate_request&) -> caf::result<messages::generate_reply> {
      return actors::make_failure(code, "refused");
    },
    [](messages::cancel_atom, const std::string&) {},
    [](messages::step_atom) {},
    [](messages::train_atom, const messages::train_request&) -> caf::result<messages::job_status> {
      return actors::make_failure(messages::errc::bad_request, "no training here");
    },
    [](messages::jobs_atom, const messages::job_request&) { return messages::job_list{}; },
    [](messages::train_step_atom) {},
  };
}

// A model actor that answers too late: its node's worker actor is gone by then (`on_request`
// kills it), and the answer is a refusal the router would otherwise act on.
messages::gpu_owner_actor::behavior_type late_gpu_owner(messages::gpu_owner_actor::pointer,
                                                        std::function<void()> on_request) {
  return {
      [=](messages::generate_atom,
          messages::generate_request&) -> caf::result<messages::generate_reply> {
        on_request();
        std::this_thread::sleep_for(300ms);
        return actors::make_failure(messages::errc::unavailable, "too late");
      },
      [](messages::cancel_atom, const std::string&) {},
      [](messages::step_atom) {},
      [](messages::train_atom,
         const messages::train_request&) -> caf::result<messages::job_status> {
        return actors::make_failure(messages::errc::bad_request, "no training here");
      },
      [](messages::jobs_atom, const messages::job_request&) { return messages::job_list{}; },
      [](messages::train_step_atom) {},
  };
}

messages::janitor_actor::behavior_type fake_janitor() {
  return {
    [](messages::cleanup_atom, const messages::cleanup_request&) {
      messages::cleanup_reply r;
      r.status = "success";
      r.rss_after_bytes = 1 << 20;
      return r;
    },
    [](caf::tick_atom) {},
  };
}

messages::monitor_actor::behavior_type fake_monitor() {
  return {
      [](messages::report_atom, const messages::request_event&) {},
      [](messages::report_atom, const messages::model_state&) {},
      [](messages::report_atom, const messages::flush_event&) {},
      [](messages::report_atom, const messages::batch_state&) {},
      [](messages::report_atom, const messages::job_list&) {},
      [](messages::health_atom) {
        messages::health_report r;
        r.role = "worker";
        r.model.loaded = true;
        r.model.path = "/models/base";
        return r;
      },
      [](messages::console_atom, const messages::console_request&) {
        return messages::console_feed{};
      },
      [](caf::tick_atom) {},
  };
}

struct worker_node {
  cluster_config cfg;
  caf::actor_system sys{cfg};
  messages::worker_actor worker;
  uint16_t port = 0;

  explicit worker_node(std::string name = "w1", std::optional<messages::errc> refuse = std::nullopt,
                       uint16_t at_port = 0)
      : worker_node(std::move(name), at_port, [&](caf::actor_system& s) {
          return refuse ? s.spawn(refusing_gpu_owner, *refuse) : s.spawn(echo_gpu_owner);
        }) {}
  worker_node(std::string name, uint16_t at_port,
              const std::function<messages::gpu_owner_actor(caf::actor_system&)>& spawn_gpu_owner) {
    actors::worker_config wc;
    wc.name = std::move(name);
    wc.secret = secret;
    wc.max_batch_size = 4;
    wc.gpu_owner = spawn_gpu_owner(sys);
    wc.janitor = sys.spawn(fake_janitor);
    wc.monitor = sys.spawn(fake_monitor);
    worker = actors::spawn_worker(sys, wc);
    for (auto a : {caf::actor_cast<caf::actor>(wc.gpu_owner), caf::actor_cast<caf::actor>(wc.janitor),
                   caf::actor_cast<caf::actor>(wc.monitor), caf::actor_cast<caf::actor>(worker)})
      spawned.push_back(a);
    auto p = sys.middleman().publish(worker, at_port, "127.0.0.1", true);
    REQUIRE(p);
    port = *p;
  }
  ~worker_node() {
    for (auto a : spawned)
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
  std::vector<caf::actor> spawned;
};

messages::failure failure_of(const caf::error& e) { return actors::to_failure(e); }

template <class Reply, class... Ts>
bool refused(caf::scoped_actor& self, const messages::worker_actor& worker, Ts&&... xs) {
  bool out = false;
  self->request(worker, 5s, std::forward<Ts>(xs)...)
    .receive([](const Reply&) {},
             [&](const caf::error& e) { out = failure_of(e).code == messages::errc::unauthorized; });
  return out;
}

}  // namespace

TEST_CASE("a worker refuses nodes that did not prove the secret", "[cluster]") {
  worker_node w;
  cluster_config cfg;
  caf::actor_system stranger{cfg};
  auto remote = stranger.middleman().remote_actor<messages::worker_actor>("127.0.0.1", w.port);
  REQUIRE(remote);
  caf::scoped_actor self{stranger};
  CHECK(refused<messages::generate_reply>(self, *remote, messages::generate_atom_v, messages::generate_request{}));
  CHECK(refused<messages::health_report>(self, *remote, messages::health_atom_v));
  CHECK(refused<messages::cleanup_reply>(self, *remote, messages::cleanup_atom_v, messages::cleanup_request{}));

  // The wrong secret: the worker's proof does not check out, and ours is refused.
  auto nonce = actors::make_nonce();
  messages::node_hello hello;
  self->request(*remote, 5s, messages::hello_atom_v, nonce)
    .receive([&](const messages::node_hello& h) { hello = h; }, [](const caf::error&) { FAIL("no hello"); });
  CHECK_FALSE(actors::check_proof("not-the-secret-at-all", "worker", nonce, hello.proof));
  CHECK(actors::check_proof(secret, "worker", nonce, hello.proof));
  CHECK(refused<messages::node_info>(self, *remote, messages::auth_atom_v,
                                     actors::make_proof("not-the-secret-at-all", "router", hello.nonce)));
  CHECK(refused<messages::generate_reply>(self, *remote, messages::generate_atom_v, messages::generate_request{}));

  // The right secret, over a fresh nonce: now the worker serves this node.
  self->request(*remote, 5s, messages::hello_atom_v, actors::make_nonce())
    .receive([&](const messages::node_hello& h) { hello = h; }, [](const caf::error&) { FAIL("no hello"); });
  self->request(*remote, 5s, messages::auth_atom_v, actors::make_proof(secret, "router", hello.nonce))
    .receive([](const messages::node_info& info) { CHECK(info.name == "w1"); },
             [&](const caf::error& e) { FAIL(failure_of(e).message); });
  self->request(*remote, 5s, messages::generate_atom_v, messages::generate_request{})
    .receive([](const messages::generate_reply& r) { CHECK(r.generated_text == "echo"); },
             [&](const caf::error& e) { FAIL(failure_of(e).message); });
}

namespace {

messages::health_report router_health(caf::scoped_actor& self, const messages::router_actor& router) {
  messages::health_report out;
  self->request(router, 5s, messages::health_atom_v)
    .receive([&](messages::health_report& h) { out = std::move(h); }, [](const caf::error&) {});
  return out;
}

// Asks the router for its health until `pred` holds for its nodes (5 s at most).
template <class Pred>
std::vector<messages::node_status> wait_for_nodes(caf::scoped_actor& self, const messages::router_actor& router,
                                                  Pred pred) {
  std::vector<messages::node_status> nodes;
  for (int i = 0; i < 100; ++i) {
    nodes = router_health(self, router).nodes;
    if (pred(nodes))
      break;
    std::this_thread::sleep_for(50ms);
  }
  return nodes;
}

// The first node, once `pred` holds for it.
template <class Pred>
messages::node_status wait_for_node(caf::scoped_actor& self, const messages::router_actor& router, Pred pred) {
  auto nodes = wait_for_nodes(self, router, [&](const auto& ns) { return !ns.empty() && pred(ns.front()); });
  return nodes.empty() ? messages::node_status{} : nodes.front();
}

}  // namespace

TEST_CASE("a router routes to a worker it authenticated and relays streamed text", "[cluster]") {
  worker_node w;
  cluster_config cfg;
  caf::actor_system sys{cfg};
  auto router = actors::spawn_router(sys, actors::router_config{secret, {w.address()}, 50, 30});
  caf::scoped_actor self{sys};
  auto node = wait_for_node(self, router, [](const auto& n) {
    return n.state == messages::node_state::up && n.last_seen_ms_ago >= 0;
  });
  REQUIRE(node.state == messages::node_state::up);
  CHECK(node.name == "w1");
  CHECK(node.model == "/models/base");

  messages::generate_request req;
  req.request_id = "r1";
  req.stream = true;
  req.arrival_seq = 7;
  self->request(router, 5s, messages::generate_atom_v, req)
    .receive([](const messages::generate_reply& r) {
               CHECK(r.generated_text == "echo");
               CHECK(r.node == "w1");
             },
             [&](const caf::error& e) { FAIL(failure_of(e).message); });
  std::string streamed;
  for (int i = 0; i < 2; ++i)
    self->receive([&](messages::chunk_atom, const messages::stream_chunk& c) { streamed += c.text; },
                  caf::after(5s) >> [] { FAIL("no streamed text"); });
  CHECK(streamed == "echo");

  self->request(router, 5s, messages::cleanup_atom_v,
                messages::cleanup_request{"c", messages::cleanup_reason::manual,
                                          messages::cleanup_level::flush, ""})
      .receive(
          [](const messages::cleanup_reply& r) {
            CHECK(r.status == "success");
            REQUIRE(r.nodes.size() == 1);
            CHECK(r.nodes[0].node == "w1");
          },
          [&](const caf::error& e) { FAIL(failure_of(e).message); });
  caf::anon_send_exit(router, caf::exit_reason::user_shutdown);
}

TEST_CASE("a router with the wrong secret marks the worker refused and routes nothing there", "[cluster]") {
  worker_node w;
  cluster_config cfg;
  caf::actor_system sys{cfg};
  auto router = actors::spawn_router(sys, actors::router_config{"a-different-secret-entirely", {w.address()}, 50, 30});
  caf::scoped_actor self{sys};
  auto node = wait_for_node(self, router,
                            [](const auto& n) { return n.state == messages::node_state::refused; });
  CHECK(node.state == messages::node_state::refused);
  bool unavailable = false;
  self->request(router, 5s, messages::generate_atom_v, messages::generate_request{})
    .receive([](const messages::generate_reply&) {},
             [&](const caf::error& e) { unavailable = failure_of(e).code == messages::errc::unavailable; });
  CHECK(unavailable);
  caf::anon_send_exit(router, caf::exit_reason::user_shutdown);
}

TEST_CASE("a request a worker cannot serve moves to another worker", "[cluster]") {
  auto refusal = GENERATE(messages::errc::insufficient_memory, messages::errc::adapter_not_found,
                          messages::errc::unknown_model, messages::errc::overloaded);
  INFO(messages::to_string(refusal));
  worker_node full("full", refusal), roomy("roomy");
  cluster_config cfg;
  caf::actor_system sys{cfg};
  auto router = actors::spawn_router(sys, actors::router_config{secret, {full.address(), roomy.address()}, 50, 30});
  caf::scoped_actor self{sys};
  wait_for_nodes(self, router, [](const auto& nodes) {
    return std::count_if(nodes.begin(), nodes.end(),
                         [](const auto& n) { return n.state == messages::node_state::up; })
           == 2;
  });
  for (uint64_t seq = 1; seq <= 4; ++seq) {
    messages::generate_request req;
    req.arrival_seq = seq;
    self->request(router, 5s, messages::generate_atom_v, req)
      .receive([](const messages::generate_reply& r) { CHECK(r.node == "roomy"); },
               [&](const caf::error& e) { FAIL(failure_of(e).message); });
  }
  uint64_t tried_full = 0;
  for (const auto& n : router_health(self, router).nodes)
    if (n.name == "full")
      tried_full = n.routed;
  CHECK(tried_full >= 1);  // it was asked, said no, and the request went on
  caf::anon_send_exit(router, caf::exit_reason::user_shutdown);
}

TEST_CASE("a late answer from a worker that went away does not touch its request again",
          "[cluster]") {
  // The second worker's port is known but nothing listens there yet: the router redials it.
  uint16_t later_port = 0;
  {
    worker_node probe("probe");
    later_port = probe.port;
  }
  std::unique_ptr<worker_node> going;
  going = std::make_unique<worker_node>("going", 0, [&](caf::actor_system& s) {
    return s.spawn(late_gpu_owner,
                   [&] { caf::anon_send_exit(going->worker, caf::exit_reason::kill); });
  });
  cluster_config cfg;
  caf::actor_system sys{cfg};
  auto router = actors::spawn_router(
      sys, actors::router_config{
               secret, {going->address(), "127.0.0.1:" + std::to_string(later_port)}, 50, 30});
  caf::scoped_actor self{sys};
  wait_for_nodes(self, router, [](const auto& nodes) {
    return std::any_of(nodes.begin(), nodes.end(),
                       [](const auto& n) { return n.state == messages::node_state::up; });
  });
  messages::generate_request req;
  req.arrival_seq = 1;
  std::optional<messages::generate_reply> reply;
  std::string failure;
  std::thread later([&] {
    // Up after the request parked (its worker went away) and after the late refusal came.
    std::this_thread::sleep_for(600ms);
    worker_node comes("comes", std::nullopt, later_port);
    std::this_thread::sleep_for(3s);  // long enough to answer
  });
  self->request(router, 10s, messages::generate_atom_v, req)
      .receive([&](const messages::generate_reply& r) { reply = r; },
               [&](const caf::error& e) { failure = failure_of(e).message; });
  later.join();
  caf::anon_send_exit(router, caf::exit_reason::user_shutdown);
  INFO(failure);
  REQUIRE(reply);
  CHECK(reply->node == "comes");
}

TEST_CASE("a worker that goes away leaves the other workers' links alone", "[cluster]") {
  auto leaving = std::make_unique<worker_node>("leaving");
  worker_node staying("staying");
  cluster_config cfg;
  caf::actor_system sys{cfg};
  auto router = actors::spawn_router(
      sys, actors::router_config{secret, {leaving->address(), staying.address()}, 50, 30});
  caf::scoped_actor self{sys};
  auto up = [](const auto& n) { return n.state == messages::node_state::up; };
  wait_for_nodes(self, router, [&](const auto& nodes) {
    return std::count_if(nodes.begin(), nodes.end(), up) == 2;
  });
  for (uint64_t seq = 1; seq <= 4; ++seq) {
    messages::generate_request req;
    req.arrival_seq = seq;
    self->request(router, 5s, messages::generate_atom_v, req)
        .receive([](const messages::generate_reply&) {},
                 [&](const caf::error& e) { FAIL(failure_of(e).message); });
  }
  leaving.reset();
  auto nodes = wait_for_nodes(
      self, router, [&](const auto& ns) { return std::count_if(ns.begin(), ns.end(), up) == 1; });
  std::this_thread::sleep_for(500ms);
  nodes = router_health(self, router).nodes;
  caf::anon_send_exit(router, caf::exit_reason::user_shutdown);
  for (const auto& n : nodes)
    if (n.name == "staying") {
      CHECK(n.state == messages::node_state::up);
      CHECK(n.reconnects == 0);
    }
}
