// The core actors (janitor, monitor, supervisor, gpu-owner) driven by CAF's deterministic
// test_coordinator: every message runs when the test says so, in virtual time, so ordering,
// cleanup after failures and health figures are checked without sleeps or races.
#include <catch2/catch.hpp>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "caf/actor_system.hpp"
#include "caf/actor_system_config.hpp"
#include "caf/event_based_actor.hpp"
#include "caf/scheduler/test_coordinator.hpp"
#include "caf/send.hpp"
#include "caf/typed_event_based_actor.hpp"

#include "actors/gpu_owner_actor.hpp"
#include "actors/janitor_actor.hpp"
#include "actors/monitor_actor.hpp"
#include "actors/supervisor_actor.hpp"
#include "actors/tokenizer_pool_actor.hpp"
#include "messages/interfaces.hpp"
#include "model/io/tiny_model.hpp"

using namespace adapterd;
using messages::cleanup_level;
using messages::cleanup_reason;

namespace {

struct deterministic {
  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scheduler::test_coordinator& sched;

  static caf::actor_system_config& init(caf::actor_system_config& c) {
    c.set("scheduler.policy", caf::atom("testing"));
    c.add_message_types<caf::id_block::adapterd>();
    return c;
  }
  deterministic()
      : sys(init(cfg)), sched(dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())) {}

  /// Asks `target` and runs every actor until all is quiet; the answer or the failure.
  template <class Reply, class Target, class... Ts>
  std::shared_ptr<std::variant<std::monostate, Reply, caf::error>> ask(const Target& target,
                                                                       Ts... xs) {
    auto out = std::make_shared<std::variant<std::monostate, Reply, caf::error>>();
    sys.spawn([=](caf::event_based_actor* self) {
      self->request(target, caf::infinite, xs...)
          .then([out](Reply& r) { *out = std::move(r); },
                [out](caf::error& e) { *out = std::move(e); });
    });
    sched.run();
    return out;
  }
};

/// What the fakes below were asked, in order.
struct calls {
  std::vector<std::string> seen;
};

// A supervisor that frees what it is told to, or fails when `fail_evictions` is set.
actors::supervisor_actor::behavior_type fake_supervisor(actors::supervisor_actor::pointer,
                                                        std::shared_ptr<calls> log,
                                                        bool fail_evictions) {
  return {
      [](messages::acquire_atom,
         const actors::acquire_request&) -> caf::result<actors::model_lease> {
        return caf::make_error(messages::errc::unavailable, "no models here");
      },
      [=](messages::evict_atom, cleanup_level level) -> caf::result<messages::freed_report> {
        log->seen.push_back("evict " + messages::to_string(level));
        if (fail_evictions)
          return caf::make_error(messages::errc::internal, "eviction failed");
        messages::freed_report freed;
        freed.adapters = 2;
        freed.models = level == cleanup_level::all ? 1 : 0;
        return freed;
      },
      [=](messages::idle_atom, uint32_t) { return messages::freed_report{}; },
      [](messages::tokenize_atom, const messages::tokenize_request&) {
        return messages::tokenize_reply{};
      },
      [](messages::detokenize_atom, const messages::detokenize_request&) {
        return messages::detokenize_reply{};
      },
      [](messages::adapters_atom, const messages::adapter_request&) {
        return messages::adapter_reply{};
      },
  };
}

// A monitor that only records the flushes it is told of.
messages::monitor_actor::behavior_type recording_monitor(std::shared_ptr<calls> log) {
  return {
      [](messages::report_atom, const messages::request_event&) {},
      [](messages::report_atom, const messages::model_state&) {},
      [=](messages::report_atom, const messages::flush_event& f) {
        log->seen.push_back("flush " + messages::to_string(f.reason));
      },
      [](messages::report_atom, const messages::batch_state&) {},
      [](messages::report_atom, const messages::job_list&) {},
      [](messages::health_atom) { return messages::health_report{}; },
      [](messages::console_atom, const messages::console_request&) {
        return messages::console_feed{};
      },
      [](caf::tick_atom) {},
  };
}

actors::service_config scheduled_config() {
  actors::service_config c;
  c.placement = actors::actor_placement::scheduler_pool;
  return c;
}

template <class Reply>
const Reply& answer(const std::shared_ptr<std::variant<std::monostate, Reply, caf::error>>& out) {
  REQUIRE(std::holds_alternative<Reply>(*out));
  return std::get<Reply>(*out);
}

}  // namespace

TEST_CASE_METHOD(deterministic,
                 "janitor: a flush, evictions by level, and a flush after a failed eviction",
                 "[actors][janitor]") {
  auto log = std::make_shared<calls>();
  auto supervisor = sys.spawn(fake_supervisor, log, false);
  auto monitor = sys.spawn(recording_monitor, log);
  auto janitor = actors::spawn_janitor(sys, scheduled_config(), supervisor, monitor);
  sched.run();

  auto flushed = ask<messages::cleanup_reply>(
      janitor, messages::cleanup_atom_v,
      messages::cleanup_request{"a", cleanup_reason::manual, cleanup_level::flush, ""});
  CHECK(answer(flushed).status == "success");
  CHECK(answer(flushed).level == cleanup_level::flush);
  // A flush evicts nothing but the cached prompt prefixes: the supervisor is asked first.
  CHECK(log->seen == std::vector<std::string>{"evict flush", "flush manual"});

  auto all = ask<messages::cleanup_reply>(
      janitor, messages::cleanup_atom_v,
      messages::cleanup_request{"b", cleanup_reason::manual, cleanup_level::all, ""});
  CHECK(answer(all).freed.adapters == 2);
  CHECK(answer(all).model_unloaded);
  // The eviction comes first, then the flush that returns what it freed.
  CHECK(log->seen
        == std::vector<std::string>{"evict flush", "flush manual", "evict all", "flush manual"});

  auto failing = sys.spawn(fake_supervisor, log, true);
  auto janitor2 = actors::spawn_janitor(sys, scheduled_config(), failing, monitor);
  sched.run();
  log->seen.clear();
  auto after_failure = ask<messages::cleanup_reply>(
      janitor2, messages::cleanup_atom_v,
      messages::cleanup_request{"c", cleanup_reason::manual, cleanup_level::adapters, ""});
  CHECK(answer(after_failure).status == "success");  // the flush still ran
  CHECK(answer(after_failure).freed.adapters == 0);
  CHECK(log->seen == std::vector<std::string>{"evict adapters", "flush manual"});
  for (const auto& a :
       {caf::actor_cast<caf::actor>(janitor), caf::actor_cast<caf::actor>(janitor2)})
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  sched.run();
}

TEST_CASE_METHOD(deterministic,
                 "janitor: with --cleanup-policy=off the after-request cleanup does nothing",
                 "[actors][janitor]") {
  auto log = std::make_shared<calls>();
  auto config = scheduled_config();
  config.policy = actors::cleanup_policy::off;
  auto janitor = actors::spawn_janitor(sys, config, sys.spawn(fake_supervisor, log, false),
                                       sys.spawn(recording_monitor, log));
  auto r = ask<messages::cleanup_reply>(
      janitor, messages::cleanup_atom_v,
      messages::cleanup_request{"a", cleanup_reason::after_request, cleanup_level::flush, ""});
  CHECK(answer(r).message == "Cleanup policy is off");
  CHECK(log->seen.empty());
  caf::anon_send_exit(janitor, caf::exit_reason::user_shutdown);
  sched.run();
}

TEST_CASE_METHOD(deterministic, "monitor: health figures add up what the others reported",
                 "[actors][monitor]") {
  auto monitor = actors::spawn_monitor(sys, actors::cleanup_policy::flush);
  using messages::request_event;
  for (auto kind : {request_event::finished, request_event::finished, request_event::failed})
    caf::anon_send(monitor, messages::report_atom_v, request_event{kind, "r"});
  caf::anon_send(monitor, messages::report_atom_v,
                 messages::flush_event{cleanup_reason::after_request, 1});
  messages::job_list jobs;
  jobs.jobs.resize(3);
  jobs.jobs[0].state = "running";
  jobs.jobs[1].state = "queued";
  jobs.jobs[2].state = "succeeded";
  caf::anon_send(monitor, messages::report_atom_v, jobs);
  sched.run();
  auto h = ask<messages::health_report>(monitor, messages::health_atom_v);
  CHECK(answer(h).status == "healthy");
  CHECK(answer(h).requests_served == 2);
  CHECK(answer(h).requests_failed == 1);
  CHECK(answer(h).flushes == 1);
  CHECK(answer(h).active_jobs == 2);
  caf::anon_send_exit(monitor, caf::exit_reason::user_shutdown);
  sched.run();
}

namespace {

struct tiny_service : deterministic {
  std::string dir = (std::filesystem::temp_directory_path() / "adapterd-core-actors-test").string();
  actors::service_config config = scheduled_config();
  std::shared_ptr<calls> log = std::make_shared<calls>();
  messages::monitor_actor monitor;
  actors::tokenizer_pool_actor tokenizers;
  actors::supervisor_actor supervisor;

  tiny_service() {
    std::filesystem::remove_all(dir);
    model::tiny_model_spec spec;
    spec.adapters = 1;
    REQUIRE(model::write_tiny_model(spec, dir + "/m", dir + "/a"));
    config.default_model = dir + "/m";
    config.model_roots = {dir};
    config.adapter_roots = {dir};
    config.device = "cpu";
    config.kv_reserve_tokens = 512;
    monitor = sys.spawn(recording_monitor, log);
    tokenizers = actors::spawn_tokenizer_pool(sys, 1, actors::actor_placement::scheduler_pool);
    supervisor = actors::spawn_supervisor(sys, config, monitor, tokenizers);
    sched.run();
  }
  ~tiny_service() {
    for (const auto& a :
         {caf::actor_cast<caf::actor>(supervisor), caf::actor_cast<caf::actor>(tokenizers)})
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    sched.run();
    std::filesystem::remove_all(dir);
  }
};

}  // namespace

TEST_CASE_METHOD(tiny_service,
                 "supervisor: adapters register, list, unload, and eviction frees them",
                 "[actors][supervisor]") {
  using messages::adapter_action;
  auto loaded = ask<messages::adapter_reply>(
      supervisor, messages::adapters_atom_v,
      messages::adapter_request{"r", adapter_action::load, "pirate", dir + "/a"});
  REQUIRE(answer(loaded).adapters.size() == 1);
  CHECK(answer(loaded).adapters[0].id == "pirate");
  CHECK(answer(loaded).adapters[0].tier != "");  // resident once registered

  auto freed =
      ask<messages::freed_report>(supervisor, messages::evict_atom_v, cleanup_level::adapters);
  CHECK(answer(freed).adapters == 1);
  auto listed =
      ask<messages::adapter_reply>(supervisor, messages::adapters_atom_v,
                                   messages::adapter_request{"r", adapter_action::list, "", ""});
  REQUIRE(answer(listed).adapters.size() == 1);
  CHECK(answer(listed).adapters[0].tier == "");  // still registered, no longer resident

  auto unloaded = ask<messages::adapter_reply>(
      supervisor, messages::adapters_atom_v,
      messages::adapter_request{"r", adapter_action::unload, "pirate", ""});
  CHECK(answer(unloaded).adapters.empty());
  auto missing = ask<messages::adapter_reply>(
      supervisor, messages::adapters_atom_v,
      messages::adapter_request{"r", adapter_action::unload, "pirate", ""});
  REQUIRE(std::holds_alternative<caf::error>(*missing));
  CHECK(std::get<caf::error>(*missing) == messages::errc::adapter_not_found);
}

TEST_CASE_METHOD(
    tiny_service,
    "gpu-owner: one at a time in arrival order, a failure in between, and a cleanup after each",
    "[actors][gpu_owner]") {
  auto janitor = actors::spawn_janitor(sys, config, supervisor, monitor);
  actors::scheduler_limits limits;
  limits.max_batch_size = 1;  // the seed's mode: strictly one after another
  actors::gpu_owner_config owner_config{supervisor, tokenizers, janitor, monitor, limits, {}};
  owner_config.placement = actors::actor_placement::scheduler_pool;
  auto owner = actors::spawn_gpu_owner(sys, owner_config);
  sched.run();

  auto order = std::make_shared<std::vector<std::string>>();
  auto ask_generation = [&](std::string id, std::string adapter) {
    messages::generate_request req;
    req.request_id = id;
    req.prompt = "hello " + id;
    req.max_new_tokens = 3;
    req.temperature = 0;
    req.adapter_path = std::move(adapter);
    sys.spawn([=](caf::event_based_actor* self) {
      self->request(owner, caf::infinite, messages::generate_atom_v, req)
          .then(
              [=](const messages::generate_reply& r) {
                order->push_back(id + " " + std::to_string(r.tokens_generated));
              },
              [=](const caf::error&) { order->push_back(id + " failed"); });
    });
  };
  ask_generation("first", "");
  ask_generation("broken", dir + "/no-such-adapter");
  ask_generation("third", "");
  sched.run();
  CHECK(*order == std::vector<std::string>{"first 3", "broken failed", "third 3"});
  // The janitor flushed after each request that ran, as the seed's finally did.
  auto flushes = std::count(log->seen.begin(), log->seen.end(), "flush after_request");
  CHECK(flushes >= 2);
  for (const auto& a : {caf::actor_cast<caf::actor>(owner), caf::actor_cast<caf::actor>(janitor)})
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  sched.run();
}
