// The watchdog reports a core actor that goes down, except in an orderly stop.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "caf/actor_system.hpp"
#include "caf/actor_system_config.hpp"
#include "caf/event_based_actor.hpp"
#include "caf/send.hpp"

#include "actors/watchdog_actor.hpp"

using namespace adapterd;

namespace {

caf::behavior idle_actor() {
  return {[](caf::unit_t) {}};
}

bool eventually(const std::function<bool()>& done) {
  for (int i = 0; i < 200 && !done(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return done();
}

}  // namespace

TEST_CASE("the watchdog calls out a core actor that dies, not one that is stopped", "[watchdog][hardening]") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto stopped = sys.spawn(idle_actor);
  auto killed = sys.spawn(idle_actor);
  std::mutex m;
  std::vector<std::string> reported;
  auto dog = actors::spawn_watchdog(sys, {{"janitor", stopped}, {"gpu-owner", killed}},
                                    [&](const std::string& name, const std::string&) {
                                      std::lock_guard<std::mutex> lock(m);
                                      reported.push_back(name);
                                    });
  caf::anon_send_exit(stopped, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(killed, caf::exit_reason::kill);
  CHECK(eventually([&] {
    std::lock_guard<std::mutex> lock(m);
    return !reported.empty();
  }));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  {
    std::lock_guard<std::mutex> lock(m);
    CHECK(reported == std::vector<std::string>{"gpu-owner"});
  }
  caf::anon_send_exit(dog, caf::exit_reason::user_shutdown);
}
