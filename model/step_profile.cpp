#include "model/step_profile.hpp"

namespace adapterd::model {

namespace {
std::atomic<bool> enabled{false};
step_profile sums;
}  // namespace

void enable_step_profile(bool on) {
  enabled.store(on, std::memory_order_relaxed);
}

bool step_profile_enabled() {
  return enabled.load(std::memory_order_relaxed);
}

step_profile take_step_profile() {
  auto out = sums;
  sums = step_profile{};
  return out;
}

void add_step_time(step_phase phase, double seconds) {
  switch (phase) {
    case step_phase::matrices: sums.matrices_s += seconds; break;
    case step_phase::attention: sums.attention_s += seconds; break;
    case step_phase::lora: sums.lora_s += seconds; break;
    case step_phase::other: sums.other_s += seconds; break;
    case step_phase::sampling: sums.sampling_s += seconds; break;
  }
}

void count_step() {
  if (step_profile_enabled())
    ++sums.steps;
}

}  // namespace adapterd::model
