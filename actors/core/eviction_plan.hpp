#pragma once
// Which resident weights to give up so that a new load fits a memory budget: adapters
// first, least recently used first; then base models other than the ones to keep, each
// taking its adapters along. Pure logic, so that the supervisor's policy is testable
// without models or actors.
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace adapterd::actors {

struct resident {
  std::string key;
  bool is_model = false;
  std::string owner;  // adapters: the key of their base model
  size_t bytes = 0;
  uint64_t last_used = 0;
};

/// The keys to evict, in order, so that used + `need` <= `budget`; an empty plan when it
/// already fits; nullopt when it cannot fit even with everything evictable gone. A
/// budget of 0 means unlimited.
std::optional<std::vector<std::string>> plan_eviction(const std::vector<resident>& tier,
                                                      size_t budget, size_t need,
                                                      const std::set<std::string>& keep);

}  // namespace adapterd::actors
