#include "actors/core/route_policy.hpp"

#include <algorithm>
#include <tuple>

namespace adapterd::actors {

std::optional<size_t> pick_route(const std::vector<route_candidate>& nodes) {
  auto eligible = [](const route_candidate& c) {
    return c.up && !c.excluded && c.bytes_needed <= c.budget_free_bytes;
  };
  std::optional<uint32_t> least;
  for (const auto& c : nodes)
    if (eligible(c) && (!least || c.load < *least))
      least = c.load;
  if (!least)
    return std::nullopt;
  // Affinity saves a load, but not at any price: a worker loaded well beyond the least
  // loaded one would make the request wait for more than the load costs.
  auto key = [&](const route_candidate& c) {
    bool full = c.load >= c.max_batch_size;
    bool close = c.load <= *least + std::max<uint32_t>(1, c.max_batch_size / 4);
    int affinity = close ? (c.holds_model ? 1 : 0) + (c.holds_adapter ? 1 : 0) : 0;
    return std::make_tuple(full, -affinity, c.load, c.routed);
  };
  std::optional<size_t> best;
  for (size_t i = 0; i < nodes.size(); ++i)
    if (eligible(nodes[i]) && (!best || key(nodes[i]) < key(nodes[*best])))
      best = i;
  return best;
}

}  // namespace adapterd::actors
