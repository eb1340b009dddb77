#include "actors/service_config.hpp"

namespace adapterd::actors {

const char* to_string(cleanup_policy p) {
  switch (p) {
    case cleanup_policy::flush: return "flush";
    case cleanup_policy::unload: return "unload";
    case cleanup_policy::off: return "off";
  }
  return "flush";
}

}  // namespace adapterd::actors

namespace adapterd::actors {

const char* to_string(node_role r) {
  switch (r) {
    case node_role::standalone: return "standalone";
    case node_role::worker: return "worker";
    case node_role::router: return "router";
  }
  return "standalone";
}

}  // namespace adapterd::actors
