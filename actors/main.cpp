// adapterd: serve a model with LoRA adapters over HTTP (the seed's contract).
// Options: defaults < config file (config/adapterd.ini, or --config-file=) < environment
// (ADAPTERD_PORT=8111 for --port) < command line. Over 400 lines on purpose: the option
// table and its checks are the command line's one reference.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <thread>

#include <spdlog/spdlog.h>

#include "caf/actor_system.hpp"
#include "caf/openssl/manager.hpp"
#include "caf/actor_system_config.hpp"
#include "caf/io/middleman.hpp"

#include "actors/cluster/node_dial.hpp"
#include "actors/cluster/node_tls.hpp"
#include "actors/core/path_policy.hpp"
#include "actors/node.hpp"
#include "messages/type_ids.hpp"
#include "model/quant/weight_format.hpp"

namespace {

using adapterd::actors::cleanup_policy;

std::vector<std::string> split(const std::string& s, char separator) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, separator))
    if (!item.empty())
      out.push_back(item);
  return out;
}

class adapterd_config : public caf::actor_system_config {
public:
  std::string host = "127.0.0.1";
  uint16_t port = 8110;
  std::string model = "models/demo/fortune-llama";
  std::string model_roots = "models";
  std::string adapter_roots = "models";
  std::string device = "auto";
  std::string dtype = "auto";
  std::string weights = "auto";
  std::string model_weights;
  std::string kv_dtype = "auto";
  int32_t threads = 0;
  std::string policy = "flush";
  bool lazy_load = false;
  uint32_t max_new_tokens_limit = 512;
  uint64_t max_body_bytes = 1 << 20;
  uint32_t max_connections = 1024;
  uint32_t tokenizer_threads = 2;
  uint64_t gpu_budget_mb = 0;
  uint64_t cpu_budget_mb = 0;
  int64_t kv_reserve_tokens = 4096;
  std::string prefix_cache = "on";
  uint32_t max_models = 1;
  uint32_t idle_unload_after_s = 0;
  uint64_t fault_activation_limit_kb = 0;
  uint64_t flush_slack_mb = 8;
  uint32_t request_timeout_s = 600;
  uint32_t max_batch_size = 16;
  uint32_t max_queue = 256;
  int64_t max_prefill_tokens = 256;
  int64_t max_step_tokens = 0;
  std::string log_level = "info";
  std::string role = "standalone";
  std::string node_host = "127.0.0.1";
  uint16_t node_port = 0;
  std::string node_name;
  std::string node_secret_file;
  std::string node_cert;
  std::string node_key;
  std::string node_ca;
  std::string workers;
  std::string join;
  std::string advertise;
  uint32_t node_poll_ms = 500;
  std::string api_keys_file;
  std::string admin_keys_file;
  std::string adapters;
  uint32_t shutdown_grace_s = 30;
  std::string data_roots = "data:models";
  std::string trained_adapters_dir;
  double train_share = 0.25;

  adapterd_config() {
    opt_group{custom_options_, "global"}
        .add(host, "host", "address to listen on (default 127.0.0.1)")
        .add(port, "port,p", "HTTP port (default 8110; 0 picks a free one)")
        .add(model, "model,m", "directory of the default Hugging Face model")
        .add(model_roots, "model-roots",
             "':'-separated directories other base_models may come from")
        .add(adapter_roots, "adapter-roots", "':'-separated directories adapter_path must lie in")
        .add(device, "device", "auto | cpu | cuda")
        .add(
            dtype, "dtype",
            "compute dtype: auto (float32 on CPU, bfloat16 on CUDA) | float32 | bfloat16 | float16")
        .add(weights, "weights",
             "weight format of the CPU kernels: auto (f32) | f32 | bf16 | int8 (GGUF Q8_0 blocks) "
             "| q4 (Q4_0)")
        .add(model_weights, "model-weights",
             "','-separated MODEL=FORMAT: a weight format for that model (as base_model names "
             "it) instead of --weights")
        .add(kv_dtype, "kv-dtype",
             "KV cache type: auto (the compute dtype) | float32 | bfloat16 (half the memory)")
        .add(threads, "threads", "libtorch intra-op threads (0: one per core)")
        .add(policy, "cleanup-policy", "after each request: flush | unload | off")
        .add(lazy_load, "lazy-load", "load the default model on the first request, not at start-up")
        .add(max_new_tokens_limit, "max-new-tokens-limit",
             "largest max_new_tokens a request may ask")
        .add(max_body_bytes, "max-body-bytes", "largest request body in bytes")
        .add(max_connections, "max-connections", "open HTTP connections at once; more get 503")
        .add(tokenizer_threads, "tokenizer-threads",
             "threads that encode and decode text, off the model's")
        .add(gpu_budget_mb, "gpu-budget-mb",
             "memory budget for weights, adapters and KV on the GPU (0: none)")
        .add(cpu_budget_mb, "cpu-budget-mb",
             "the same for CPU models, and the host tier of GPU adapters (0: none)")
        .add(kv_reserve_tokens, "kv-reserve-tokens",
             "KV cache reserved for one sequence; caps prompt + output")
        .add(prefix_cache, "prefix-cache",
             "on | off: requests reuse the KV blocks of a prompt prefix computed before under the "
             "same "
             "adapter")
        .add(max_models, "max-models", "base models resident at once")
        .add(flush_slack_mb, "flush-slack-mb",
             "after-request flushes leave allocator caches under this alone")
        .add(idle_unload_after_s, "idle-unload-after",
             "unload a model unused for this many seconds (0: never)")
        .add(fault_activation_limit_kb, "fault-activation-limit-kb",
             "tests only: fail forward passes above this activation size, as if out of memory")
        .add(request_timeout_s, "request-timeout", "seconds a request may wait and run")
        .add(max_batch_size, "max-batch-size",
             "sequences decoded together (1: one request at a time, as the seed)")
        .add(max_queue, "max-queue", "requests that may wait for the batch; more get 429")
        .add(max_prefill_tokens, "max-prefill-tokens",
             "prompt tokens computed per step: long prompts go in slices between decode steps")
        .add(max_step_tokens, "max-step-tokens",
             "rows per step: the decode rows first, then prompt slices (0: only "
             "--max-prefill-tokens)")
        .add(log_level, "log-level", "trace | debug | info | warn | error")
        .add(role, "role",
             "standalone | worker (a device for routers; HTTP /health only) | router (the API over "
             "workers)")
        .add(node_host, "node-host",
             "address a worker publishes itself on, or a router takes joins on (default 127.0.0.1)")
        .add(
            node_port, "node-port",
            "a worker's node port (0: any free one); a router's port for joining workers (0: none)")
        .add(node_name, "node-name",
             "a worker's name in its router's /health (default host:node-port)")
        .add(node_secret_file, "node-secret-file",
             "file holding the cluster's shared secret (or set ADAPTERD_NODE_SECRET); needed by "
             "workers and routers")
        .add(node_cert, "node-cert",
             "this node's TLS certificate (PEM), signed by the cluster CA; needed by workers and "
             "routers")
        .add(node_key, "node-key", "the private key of --node-cert (PEM, unencrypted, mode 600)")
        .add(node_ca, "node-ca",
             "the cluster CA (PEM): nodes accept only peers whose certificate it signed")
        .add(workers, "workers", "a router's workers, ','-separated host:port node addresses")
        .add(join, "join", "a worker asks these routers (','-separated host:port) to dial it")
        .add(advertise, "advertise",
             "the host:port a worker gives routers to dial (default node-host:node-port)")
        .add(node_poll_ms, "node-poll-ms", "a router asks each worker for its status this often")
        .add(api_keys_file, "api-keys-file",
             "file of API keys, one per line (or ADAPTERD_API_KEYS, ','-separated); none: open")
        .add(admin_keys_file, "admin-keys-file",
             "file of admin keys for cleanup and adapter load/unload (or ADAPTERD_ADMIN_KEYS)")
        .add(adapters, "adapters", "adapters to load at start, ','-separated id=path")
        .add(shutdown_grace_s, "shutdown-grace",
             "on SIGTERM/SIGINT, seconds in-flight requests get to finish")
        .add(data_roots, "data-roots", "':'-separated directories training datasets must lie in")
        .add(trained_adapters_dir, "trained-adapters-dir",
             "where training jobs write adapters (default: the first adapter root's trained/)")
        .add(train_share, "train-share",
             "share of device time a training job gets while generation is busy (0-1)");
    add_message_types<caf::id_block::adapterd>();
    // The work-stealing default polls for work on every core; on a small machine that
    // polling takes CPU from the model. Actors here block on real work, so share a queue.
    set("scheduler.policy", caf::atom("sharing"));
  }

  /// --name=value for every option set in the environment as ADAPTERD_NAME (upper case,
  /// '-' as '_'): placed before the command line's own arguments, they override the config
  /// file and lose to the command line.
  std::vector<std::string> environment_arguments() const {
    std::vector<std::string> out;
    for (const auto& opt : custom_options_) {
      std::string name(opt.long_name().begin(), opt.long_name().end());
      if (opt.category() != "global" || name == "help" || name == "long-help" || name == "dump-config")
        continue;
      std::string env = "ADAPTERD_";
      for (char c : name)
        env += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      if (const char* value = std::getenv(env.c_str()))
        out.push_back("--" + name + "=" + value);
    }
    return out;
  }
};

// Secrets from a file (one per line; '#' starts a comment) or, without one, from the
// environment (','-separated): never from the command line, where ps would show them.
std::vector<std::string> secrets_from(const std::string& file, const char* env, std::string& problem) {
  std::vector<std::string> out;
  if (!file.empty()) {
    std::ifstream in(file);
    if (!in)
      problem = "cannot read " + file;
    for (std::string line; std::getline(in, line);)
      if (!line.empty() && line[0] != '#')
        out.push_back(line);
  } else if (const char* v = std::getenv(env)) {
    out = split(v, ',');
  }
  return out;
}

void apply_cluster_options(const adapterd_config& c, adapterd::actors::service_config& s, std::string& problem);

// A weight format by name; the quantised ones are CPU kernels.
void check_weight_format(const std::string& option, const std::string& format,
                         const std::string& device, std::string& problem) {
  if (format != "auto" && !adapterd::model::quant::weight_format_from_name(format))
    problem = option + " must be auto, f32, bf16, int8 or q4, not '" + format + "'";
  else if (format != "auto" && format != "f32" && device == "cuda")
    problem = option + "=" + format + " runs on the CPU kernels; it cannot go with --device=cuda";
}
void apply_access_and_training_options(const adapterd_config& c, adapterd::actors::service_config& s,
                                       std::string& problem);

std::optional<adapterd::actors::service_config> to_service_config(const adapterd_config& c,
                                                                  std::string& problem) {
  adapterd::actors::service_config s;
  s.host = c.host;
  s.port = c.port;
  s.default_model = c.model;
  s.model_roots = split(c.model_roots, ':');
  s.adapter_roots = split(c.adapter_roots, ':');
  s.device = c.device;
  s.dtype = c.dtype;
  s.weights = c.weights;
  s.kv_dtype = c.kv_dtype;
  s.threads = c.threads;
  s.preload = !c.lazy_load;
  s.max_new_tokens_limit = c.max_new_tokens_limit;
  s.max_body_bytes = c.max_body_bytes;
  s.max_connections = c.max_connections;
  s.tokenizer_threads = c.tokenizer_threads;
  s.gpu_budget_bytes = c.gpu_budget_mb << 20;
  s.cpu_budget_bytes = c.cpu_budget_mb << 20;
  s.kv_reserve_tokens = c.kv_reserve_tokens;
  s.prefix_cache = c.prefix_cache == "on";
  if (c.prefix_cache != "on" && c.prefix_cache != "off")
    problem = "--prefix-cache must be on or off, not '" + c.prefix_cache + "'";
  s.max_models = c.max_models;
  s.flush_slack_bytes = c.flush_slack_mb << 20;
  s.idle_unload_after_s = c.idle_unload_after_s;
  s.fault_activation_limit_bytes = c.fault_activation_limit_kb << 10;
  s.request_timeout_s = c.request_timeout_s;
  s.max_batch_size = c.max_batch_size;
  s.max_queue = c.max_queue;
  s.max_prefill_tokens = c.max_prefill_tokens;
  s.max_step_tokens = c.max_step_tokens;
  if (c.policy == "flush")
    s.policy = cleanup_policy::flush;
  else if (c.policy == "unload")
    s.policy = cleanup_policy::unload;
  else if (c.policy == "off")
    s.policy = cleanup_policy::off;
  else
    problem = "--cleanup-policy must be flush, unload or off, not '" + c.policy + "'";
  if (c.device != "auto" && c.device != "cpu" && c.device != "cuda")
    problem = "--device must be auto, cpu or cuda, not '" + c.device + "'";
  if (c.dtype != "auto" && c.dtype != "float32" && c.dtype != "bfloat16" && c.dtype != "float16")
    problem = "--dtype must be auto, float32, bfloat16 or float16, not '" + c.dtype + "'";
  check_weight_format("--weights", c.weights, c.device, problem);
  for (const auto& entry : split(c.model_weights, ',')) {
    auto eq = entry.find('=');
    if (eq == std::string::npos || eq == 0) {
      problem = "--model-weights: '" + entry + "' is not MODEL=FORMAT";
      continue;
    }
    s.model_weights.emplace_back(entry.substr(0, eq), entry.substr(eq + 1));
    if (!adapterd::actors::resolve_model_dir(entry.substr(0, eq), s.default_model, s.model_roots))
      problem = "--model-weights: '" + entry.substr(0, eq)
                + "' is not a model directory below --model-roots";
    check_weight_format("--model-weights " + entry.substr(0, eq), entry.substr(eq + 1), c.device,
                        problem);
  }
  if (c.kv_dtype != "auto" && c.kv_dtype != "float32" && c.kv_dtype != "bfloat16")
    problem = "--kv-dtype must be auto, float32 or bfloat16, not '" + c.kv_dtype + "'";
  if (c.max_new_tokens_limit == 0 || c.max_body_bytes == 0 || c.request_timeout_s == 0 || c.max_connections == 0
      || c.tokenizer_threads == 0 || c.tokenizer_threads > 64)
    problem = "limits must be positive";
  if (c.kv_reserve_tokens < 1 || c.max_models < 1)
    problem = "--kv-reserve-tokens and --max-models must be at least 1";
  if (c.max_batch_size < 1 || c.max_batch_size > 256)
    problem = "--max-batch-size must be 1 to 256";
  if (c.max_prefill_tokens < 1)
    problem = "--max-prefill-tokens must be at least 1";
  if (c.max_step_tokens < 0)
    problem = "--max-step-tokens must not be negative (0: no bound)";
  if (c.threads < 0)
    problem = "--threads must not be negative";
  apply_cluster_options(c, s, problem);
  apply_access_and_training_options(c, s, problem);
  if (spdlog::level::from_str(c.log_level) == spdlog::level::off && c.log_level != "off")
    problem = "--log-level '" + c.log_level + "' is not a level";
  if (!problem.empty())
    return std::nullopt;
  return s;
}

// --role and the node options; a worker or router needs the shared secret.
void apply_cluster_options(const adapterd_config& c, adapterd::actors::service_config& s, std::string& problem) {
  if (c.role == "standalone")
    s.role = adapterd::actors::node_role::standalone;
  else if (c.role == "worker")
    s.role = adapterd::actors::node_role::worker;
  else if (c.role == "router")
    s.role = adapterd::actors::node_role::router;
  else
    problem = "--role must be standalone, worker or router, not '" + c.role + "'";
  s.node_host = c.node_host;
  s.node_port = c.node_port;
  s.workers = split(c.workers, ',');
  s.join = split(c.join, ',');
  s.node_poll_ms = c.node_poll_ms;
  s.advertise = c.advertise;
  if (s.advertise.empty() && c.node_port != 0)
    s.advertise = c.node_host + ":" + std::to_string(c.node_port);
  s.node_name = c.node_name;
  if (s.node_name.empty())
    s.node_name = !s.advertise.empty() ? s.advertise : "worker-" + std::to_string(getpid());
  for (const auto& address : s.workers)
    if (!adapterd::actors::parse_node_address(address))
      problem = "--workers: '" + address + "' is not a host:port address";
  for (const auto& address : s.join)
    if (!adapterd::actors::parse_node_address(address))
      problem = "--join: '" + address + "' is not a host:port address";
  if (!s.join.empty() && s.advertise.empty())
    problem = "a worker that joins routers needs --node-port (or --advertise) so they can dial it";
  if (!s.advertise.empty() && !adapterd::actors::parse_node_address(s.advertise))
    problem = "--advertise: '" + s.advertise + "' is not a host:port address";
  if (s.role == adapterd::actors::node_role::router && s.workers.empty() && c.node_port == 0)
    problem = "a router needs --workers, or a --node-port where workers can join";
  if (c.node_poll_ms < 10)
    problem = "--node-poll-ms must be at least 10";
  if (s.role != adapterd::actors::node_role::standalone) {
    auto secret = secrets_from(c.node_secret_file, "ADAPTERD_NODE_SECRET", problem);
    s.node_secret = secret.empty() ? "" : secret.front();
    if (problem.empty() && s.node_secret.size() < 16)
      problem = std::string("a ") + c.role + " needs the cluster's shared secret, at least 16 characters, "
                "from --node-secret-file or ADAPTERD_NODE_SECRET";
    // Nodes talk only over mutual TLS: a missing or broken file is a refusal to start here,
    // not an abort at the first connection.
    if (auto tls = adapterd::actors::tls_files_problem({c.node_cert, c.node_key, c.node_ca}); tls && problem.empty())
      problem = "a " + c.role + " " + *tls;
    s.node_tls = true;
  }
}

// API and admin keys, the training options, and the adapters to preload.
void apply_access_and_training_options(const adapterd_config& c, adapterd::actors::service_config& s,
                                       std::string& problem) {
  auto keys = [&](const std::string& file, const char* env, std::vector<std::string>& out) {
    out = secrets_from(file, env, problem);
    for (const auto& k : out)
      if (k.size() < 8)
        problem = std::string("API and admin keys need at least 8 characters (") + env + ")";
  };
  keys(c.api_keys_file, "ADAPTERD_API_KEYS", s.api_keys);
  keys(c.admin_keys_file, "ADAPTERD_ADMIN_KEYS", s.admin_keys);
  s.data_roots = split(c.data_roots, ':');
  s.trained_adapters_dir = c.trained_adapters_dir;
  if (s.trained_adapters_dir.empty() && !s.adapter_roots.empty())
    s.trained_adapters_dir = s.adapter_roots.front() + "/trained";
  s.train_share = c.train_share;
  if (!(c.train_share > 0 && c.train_share <= 1))
    problem = "--train-share must be in (0, 1]";
  for (const auto& item : split(c.adapters, ',')) {
    auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size())
      problem = "--adapters: '" + item + "' is not id=path";
    else
      s.preload_adapters.emplace_back(item.substr(0, eq), item.substr(eq + 1));
  }
}

}  // namespace

int main(int argc, char** argv) {
  adapterd_config cfg;
  std::vector<std::string> args{argv[0]};
  for (auto& a : cfg.environment_arguments())
    args.push_back(std::move(a));
  args.insert(args.end(), argv + 1, argv + argc);
  std::vector<char*> arg_ptrs;
  for (auto& a : args)
    arg_ptrs.push_back(a.data());
  if (auto err = cfg.parse(static_cast<int>(arg_ptrs.size()), arg_ptrs.data(), "config/adapterd.ini")) {
    std::cerr << "adapterd: " << cfg.render(err) << "\n(see adapterd --help)\n";
    return 2;
  }
  if (cfg.cli_helptext_printed)
    return 0;
  std::string problem;
  auto service = to_service_config(cfg, problem);
  if (!service) {
    std::cerr << "adapterd: " << problem << "\n";
    return 2;
  }
  if (service->role != adapterd::actors::node_role::standalone) {
    cfg.load<caf::io::middleman>();
    cfg.set("middleman.app-identifier", "adapterd");  // CAF refuses nodes of other applications
    // A peer cut off by a silent partition (no FIN, no RST) is dropped after this long
    // without a byte from it; heartbeats keep healthy idle connections above it.
    cfg.set("middleman.heartbeat-interval", caf::timespan{std::chrono::seconds(1)});
    cfg.set("middleman.connection-timeout", caf::timespan{std::chrono::seconds(6)});
    cfg.load<caf::openssl::manager>();  // after the middleman: it runs on top of it
    cfg.openssl_certificate = cfg.node_cert;
    cfg.openssl_key = cfg.node_key;
    cfg.openssl_cafile = cfg.node_ca;
  }
  spdlog::set_level(spdlog::level::from_str(cfg.log_level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");

  // Signals are taken by sigwait below, never by another thread.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  caf::actor_system sys{cfg};
  adapterd::actors::node node{sys, *service};
  // A core actor that goes down ends the process with a failure status (its service
  // manager restarts it whole) by the same path as SIGTERM.
  static std::atomic<bool> core_failed{false};
  auto started = node.start([](const std::string&, const std::string&) {
    core_failed = true;
    kill(getpid(), SIGTERM);
  });
  if (auto* failure = std::get_if<std::string>(&started)) {
    spdlog::error("{}", *failure);
    node.stop();
    return 1;
  }
  // The line tests and scripts wait for; they read the port from it.
  if (service->role == adapterd::actors::node_role::standalone)
    spdlog::info("adapterd listening on http://{}:{} (model {}, cleanup {})", service->host,
                 std::get<uint16_t>(started), service->default_model, cfg.policy);
  else
    spdlog::info("adapterd {} listening on http://{}:{} (node port {}, model {})", cfg.role,
                 service->host, std::get<uint16_t>(started), node.node_port(),
                 service->role == adapterd::actors::node_role::router ? "none" : service->default_model);
  int sig = 0;
  sigwait(&stop_signals, &sig);
  const int status = core_failed ? 70 : 0;  // EX_SOFTWARE
  // Refusing first: once the line below is in the log (tests wait for it), no new
  // request is taken.
  node.stop_taking();
  spdlog::info("adapterd stopping on signal {}: new requests get 503, in-flight ones have {} s", sig,
               cfg.shutdown_grace_s);
  // The whole stop fits in the grace period, even when an actor is stuck in long work that
  // would hold up the orderly end: past it the process exits anyway.
  const auto grace = std::chrono::milliseconds(std::max<int64_t>(1000, int64_t{cfg.shutdown_grace_s} * 1000));
  std::thread([grace, status] {
    std::this_thread::sleep_for(grace);
    spdlog::warn("adapterd: still stopping after {} ms (an actor is busy); exiting now", grace.count());
    spdlog::default_logger()->flush();
    std::_Exit(status);
  }).detach();
  auto left = node.drain(grace - std::min(grace / 4, std::chrono::milliseconds(1000)));
  if (left > 0)
    spdlog::warn("adapterd: {} requests still unanswered after the grace period", left);
  node.stop();
  return status;
}
