#include "actors/route_policy.hpp"

#include <tuple>

namespace adapterd::actors {

std::optional<size_t> pick_route(const std::vector<route_candidate>& nodes) {
  std::optional<size_t> best;
  auto key = [](const route_candidate& c) {
    bool full = c.load >= c.max_batch_size;
    int affinity = (c.holds_model ? 1 : 0) + (c.holds_adapter ? 1 : 0);
    return std::make_tuple(full, -affinity, c.load, c.routed);
  };
  for (size_t i = 0; i < nodes.size(); ++i) {
    const auto& c = nodes[i];
    if (!c.up || c.excluded)
      continue;
    if (c.bytes_needed > c.budget_free_bytes)
      continue;
    if (!best || key(c) < key(nodes[*best]))
      best = i;
  }
  return best;
}

}  // namespace adapterd::actors
