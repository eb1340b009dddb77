// adapterd-basp-probe HOST PORT: connects to a node port the way a plain (non-TLS) CAF
// node would, and says whether it got an actor. Exit 0: connected; 1: refused; 2: usage.
// The e2e tests use it to show that a node without the cluster's certificate is shut out.
#include <chrono>
#include <cstdio>
#include <set>
#include <string>

#include "caf/actor_system.hpp"
#include "caf/actor_system_config.hpp"
#include "caf/io/middleman.hpp"
#include "caf/scoped_actor.hpp"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: adapterd-basp-probe HOST PORT\n");
    return 2;
  }
  caf::actor_system_config cfg;
  cfg.load<caf::io::middleman>();
  cfg.set("middleman.app-identifier", "adapterd");
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  int code = 1;
  self->request(sys.middleman().actor_handle(), std::chrono::seconds(5), caf::connect_atom_v, std::string(argv[1]),
                static_cast<uint16_t>(std::stoi(argv[2])))
    .receive(
      [&](const caf::node_id&, caf::strong_actor_ptr& ptr, const std::set<std::string>&) {
        std::printf(ptr ? "connected\n" : "refused: nothing published\n");
        code = ptr ? 0 : 1;
      },
      [&](const caf::error& e) { std::printf("refused: %s\n", caf::to_string(e).c_str()); });
  std::fflush(stdout);
  std::_Exit(code);  // a half-open handshake must not hold the exit
}
