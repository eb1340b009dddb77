#pragma once
// Where a decode step's time goes: matrices, attention, LoRA, the rest of the layers
// (norms, RoPE, KV writes, residuals) and sampling, summed while a bench program has it on.
// A server never turns it on: the hot path then pays one relaxed load per phase. Only one
// thread steps a model at a time (the gpu-owner, or a bench), so the sums are plain.
#include <atomic>
#include <chrono>
#include <cstdint>

namespace adapterd::model {

struct step_profile {
  double matrices_s = 0, attention_s = 0, lora_s = 0, other_s = 0, sampling_s = 0;
  uint64_t steps = 0;
};

enum class step_phase { matrices, attention, lora, other, sampling };

void enable_step_profile(bool on);
bool step_profile_enabled();
/// The sums since the last take, then zero.
step_profile take_step_profile();
void add_step_time(step_phase phase, double seconds);
void count_step();

/// Charges the time since the last mark to a phase; inert unless the profile is on.
class step_timer {
 public:
  step_timer() : on_(step_profile_enabled()) {
    if (on_)
      last_ = std::chrono::steady_clock::now();
  }
  void mark(step_phase phase) {
    if (!on_)
      return;
    const auto now = std::chrono::steady_clock::now();
    add_step_time(phase, std::chrono::duration<double>(now - last_).count());
    last_ = now;
  }

 private:
  bool on_;
  std::chrono::steady_clock::time_point last_;
};

}  // namespace adapterd::model
