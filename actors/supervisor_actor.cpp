// Over 400 lines on purpose: the model and adapter cache (acquire, tiers, eviction,
// idle unload, registration) is one state; its CAF-free plan is actors/core/eviction_plan.
#include "actors/supervisor_actor.hpp"

#include <chrono>
#include <filesystem>
#include <map>
#include <tuple>

#include <spdlog/spdlog.h>

#include "actors/core/eviction_plan.hpp"
#include "actors/core/model_names.hpp"
#include "actors/core/path_policy.hpp"
#include "actors/core/timestamp.hpp"
#include "actors/error_mapping.hpp"
#include "actors/handler_firewall.hpp"
#include "model/memory_stats.hpp"

namespace adapterd::actors {

namespace fs = std::filesystem;
using messages::errc;
using clock_type = std::chrono::steady_clock;

// How often a set of weights was leased and when last: the console's table.
struct use_count {
  uint64_t requests = 0;
  int64_t last_used_ms = 0;  // wall clock
  void count() {
    ++requests;
    last_used_ms = unix_ms();
  }
};

struct model_entry {
  std::shared_ptr<const model::base_model> model;
  uint64_t last_used = 0;
  clock_type::time_point last_used_at = clock_type::now();
  use_count use;
};

struct adapter_entry {
  std::shared_ptr<const model::lora_adapter> adapter;
  std::string model_key;
  uint64_t last_used = 0;
  use_count use;
};

struct supervisor_state {
  static inline const char* name = "supervisor";
  supervisor_state() = default;  // non-aggregate: CAF 0.17's C++20 state trap

  service_config config;
  messages::monitor_actor monitor;
  tokenizer_pool_actor tokenizer_pool;
  std::map<std::string, model_entry> models;             // key: model dir @ device
  std::map<std::string, adapter_entry> device_adapters;  // key: model key | adapter dir
  std::map<std::string, adapter_entry> host_adapters;    // same keys, in host memory
  std::string last_model_key;
  std::map<std::string, std::string> adapter_ids;  // POST /adapters: id -> path as given
  std::map<std::string, std::shared_ptr<const model::tokenizer>> tokenizers;  // dir -> its tokenizer alone
  uint64_t tick = 0;
  uint64_t model_loads = 0, adapter_loads = 0, evictions = 0, host_reloads = 0;
};

namespace {

using self_ptr = supervisor_actor::stateful_pointer<supervisor_state>;

bool on_gpu(const std::string& device) { return device.rfind("cuda", 0) == 0; }

uint64_t device_budget(const service_config& c, const std::string& device) {
  return on_gpu(device) ? c.gpu_budget_bytes : c.cpu_budget_bytes;
}

int64_t kv_tokens(const service_config& c, const model::base_model& m) {
  return std::min<int64_t>(c.kv_reserve_tokens, m.config().max_position_embeddings);
}

void report(self_ptr self) {
  auto& st = self->state;
  messages::model_state s;
  auto it = st.models.find(st.last_model_key);
  if (it == st.models.end() && !st.models.empty())
    it = st.models.begin();
  if (it != st.models.end()) {
    const auto& m = *it->second.model;
    s.loaded = true;
    s.path = m.path();
    s.device = m.device();
    s.dtype = m.dtype();
    s.weights = m.weights_format();
    s.kv_dtype = m.kv_dtype();
    s.weight_bytes = m.weight_bytes();
    s.kv_reserve_bytes = m.kv_pool_bytes();
    s.device_budget_bytes = device_budget(st.config, m.device());
  }
  for (const auto& [key, e] : st.models)
    s.resident.push_back({"model", e.model->path(), e.model->device(), "device",
                          e.model->weight_bytes(), e.model->weights_format(), e.use.requests,
                          e.use.last_used_ms});
  for (const auto* tier : {&st.device_adapters, &st.host_adapters})
    for (const auto& [key, e] : *tier) {
      s.resident.push_back({"adapter", e.adapter->path(), e.adapter->device(),
                            tier == &st.host_adapters ? "host" : "device", e.adapter->bytes(), "",
                            e.use.requests, e.use.last_used_ms});
      s.adapter_bytes += e.adapter->bytes();
    }
  s.adapters_cached = static_cast<uint32_t>(st.device_adapters.size() + st.host_adapters.size());
  s.model_loads = st.model_loads;
  s.adapter_loads = st.adapter_loads;
  s.evictions = st.evictions;
  s.host_reloads = st.host_reloads;
  self->send(st.monitor, messages::report_atom_v, s);
}

// The resident weights on one device, for the eviction plan.
std::vector<resident> device_tier(const supervisor_state& st, const std::string& device) {
  std::vector<resident> tier;
  for (const auto& [key, e] : st.models)
    if (e.model->device() == device)
      tier.push_back({key, true, "", e.model->weight_bytes(), e.last_used});
  for (const auto& [key, e] : st.device_adapters)
    if (e.adapter->device() == device)
      tier.push_back({key, false, e.model_key, e.adapter->bytes(), e.last_used});
  return tier;
}

void drop_model(self_ptr self, const std::string& key, messages::freed_report& freed) {
  auto& st = self->state;
  for (auto* tier : {&st.device_adapters, &st.host_adapters})
    for (auto it = tier->begin(); it != tier->end();)
      if (it->second.model_key == key) {
        ++freed.adapters;
        freed.adapter_bytes += it->second.adapter->bytes();
        it = tier->erase(it);
      } else {
        ++it;
      }
  auto it = st.models.find(key);
  if (it == st.models.end())
    return;
  ++freed.models;
  freed.model_bytes += it->second.model->weight_bytes();
  spdlog::info("supervisor unloading {}", it->second.model->path());
  st.models.erase(it);
}

// Moves a device adapter to the host tier (GPU models, room permitting) or drops it.
void evict_adapter(self_ptr self, const std::string& key) {
  auto& st = self->state;
  auto it = st.device_adapters.find(key);
  if (it == st.device_adapters.end())
    return;
  auto entry = it->second;
  st.device_adapters.erase(it);
  ++st.evictions;
  auto model = st.models.find(entry.model_key);
  if (model == st.models.end() || !on_gpu(model->second.model->device()))
    return;  // on the CPU the host tier is the device: dropped
  std::vector<resident> host;
  for (const auto& [k, e] : st.host_adapters)
    host.push_back({k, false, e.model_key, e.adapter->bytes(), e.last_used});
  auto plan = plan_eviction(host, st.config.cpu_budget_bytes, entry.adapter->bytes(), {});
  if (!plan)
    return;
  for (const auto& k : *plan)
    st.host_adapters.erase(k);
  auto moved = model->second.model->move_adapter(*entry.adapter, true);
  if (moved) {
    entry.adapter = *moved;
    st.host_adapters[key] = entry;
  }
}

// Makes room for `need` more bytes on `device`; false when even evictions cannot.
bool make_room(self_ptr self, const std::string& device, uint64_t need,
               const std::set<std::string>& keep) {
  auto& st = self->state;
  auto plan = plan_eviction(device_tier(st, device), device_budget(st.config, device), need, keep);
  if (!plan)
    return false;
  messages::freed_report freed;
  for (const auto& key : *plan) {
    if (st.models.count(key)) {
      drop_model(self, key, freed);
      ++st.evictions;
    } else {
      evict_adapter(self, key);
    }
  }
  if (!plan->empty())
    model::flush_allocator_caches();  // hand the evicted memory back now
  return true;
}

std::string mib(uint64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

// The directory a request's base_model names, or an error.
caf::expected<std::string> resolve_model(const service_config& c, const std::string& requested) {
  auto path = resolve_model_dir(requested, c.default_model, c.model_roots);
  if (!path)
    return make_failure(errc::unknown_model, "base_model '" + requested
                                               + "' is not a model this server serves (default: "
                                               + fs::path(c.default_model).filename().string() + ")");
  return *path;
}

// The weight format of the model in dir: the first --model-weights entry that names it, or
// the node's --weights.
std::string weights_for(const service_config& c, const std::string& dir) {
  for (const auto& [name, format] : c.model_weights)
    if (resolve_model_dir(name, c.default_model, c.model_roots) == dir)
      return format;
  return c.weights;
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

caf::expected<model_entry*> ensure_model(self_ptr self, const acquire_request& req,
                                         const std::string& dir, const std::string& device) {
  auto& st = self->state;
  auto key = dir + "@" + device;
  auto it = st.models.find(key);
  if (it != st.models.end())
    return &it->second;
  model::load_options options{device,
                              st.config.threads,
                              st.config.dtype,
                              st.config.fault_activation_limit_bytes,
                              st.config.kv_reserve_tokens,
                              weights_for(st.config, dir),
                              st.config.kv_dtype,
                              st.config.prefix_cache};
  auto estimate = model::estimate_weight_bytes(dir, options);
  if (!estimate)
    return from_model_error(estimate.err());
  // Room for the weights and the KV pool the batch shares.
  auto kv = model::estimate_kv_bytes(dir, options, st.config.kv_reserve_tokens);
  if (!kv)
    return from_model_error(kv.err());
  uint64_t need = *estimate + *kv;
  // At most max_models resident: the least recently used idle one makes way.
  while (st.models.size() >= std::max<uint32_t>(1, st.config.max_models)) {
    auto oldest = st.models.begin();
    for (auto m = st.models.begin(); m != st.models.end(); ++m)
      if (m->second.last_used < oldest->second.last_used)
        oldest = m;
    messages::freed_report freed;
    drop_model(self, oldest->first, freed);
  }
  if (!make_room(self, device, need, {}))
    return make_failure(errc::insufficient_memory,
                        "base model " + dir + " needs " + mib(need) + " (weights and KV reserve); the "
                          + device + " budget is " + mib(device_budget(st.config, device)));
  auto start = clock_type::now();
  auto loaded = model::base_model::load(dir, options);
  if (!loaded) {
    spdlog::error("supervisor {} cannot load {}: {}", req.request_id, dir, loaded.err().message);
    auto e = loaded.err();
    return make_failure(e.code == model::errc::out_of_memory ? errc::out_of_memory : errc::model_load_failed,
                        "cannot load base model: " + e.message);
  }
  ++st.model_loads;
  spdlog::info("supervisor {} loaded {} on {} as {}, weights {} ({}) in {:.0f} ms", req.request_id,
               dir, (*loaded)->device(), (*loaded)->dtype(), (*loaded)->weights_format(),
               mib((*loaded)->weight_bytes()),
               std::chrono::duration<double, std::milli>(clock_type::now() - start).count());
  return &(st.models[key] = model_entry{*loaded, 0, clock_type::now(), {}});
}

caf::expected<std::shared_ptr<const model::lora_adapter>> ensure_adapter(
  self_ptr self, const acquire_request& req, const std::string& model_key, model_entry& m,
  const std::string& path) {
  auto& st = self->state;
  auto key = model_key + "|" + path;
  if (auto it = st.device_adapters.find(key); it != st.device_adapters.end()) {
    it->second.last_used = ++st.tick;
    return it->second.adapter;
  }
  const auto& model = *m.model;
  std::set<std::string> keep{model_key};
  // The KV pool, allocated with the model, counts next to whatever is resident.
  const uint64_t kv_reserve = model.kv_pool_bytes();
  if (auto host = st.host_adapters.find(key); host != st.host_adapters.end()) {
    if (!make_room(self, model.device(), host->second.adapter->bytes() + kv_reserve, keep))
      return make_failure(errc::insufficient_memory, "adapter " + path + " does not fit the budget");
    auto back = model.move_adapter(*host->second.adapter, false);
    if (!back)
      return from_model_error(back.err());
    st.device_adapters[key] = adapter_entry{*back, model_key, ++st.tick, host->second.use};
    st.host_adapters.erase(host);
    ++st.host_reloads;
    return *back;
  }
  auto estimate = model.estimate_adapter_bytes(path);
  if (!estimate)
    return from_model_error(estimate.err());
  if (!make_room(self, model.device(), *estimate + kv_reserve, keep))
    return make_failure(errc::insufficient_memory, "adapter " + path + " needs " + mib(*estimate)
                                                     + "; the budget cannot take it next to the model");
  auto loaded = model.load_adapter(path);
  if (!loaded)
    return from_model_error(loaded.err());
  ++st.adapter_loads;
  spdlog::info("supervisor {} loaded adapter {} ({})", req.request_id, path, mib((*loaded)->bytes()));
  st.device_adapters[key] = adapter_entry{*loaded, model_key, ++st.tick, {}};
  return *loaded;
}

// What the monitor shows of the cache apart from use counts: a failed acquisition reports
// only when it changed this.
auto cache_signature(const supervisor_state& st) {
  return std::make_tuple(st.model_loads, st.adapter_loads, st.evictions, st.host_reloads,
                         st.models.size(), st.device_adapters.size(), st.host_adapters.size(),
                         st.last_model_key);
}

std::string default_name(const supervisor_state& st) {
  return fs::path(st.config.default_model).filename().string();
}

caf::expected<model_lease> acquire(self_ptr self, acquire_request req) {
  auto& st = self->state;
  auto names = resolve_names(req.base_model, req.adapter_path, default_name(st), st.adapter_ids);
  req.base_model = names.base_model;
  req.adapter_path = names.adapter;
  auto start = clock_type::now();
  const auto before = cache_signature(st);
  // Reports the cache to the monitor only when this acquisition changed it.
  auto report_changes = [&] {
    if (cache_signature(st) != before)
      report(self);
  };
  auto dir = resolve_model(st.config, req.base_model);
  if (!dir)
    return dir.error();
  // prefer_cpu (as in the seed) asks for the model on the CPU; otherwise the configured device.
  auto device = model::resolve_device(req.prefer_cpu ? "cpu" : st.config.device);
  if (!device)
    return from_model_error(device.err());
  std::string adapter_path;
  if (!req.adapter_path.empty()) {
    auto path = resolve_adapter(st.config, req.adapter_path);
    if (!path)
      return path.error();
    adapter_path = *path;
  }
  auto entry = ensure_model(self, req, *dir, *device);
  if (!entry) {
    report_changes();
    return entry.error();
  }
  auto key = *dir + "@" + *device;
  (*entry)->last_used = ++st.tick;
  (*entry)->last_used_at = clock_type::now();
  st.last_model_key = key;
  model_lease lease;
  lease.model = (*entry)->model;
  lease.model_name = fs::path(*dir).filename().string();
  lease.kv_reserve_tokens = kv_tokens(st.config, *lease.model);
  if (!adapter_path.empty()) {
    auto adapter = ensure_adapter(self, req, key, **entry, adapter_path);
    if (!adapter) {
      report_changes();
      return adapter.error();
    }
    lease.adapter = *adapter;
    if (req.counted)
      st.device_adapters[key + "|" + adapter_path].use.count();
    lease.adapter_name = req.adapter_path;
    for (const auto& [id, path] : st.adapter_ids)
      if (path == req.adapter_path)
        lease.adapter_name = id;
  }
  if (req.counted)
    (*entry)->use.count();
  report(self);  // every lease: the console's use counts
  lease.load_ms = std::chrono::duration<double, std::milli>(clock_type::now() - start).count();
  return lease;
}

struct named_tokenizer {
  std::string name;
  std::shared_ptr<const model::tokenizer> tok;
};

// /tokenize and /detokenize need a model's tokenizer, not its weights: any model directory
// under the roots with a tokenizer.json will do, and a resident model lends its own.
caf::expected<named_tokenizer> tokenizer_for(self_ptr self, const std::string& model_field) {
  auto& st = self->state;
  auto names = resolve_names(model_field, "", default_name(st), st.adapter_ids);
  std::string dir = st.config.default_model;
  if (!names.base_model.empty()) {
    auto path = resolve_under_roots(names.base_model, st.config.model_roots);
    if (!path || !fs::exists(*path + "/tokenizer.json"))
      return make_failure(errc::unknown_model, "model '" + names.base_model + "' has no tokenizer this server may read");
    dir = *path;
  }
  auto name = fs::path(dir).filename().string();
  for (const auto& [key, e] : st.models)
    if (e.model->path() == dir)
      return named_tokenizer{name, std::shared_ptr<const model::tokenizer>(e.model, &e.model->tok())};
  if (auto it = st.tokenizers.find(dir); it != st.tokenizers.end())
    return named_tokenizer{name, it->second};
  auto loaded = model::tokenizer::load(dir);
  if (!loaded)
    return from_model_error(loaded.err());
  if (st.tokenizers.size() >= 16)  // a bound, not a cache policy: tokenizers load in milliseconds
    st.tokenizers.clear();
  st.tokenizers[dir] = *loaded;
  return named_tokenizer{name, *loaded};
}

messages::adapter_reply list_adapters(const supervisor_state& st) {
  messages::adapter_reply r;
  r.default_model = default_name(st);
  for (const auto& [key, e] : st.models)
    r.models.push_back({fs::path(e.model->path()).filename().string(), e.model->weights_format()});
  std::set<std::string> listed;
  std::map<std::string, std::string> id_by_resolved;  // each registered path resolved once
  for (const auto& [id, path] : st.adapter_ids)
    if (auto resolved = resolve_adapter(st.config, path))
      id_by_resolved.emplace(*resolved, id);
  for (const auto* tier : {&st.device_adapters, &st.host_adapters})
    for (const auto& [key, e] : *tier) {
      auto found = id_by_resolved.find(e.adapter->path());
      auto id = found == id_by_resolved.end() ? std::string() : found->second;
      listed.insert(id);
      r.adapters.push_back({id, e.adapter->path(), tier == &st.device_adapters ? "device" : "host",
                            e.adapter->device(), e.adapter->bytes(), ""});
    }
  for (const auto& [id, path] : st.adapter_ids)
    if (!listed.count(id))
      r.adapters.push_back({id, path, "", "", 0, ""});
  return r;
}

// Drops the loaded copies of the adapter at `path` (both tiers); sequences that hold one
// keep it until they end. True when there was one.
bool drop_adapter_copies(supervisor_state& st, const std::string& path) {
  auto resolved = resolve_adapter(st.config, path);
  bool dropped = false;
  for (auto* tier : {&st.device_adapters, &st.host_adapters}) {
    for (auto e = tier->begin(); resolved && e != tier->end();) {
      if (e->second.adapter->path() == *resolved) {
        e = tier->erase(e);
        dropped = true;
      } else {
        ++e;
      }
    }
  }
  return dropped;
}

caf::result<messages::adapter_reply> manage_adapters(self_ptr self, const messages::adapter_request& req) {
  auto& st = self->state;
  if (req.action == messages::adapter_action::list)
    return list_adapters(st);
  if (req.action == messages::adapter_action::load) {
    if (req.path.empty())
      return make_failure(errc::bad_request, "'path' is required");
    auto id = req.id.empty() ? fs::path(req.path).lexically_normal().filename().string() : req.id;
    if (auto problem = adapter_id_problem(id))
      return make_failure(errc::bad_request, *problem + ": '" + id + "'");
    if (auto it = st.adapter_ids.find(id); it != st.adapter_ids.end() && it->second != req.path)
      return make_failure(errc::bad_request, "adapter id '" + id + "' already names " + it->second);
    // What is on disk now: a job that re-trained this id wrote new weights to the same place.
    drop_adapter_copies(st, req.path);
    auto lease = acquire(self, acquire_request{req.request_id, "", req.path, false, false});
    if (!lease)
      return lease.error();
    st.adapter_ids[id] = req.path;
    spdlog::info("supervisor {} registered adapter {} = {}", req.request_id, id, req.path);
    return list_adapters(st);
  }
  if (req.action == messages::adapter_action::unload) {
    auto it = st.adapter_ids.find(req.id);
    auto path = it != st.adapter_ids.end() ? it->second : req.id;
    bool dropped = drop_adapter_copies(st, path);
    if (it == st.adapter_ids.end() && !dropped)
      return make_failure(errc::adapter_not_found, "no adapter is registered or loaded as '" + req.id + "'");
    if (it != st.adapter_ids.end())
      st.adapter_ids.erase(it);
    spdlog::info("supervisor {} unloaded adapter {}", req.request_id, req.id);
    report(self);
    return list_adapters(st);
  }
  return make_failure(errc::bad_request, "unknown adapter action");
}

messages::freed_report evict(self_ptr self, messages::cleanup_level level) {
  auto& st = self->state;
  messages::freed_report freed;
  // Every level of an asked-for cleanup forgets the cached prompt prefixes.
  for (const auto& [key, e] : st.models) {
    freed.kv_blocks += static_cast<uint32_t>(e.model->kv_pool_stats().cached);
    e.model->drop_prefix_cache();
  }
  if (level == messages::cleanup_level::flush) {
    report(self);
    return freed;
  }
  if (level == messages::cleanup_level::all) {
    while (!st.models.empty())
      drop_model(self, st.models.begin()->first, freed);
  }
  for (auto* tier : {&st.device_adapters, &st.host_adapters}) {
    for (const auto& [key, e] : *tier) {
      ++freed.adapters;
      freed.adapter_bytes += e.adapter->bytes();
    }
    tier->clear();
  }
  report(self);
  return freed;
}

messages::freed_report unload_idle(self_ptr self, uint32_t seconds) {
  auto& st = self->state;
  messages::freed_report freed;
  auto now = clock_type::now();
  std::vector<std::string> idle;
  for (const auto& [key, e] : st.models)
    if (e.model.use_count() == 1 && now - e.last_used_at >= std::chrono::seconds(seconds))
      idle.push_back(key);  // nobody holds a lease and it has not been asked for
  for (const auto& key : idle)
    drop_model(self, key, freed);
  if (!idle.empty())
    report(self);
  return freed;
}

supervisor_actor::behavior_type supervisor_behavior(
  supervisor_actor::stateful_pointer<supervisor_state> self, service_config config,
  messages::monitor_actor monitor, tokenizer_pool_actor tokenizers) {
  self->state.config = std::move(config);
  self->state.monitor = std::move(monitor);
  self->state.tokenizer_pool = std::move(tokenizers);
  report(self);
  return guarded_behavior<supervisor_actor::behavior_type>(
      "supervisor",
      [=](messages::acquire_atom, const acquire_request& req) -> caf::result<model_lease> {
        auto lease = acquire(self, req);
        if (!lease)
          return lease.error();
        return std::move(*lease);
      },
      [=](messages::tokenize_atom,
          const messages::tokenize_request& req) -> caf::result<messages::tokenize_reply> {
        auto t = tokenizer_for(self, req.model);
        if (!t)
          return t.error();
        return self->delegate(self->state.tokenizer_pool, messages::tokenize_atom_v,
                              tokenizer_ref{t->name, t->tok}, req);
      },
      [=](messages::detokenize_atom,
          const messages::detokenize_request& req) -> caf::result<messages::detokenize_reply> {
        auto t = tokenizer_for(self, req.model);
        if (!t)
          return t.error();
        return self->delegate(self->state.tokenizer_pool, messages::detokenize_atom_v,
                              tokenizer_ref{t->name, t->tok}, req);
      },
      [=](messages::adapters_atom, const messages::adapter_request& req)
          -> caf::result<messages::adapter_reply> { return manage_adapters(self, req); },
      [=](messages::evict_atom, messages::cleanup_level level) { return evict(self, level); },
      [=](messages::idle_atom, uint32_t seconds) { return unload_idle(self, seconds); });
}

}  // namespace

supervisor_actor spawn_supervisor(caf::actor_system& sys, service_config config,
                                  messages::monitor_actor monitor, tokenizer_pool_actor tokenizers) {
  if (config.placement == actor_placement::scheduler_pool)
    return sys.spawn(supervisor_behavior, std::move(config), std::move(monitor),
                     std::move(tokenizers));
  return sys.spawn<caf::detached>(supervisor_behavior, std::move(config), std::move(monitor), std::move(tokenizers));
}

}  // namespace adapterd::actors
