#include "actors/core/eviction_plan.hpp"

#include <algorithm>

namespace adapterd::actors {

std::optional<std::vector<std::string>> plan_eviction(const std::vector<resident>& tier,
                                                      size_t budget, size_t need,
                                                      const std::set<std::string>& keep) {
  if (budget == 0)
    return std::vector<std::string>{};
  size_t used = 0;
  for (const auto& r : tier)
    used += r.bytes;
  if (need > budget)
    return std::nullopt;
  std::vector<const resident*> order;
  for (const auto& r : tier)
    if (!keep.count(r.key))
      order.push_back(&r);
  // Adapters before models; least recently used first within each.
  std::stable_sort(order.begin(), order.end(), [](const resident* a, const resident* b) {
    if (a->is_model != b->is_model)
      return !a->is_model;
    return a->last_used < b->last_used;
  });
  std::vector<std::string> plan;
  std::set<std::string> gone;
  for (const auto* r : order) {
    if (used + need <= budget)
      break;
    if (gone.count(r->key))
      continue;
    plan.push_back(r->key);
    gone.insert(r->key);
    used -= r->bytes;
    if (r->is_model)  // its adapters go with it
      for (const auto& a : tier)
        if (!a.is_model && a.owner == r->key && !gone.count(a.key)) {
          gone.insert(a.key);
          used -= a.bytes;
        }
  }
  if (used + need > budget)
    return std::nullopt;
  return plan;
}

}  // namespace adapterd::actors
