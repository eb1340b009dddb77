#pragma once
// Places in a full batch for flows that have none. fair_order puts a quiet flow's request
// at the head of the queue, but with every place taken by a flood it still waits for one of
// the flood's sequences to finish: a whole generation. Instead the youngest sequence of the
// flow that holds the most places is paused (it keeps its KV and resumes, token for token,
// when a place frees), and the quiet request takes its place at the next step. A flood
// then only ever loses one place per quiet flow, and its work is delayed, never redone.
// Free of CAF and of the model, so that it can be tested alone.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace adapterd::actors {

/// A running sequence, as the policy sees it.
struct batch_place {
  std::string flow;
  int32_t priority = 0;      // lower is more urgent
  uint64_t service_seq = 0;  // admission order: higher is younger
  bool pausable = false;     // decoding (not in prefill, not finished, not preempted)
  bool paused = false;
};

/// Places in the step: the sequences that are not paused.
size_t active_places(const std::vector<batch_place>& running);

/// Whether a request of `flow` has no place in the batch (no running sequence, paused or
/// not, of its own): then it may take one from the flow that holds the most.
bool flow_without_place(const std::vector<batch_place>& running, const std::string& flow);

/// Which sequence to pause so that a waiting request of (`flow`, `priority`) gets a place
/// when `max_active` are taken: the youngest pausable one of the flow holding the most
/// active places (at least two), never one more urgent than the request. Nothing when the
/// request's flow runs already, or nobody may give way.
std::optional<size_t> place_to_free(const std::vector<batch_place>& running,
                                    const std::string& flow, int32_t priority, size_t max_active);

}  // namespace adapterd::actors
