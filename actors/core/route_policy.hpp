#pragma once
// Which worker a router sends a request to, as a pure function of what it knows.
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

namespace adapterd::actors {

struct route_candidate {
  bool up = false;
  bool excluded = false;       // already failed this request
  uint32_t load = 0;           // its queue + running sequences (or what this router sent, if more)
  uint32_t max_batch_size = 1;
  bool holds_model = false;    // the request's base model is resident there
  bool holds_adapter = false;  // the request's adapter is resident there (false when none asked)
  uint64_t budget_free_bytes = std::numeric_limits<uint64_t>::max();
  uint64_t bytes_needed = 0;   // what loading the weights it lacks would take, where known
  uint64_t routed = 0;         // requests sent there so far: the last tie-breaker
};

/// The index of the worker to use, or none when no worker can take the request.
/// Eligible: up, not excluded, and holding the weights or with room in its budget for
/// them. Among those: a worker with a free batch slot before a full one; then the most
/// weights already held (affinity), counted only for workers whose load is within a
/// quarter batch (at least 1) of the least loaded; then the least loaded; then the least
/// used.
std::optional<size_t> pick_route(const std::vector<route_candidate>& nodes);

}  // namespace adapterd::actors
