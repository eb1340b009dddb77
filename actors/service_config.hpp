#pragma once
// The settings the actors run with, filled from defaults < config file < command line.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace adapterd::actors {

enum class cleanup_policy { flush, unload, off };

/// standalone: HTTP API and model in one process. worker: owns a device, publishes itself
/// on its node port for routers, serves only /health over HTTP. router: the HTTP API, no
/// model, requests spread over workers.
enum class node_role { standalone, worker, router };

const char* to_string(node_role r);

const char* to_string(cleanup_policy p);

/// Where the long-working core actors (supervisor, janitor, gpu-owner) run: each on its own
/// thread, so that loading or a long step never holds up another actor; or on the
/// scheduler's pool, where CAF's deterministic test_coordinator can drive them in tests.
enum class actor_placement { own_thread, scheduler_pool };

struct service_config {
  std::string host = "127.0.0.1";
  uint16_t port = 8110;
  std::string default_model;              // directory of the model served by default
  std::vector<std::string> model_roots;   // other base models must lie below one of these
  std::vector<std::string> adapter_roots; // adapters must lie below one of these
  std::string device = "auto";            // auto | cpu | cuda
  std::string dtype = "auto";             // auto | float32 | bfloat16 | float16
  std::string weights = "auto";  // auto (f32) | f32 | bf16 | int8 | q4: the CPU weights of a model
                                 // model_weights does not name
  // --model-weights: (a model as base_model names it, its weight format), first match wins
  std::vector<std::pair<std::string, std::string>> model_weights;
  std::string kv_dtype = "auto";          // auto (the compute dtype) | float32 | bfloat16
  int threads = 0;                        // libtorch intra-op threads; 0: its default
  cleanup_policy policy = cleanup_policy::flush;
  uint64_t flush_slack_bytes = 8 << 20;   // after-request flushes leave caches below this alone
  bool preload = true;                    // load the default model at start-up
  uint64_t gpu_budget_bytes = 0;          // 0: unlimited
  uint64_t cpu_budget_bytes = 0;          // 0: unlimited (CPU models, and the host adapter tier)
  bool prefix_cache = true;               // pooled sequences share the KV of common prompt prefixes
  int64_t kv_reserve_tokens = 4096;       // the KV pool's tokens (shared by the batch); caps a sequence
  uint32_t max_models = 1;                // base models resident at once
  uint32_t idle_unload_after_s = 0;       // 0: keep the model however long it idles
  uint64_t fault_activation_limit_bytes = 0;  // tests only: injected allocation failures
  uint32_t max_new_tokens_limit = 512;
  size_t max_body_bytes = 1 << 20;
  unsigned max_connections = 1024;        // open HTTP connections; more get 503
  unsigned request_timeout_s = 600;
  unsigned io_threads = 2;
  unsigned tokenizer_threads = 2;         // threads that encode and decode text off the model actors
  uint32_t max_batch_size = 16;           // sequences decoded together; 1: the seed's one at a time
  uint32_t max_queue = 256;               // requests waiting beyond the batch; more get 429
  int64_t max_prefill_tokens = 256;       // prompt tokens computed per step (slices)
  int64_t max_step_tokens = 0;            // rows per step, decode rows first (0: no bound)
  actor_placement placement = actor_placement::own_thread;

  node_role role = node_role::standalone;
  std::string node_host = "127.0.0.1";    // where a worker publishes itself / a router takes joins
  uint16_t node_port = 0;                 // 0: any free port (worker), no join port (router)
  std::string node_name;                  // how a worker names itself; default host:port
  std::string node_secret;                // the cluster's shared secret
  bool node_tls = false;                  // node links are mutual TLS (libcaf_openssl), plain otherwise (tests)
  std::vector<std::string> workers;       // a router dials these host:port addresses
  std::vector<std::string> join;          // a worker asks these routers (host:port) to dial it
  std::string advertise;                  // the address a worker gives routers; default node_host:node_port
  unsigned node_poll_ms = 500;            // a router asks each worker for its status this often

  std::vector<std::string> api_keys;      // none: the API is open
  std::vector<std::string> admin_keys;    // cleanup and adapter load/unload need one of these
  std::vector<std::pair<std::string, std::string>> preload_adapters;  // id, path: registered at start

  std::vector<std::string> data_roots;    // training datasets must lie below one of these
  std::string trained_adapters_dir;       // trained adapters are written here (below an adapter root)
  double train_share = 0.25;              // device time a training job gets while generation is busy
};

}  // namespace adapterd::actors
