#include "actors/supervisor_actor.hpp"

#include <chrono>
#include <filesystem>
#include <map>

#include <spdlog/spdlog.h>

#include "actors/error_mapping.hpp"
#include "actors/path_policy.hpp"

namespace adapterd::actors {

namespace fs = std::filesystem;
using messages::errc;

struct supervisor_state {
  static inline const char* name = "supervisor";
  supervisor_state() = default;  // non-aggregate: CAF 0.17's C++20 state trap

  service_config config;
  messages::monitor_actor monitor;
  std::shared_ptr<const model::base_model> model;  // the resident base model
  std::map<std::string, std::shared_ptr<const model::lora_adapter>> adapters;
  uint64_t model_loads = 0;
  uint64_t adapter_loads = 0;
};

namespace {

using self_ptr = supervisor_actor::stateful_pointer<supervisor_state>;
using clock_type = std::chrono::steady_clock;

void report(self_ptr self) {
  auto& st = self->state;
  messages::model_state s;
  s.loaded = st.model != nullptr;
  if (st.model) {
    s.path = st.model->path();
    s.device = st.model->device();
    s.dtype = st.model->dtype();
    s.weight_bytes = st.model->weight_bytes();
  }
  s.adapters_cached = static_cast<uint32_t>(st.adapters.size());
  for (const auto& [path, a] : st.adapters)
    s.adapter_bytes += a->bytes();
  s.model_loads = st.model_loads;
  s.adapter_loads = st.adapter_loads;
  self->send(st.monitor, messages::report_atom_v, s);
}

// The directory a request's base_model names, or an error.
caf::expected<std::string> resolve_model(const service_config& c, const std::string& requested) {
  if (requested.empty() || requested == c.default_model
      || requested == fs::path(c.default_model).filename().string())
    return c.default_model;
  auto path = resolve_under_roots(requested, c.model_roots);
  if (!path || !fs::exists(*path + "/config.json"))
    return make_failure(errc::unknown_model, "base_model '" + requested
                                               + "' is not a model this server serves (default: "
                                               + fs::path(c.default_model).filename().string() + ")");
  return *path;
}

caf::expected<std::string> resolve_adapter(const service_config& c, const std::string& requested) {
  auto path = resolve_under_roots(requested, c.adapter_roots);
  if (!path)
    return make_failure(errc::adapter_forbidden,
                        "adapter_path '" + requested + "' is outside the configured adapter roots");
  if (!fs::is_directory(*path) || !fs::exists(*path + "/adapter_config.json"))
    return make_failure(errc::adapter_not_found, "adapter_path '" + requested
                                                   + "' is not a LoRA adapter directory "
                                                     "(no adapter_config.json)");
  return *path;
}

caf::result<model_lease> acquire(self_ptr self, const acquire_request& req) {
  auto& st = self->state;
  auto start = clock_type::now();
  auto dir = resolve_model(st.config, req.base_model);
  if (!dir)
    return dir.error();
  // prefer_cpu (as in the seed) asks for the model on the CPU; otherwise the configured device.
  auto device = model::resolve_device(req.prefer_cpu ? "cpu" : st.config.device);
  if (!device)
    return from_model_error(device.err());
  if (!st.model || st.model->path() != *dir || st.model->device() != *device) {
    if (st.model)
      spdlog::info("supervisor {} replacing model {} with {}", req.request_id, st.model->path(), *dir);
    st.adapters.clear();
    st.model.reset();  // free the old weights before the new ones arrive
    auto loaded = model::base_model::load(*dir, model::load_options{*device, st.config.threads, st.config.dtype});
    if (!loaded) {
      spdlog::error("supervisor {} cannot load {}: {}", req.request_id, *dir, loaded.err().message);
      report(self);
      auto e = loaded.err();
      return make_failure(e.code == model::errc::out_of_memory ? errc::out_of_memory : errc::model_load_failed,
                          "cannot load base model: " + e.message);
    }
    st.model = *loaded;
    ++st.model_loads;
    spdlog::info("supervisor {} loaded {} on {} ({} MiB)", req.request_id, *dir, st.model->device(),
                 st.model->weight_bytes() >> 20);
    report(self);
  }
  model_lease lease;
  lease.model = st.model;
  lease.model_name = fs::path(*dir).filename().string();
  if (!req.adapter_path.empty()) {
    auto path = resolve_adapter(st.config, req.adapter_path);
    if (!path)
      return path.error();
    auto it = st.adapters.find(*path);
    if (it == st.adapters.end()) {
      auto loaded = st.model->load_adapter(*path);
      if (!loaded)
        return from_model_error(loaded.err());
      it = st.adapters.emplace(*path, *loaded).first;
      ++st.adapter_loads;
      spdlog::info("supervisor {} loaded adapter {}", req.request_id, *path);
      report(self);
    }
    lease.adapter = it->second;
    lease.adapter_name = req.adapter_path;
  }
  lease.load_ms = std::chrono::duration<double, std::milli>(clock_type::now() - start).count();
  return lease;
}

supervisor_actor::behavior_type supervisor_behavior(
  supervisor_actor::stateful_pointer<supervisor_state> self, service_config config,
  messages::monitor_actor monitor) {
  self->state.config = std::move(config);
  self->state.monitor = std::move(monitor);
  report(self);
  return {
    [=](messages::acquire_atom, const acquire_request& req) -> caf::result<model_lease> {
      return acquire(self, req);
    },
    [=](messages::unload_atom) {
      bool had = self->state.model != nullptr;
      self->state.adapters.clear();
      self->state.model.reset();  // freed once the last lease is gone
      report(self);
      return had;
    },
  };
}

}  // namespace

supervisor_actor spawn_supervisor(caf::actor_system& sys, service_config config,
                                  messages::monitor_actor monitor) {
  return sys.spawn<caf::detached>(supervisor_behavior, std::move(config), std::move(monitor));
}

}  // namespace adapterd::actors
