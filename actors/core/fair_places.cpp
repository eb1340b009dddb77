#include "actors/core/fair_places.hpp"

#include <map>

namespace adapterd::actors {

size_t active_places(const std::vector<batch_place>& running) {
  size_t n = 0;
  for (const auto& p : running)
    n += p.paused ? 0 : 1;
  return n;
}

bool flow_without_place(const std::vector<batch_place>& running, const std::string& flow) {
  for (const auto& p : running)
    if (p.flow == flow)
      return false;
  return true;
}

std::optional<size_t> place_to_free(const std::vector<batch_place>& running,
                                    const std::string& flow, int32_t priority, size_t max_active) {
  if (max_active < 2 || active_places(running) < max_active || !flow_without_place(running, flow))
    return std::nullopt;
  std::map<std::string, size_t> held;
  for (const auto& p : running)
    if (!p.paused)
      ++held[p.flow];
  std::optional<size_t> victim;
  size_t victim_held = 1;  // a flow gives way only while it holds two places or more
  for (size_t i = 0; i < running.size(); ++i) {
    const auto& p = running[i];
    if (p.paused || !p.pausable || p.priority < priority)
      continue;
    const auto h = held[p.flow];
    if (h > victim_held
        || (victim && h == victim_held && p.service_seq > running[*victim].service_seq)) {
      victim = i;
      victim_held = h;
    }
  }
  return victim;
}

}  // namespace adapterd::actors
