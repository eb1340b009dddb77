#include "actors/node.hpp"

#include <chrono>

#include "caf/scoped_actor.hpp"
#include "caf/send.hpp"

#include "actors/error_mapping.hpp"
#include "actors/gpu_owner_actor.hpp"
#include "actors/http_actor.hpp"
#include "actors/janitor_actor.hpp"
#include "actors/monitor_actor.hpp"
#include "actors/supervisor_actor.hpp"
#include "http/server.hpp"

namespace adapterd::actors {

struct node::parts {
  caf::actor_system& sys;
  service_config config;
  messages::monitor_actor monitor;
  supervisor_actor supervisor;
  messages::janitor_actor janitor;
  messages::gpu_owner_actor gpu_owner;
  http_actor http;
  std::unique_ptr<http::backend> backend;
  std::unique_ptr<http::server> server;
};

node::node(caf::actor_system& sys, service_config config)
  : parts_(new parts{sys, std::move(config), {}, {}, {}, {}, {}, {}, {}}) {}

node::~node() { stop(); }

std::variant<uint16_t, std::string> node::start() {
  auto& p = *parts_;
  p.monitor = spawn_monitor(p.sys, p.config.policy);
  p.supervisor = spawn_supervisor(p.sys, p.config, p.monitor);
  p.janitor = spawn_janitor(p.sys, p.config, p.supervisor, p.monitor);
  scheduler_limits limits{p.config.max_batch_size, p.config.max_queue, p.config.max_prefill_tokens};
  p.gpu_owner = spawn_gpu_owner(p.sys, gpu_owner_config{p.supervisor, p.janitor, p.monitor, limits});
  p.http = spawn_http_actor(p.sys, http_targets{p.gpu_owner, p.janitor, p.monitor});
  if (p.config.preload) {
    caf::scoped_actor self{p.sys};
    std::string failure;
    self->request(p.supervisor, std::chrono::minutes(30), messages::acquire_atom_v,
                  acquire_request{"preload", "", "", false})
      .receive([](const model_lease&) {},
               [&](const caf::error& e) { failure = to_failure(e).message; });
    if (!failure.empty())
      return "cannot load the default model " + p.config.default_model + ": " + failure;
  }
  http::server_options opts;
  opts.host = p.config.host;
  opts.port = p.config.port;
  opts.io_threads = p.config.io_threads;
  opts.lim.max_new_tokens = p.config.max_new_tokens_limit;
  opts.lim.max_body_bytes = p.config.max_body_bytes;
  opts.lim.request_timeout_s = p.config.request_timeout_s;
  p.backend = make_actor_backend(p.http);
  p.server = std::make_unique<http::server>(opts, *p.backend);
  return p.server->start();
}

void node::stop() {
  auto& p = *parts_;
  // 1. No more network I/O. 2. The actors end (a late answer only queues a handler on the
  // stopped io_context). 3. Only then the server's io_context and sessions go away.
  if (p.server)
    p.server->stop();
  bool any = false;
  for (auto a : {caf::actor_cast<caf::actor>(p.http), caf::actor_cast<caf::actor>(p.gpu_owner),
                 caf::actor_cast<caf::actor>(p.janitor), caf::actor_cast<caf::actor>(p.supervisor),
                 caf::actor_cast<caf::actor>(p.monitor)})
    if (a) {
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
      any = true;
    }
  p.http = nullptr;
  p.gpu_owner = nullptr;
  p.janitor = nullptr;
  p.supervisor = nullptr;
  p.monitor = nullptr;
  if (any)
    p.sys.await_all_actors_done();
  p.server.reset();
  p.backend.reset();
}

}  // namespace adapterd::actors
