#include "actors/node.hpp"

#include <chrono>
#include <filesystem>
#include <vector>

#include "caf/io/middleman.hpp"
#include "caf/openssl/publish.hpp"
#include "caf/scoped_actor.hpp"
#include "caf/send.hpp"

#include <spdlog/spdlog.h>

#include "actors/cluster/router_actor.hpp"
#include "actors/cluster/worker_actor.hpp"
#include "actors/error_mapping.hpp"
#include "actors/gpu_owner_actor.hpp"
#include "actors/http_actor.hpp"
#include "actors/janitor_actor.hpp"
#include "actors/monitor_actor.hpp"
#include "actors/supervisor_actor.hpp"
#include "actors/tokenizer_pool_actor.hpp"
#include "http/server.hpp"

namespace adapterd::actors {

struct node::parts {
  caf::actor_system& sys;
  service_config config;
  std::vector<caf::actor> actors;  // stopped in this order: the front first
  http_actor http;
  uint16_t node_port = 0;
  std::unique_ptr<http::backend> backend;
  std::unique_ptr<http::server> server;
};

node::node(caf::actor_system& sys, service_config config)
  : parts_(new parts{sys, std::move(config), {}, {}, 0, {}, {}}) {}

node::~node() { stop(); }

uint16_t node::node_port() const { return parts_->node_port; }

namespace {

template <class Handle>
void keep(std::vector<caf::actor>& actors, const Handle& h) {
  actors.push_back(caf::actor_cast<caf::actor>(h));
}

// The model-owning actors of a standalone or worker node, front first.
struct model_actors {
  messages::monitor_actor monitor;
  tokenizer_pool_actor tokenizers;
  supervisor_actor supervisor;
  messages::janitor_actor janitor;
  messages::gpu_owner_actor gpu_owner;
};

// Publishes a node's actor on its node port: over mutual TLS when the node has its
// certificates (never also in plain), in plain only in tests without them.
caf::expected<uint16_t> publish_node(caf::actor_system& sys, const service_config& c, const caf::actor& whom) {
  if (c.node_tls && sys.has_openssl_manager())
    return caf::openssl::publish(whom, c.node_port, c.node_host.c_str(), true);
  return sys.middleman().publish(whom, c.node_port, c.node_host.c_str(), true);
}

std::variant<model_actors, std::string> spawn_model_actors(caf::actor_system& sys, const service_config& c) {
  model_actors a;
  a.monitor = spawn_monitor(sys, c.policy, c.role);
  a.tokenizers = spawn_tokenizer_pool(sys, c.tokenizer_threads);
  a.supervisor = spawn_supervisor(sys, c, a.monitor, a.tokenizers);
  a.janitor = spawn_janitor(sys, c, a.supervisor, a.monitor);
  scheduler_limits limits;
  limits.max_batch_size = c.max_batch_size;
  limits.max_queue = c.max_queue;
  limits.max_prefill_tokens = c.max_prefill_tokens;
  limits.max_step_tokens = c.max_step_tokens;
  limits.default_model = std::filesystem::path(c.default_model).filename().string();
  training_settings training{c.default_model, c.model_roots, c.data_roots, c.trained_adapters_dir, c.train_share};
  a.gpu_owner = spawn_gpu_owner(sys, gpu_owner_config{a.supervisor, a.tokenizers, a.janitor, a.monitor, limits, training});
  if (c.preload) {
    caf::scoped_actor self{sys};
    std::string failure;
    self->request(a.supervisor, std::chrono::minutes(30), messages::acquire_atom_v,
                  acquire_request{"preload", "", "", false, false})
        .receive([](const model_lease&) {},
                 [&](const caf::error& e) { failure = to_failure(e).message; });
    if (!failure.empty()) {
      // Nobody keeps these: they end here (the monitor's sampling timer would keep it alive).
      for (const auto& actor :
           {caf::actor_cast<caf::actor>(a.gpu_owner), caf::actor_cast<caf::actor>(a.janitor),
            caf::actor_cast<caf::actor>(a.supervisor), caf::actor_cast<caf::actor>(a.tokenizers),
            caf::actor_cast<caf::actor>(a.monitor)})
        caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
      return "cannot load the default model " + c.default_model + ": " + failure;
    }
  }
  for (const auto& [id, path] : c.preload_adapters) {
    caf::scoped_actor self{sys};
    std::string failure;
    self->request(a.supervisor, std::chrono::minutes(30), messages::adapters_atom_v,
                  messages::adapter_request{"preload", messages::adapter_action::load, id, path})
        .receive([](const messages::adapter_reply&) {},
                 [&](const caf::error& e) { failure = to_failure(e).message; });
    // An adapter that does not fit this model (the config's demo adapters under another
    // --model) must not keep the server from starting: it is left out, loudly.
    if (!failure.empty())
      spdlog::warn("adapter '{}' ({}) is not registered: {}. Requests naming it are refused (adapter_not_found); to silence this, "
                   "drop it from --adapters (or the adapters= line of the config file)",
                   id, path, failure);
  }
  return a;
}

}  // namespace

std::variant<uint16_t, std::string> node::start(core_down_fn on_core_down) {
  auto& p = *parts_;
  const auto& c = p.config;
  http_targets targets;
  std::vector<watched_actor> core;
  if (c.role == node_role::router) {
    auto router = spawn_router(p.sys, router_config{c.node_secret, c.workers, c.node_poll_ms, c.request_timeout_s});
    keep(p.actors, router);
    core.push_back({"router", caf::actor_cast<caf::actor>(router)});
    targets = http_targets{router, router, router, router, router, router};
    if (c.node_port != 0) {
      auto port = publish_node(p.sys, c, caf::actor_cast<caf::actor>(router));
      if (!port)
        return "cannot take joins on " + c.node_host + ":" + std::to_string(c.node_port) + ": "
               + p.sys.render(port.error());
      p.node_port = *port;
    }
  } else {
    auto spawned = spawn_model_actors(p.sys, c);
    // Kept, so that stop() ends them (spawn_model_actors ends them itself when it fails).
    if (auto* a = std::get_if<model_actors>(&spawned)) {
      keep(p.actors, a->gpu_owner);
      keep(p.actors, a->janitor);
      keep(p.actors, a->supervisor);
      keep(p.actors, a->monitor);
      keep(p.actors, a->tokenizers);
      for (auto& [name, handle] : std::vector<std::pair<const char*, caf::actor>>{
             {"gpu-owner", caf::actor_cast<caf::actor>(a->gpu_owner)},
             {"janitor", caf::actor_cast<caf::actor>(a->janitor)},
             {"supervisor", caf::actor_cast<caf::actor>(a->supervisor)},
             {"monitor", caf::actor_cast<caf::actor>(a->monitor)},
             {"tokenizer pool", caf::actor_cast<caf::actor>(a->tokenizers)}})
        core.push_back({name, handle});
      targets = http_targets{a->gpu_owner,  a->janitor,   a->monitor,
                             a->supervisor, a->gpu_owner, a->monitor};
    } else {
      return std::get<std::string>(spawned);
    }
    if (c.role == node_role::worker) {
      auto& a = std::get<model_actors>(spawned);
      auto worker = spawn_worker(p.sys, worker_config{c.node_name, c.node_secret, c.advertise, c.join,
                                                      c.max_batch_size, c.max_queue, a.gpu_owner,
                                                      a.janitor, a.monitor, a.supervisor});
      p.actors.insert(p.actors.begin(), caf::actor_cast<caf::actor>(worker));
      core.push_back({"worker", caf::actor_cast<caf::actor>(worker)});
      auto port = publish_node(p.sys, c, caf::actor_cast<caf::actor>(worker));
      if (!port)
        return "cannot publish the worker on " + c.node_host + ":" + std::to_string(c.node_port)
               + ": " + p.sys.render(port.error());
      p.node_port = *port;
    }
  }
  p.http = spawn_http_actor(p.sys, targets);
  p.actors.insert(p.actors.begin(), caf::actor_cast<caf::actor>(p.http));
  core.push_back({"http", caf::actor_cast<caf::actor>(p.http)});
  if (on_core_down)  // first in line to stop, so that an orderly stop never looks like a failure
    p.actors.insert(p.actors.begin(), spawn_watchdog(p.sys, std::move(core), std::move(on_core_down)));
  http::server_options opts;
  opts.host = c.host;
  opts.port = c.port;
  opts.io_threads = c.io_threads;
  opts.max_connections = c.max_connections;
  opts.lim.max_new_tokens = c.max_new_tokens_limit;
  opts.lim.max_body_bytes = c.max_body_bytes;
  opts.lim.request_timeout_s = c.request_timeout_s;
  opts.lim.health_only = c.role == node_role::worker;
  opts.lim.api_keys = c.api_keys;
  opts.lim.admin_keys = c.admin_keys;
  p.backend = make_actor_backend(p.http);
  p.server = std::make_unique<http::server>(opts, *p.backend);
  return p.server->start();
}

void node::stop_taking() {
  if (parts_->server)
    parts_->server->stop_taking();
}

int node::drain(std::chrono::milliseconds grace) {
  return parts_->server ? parts_->server->drain(grace) : 0;
}

void node::stop() {
  auto& p = *parts_;
  // 1. No more network I/O. 2. The actors end (a late answer only queues a handler on the
  // stopped io_context). 3. Only then the server's io_context and sessions go away.
  if (p.server)
    p.server->stop();
  for (auto& a : p.actors)
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  bool any = !p.actors.empty();
  p.actors.clear();
  p.http = nullptr;
  if (any)
    p.sys.await_all_actors_done();
  p.server.reset();
  p.backend.reset();
}

}  // namespace adapterd::actors
