#pragma once
// The gpu-owner's continuous-batching loop, free of CAF so that it can be tested alone.
// Requests wait by priority, then fairly across adapters and API keys (fair_order); the
// head one gets a model lease (the actor asks the supervisor); each step admits leased requests
// while the batch, the KV pool and the prefill budget allow, prefills them, then runs one decode
// step for every running sequence — mixed adapters in one pass — and hands back the ones that
// finished.
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "actors/core/fair_order.hpp"
#include "actors/core/fair_places.hpp"
#include "actors/core/model_lease.hpp"
#include "messages/batch.hpp"
#include "messages/errors.hpp"
#include "messages/generation.hpp"
#include "messages/health.hpp"

namespace adapterd::model {
class text_generation;
}

namespace adapterd::actors {

struct scheduler_limits {
  uint32_t max_batch_size = 16;      // sequences decoded together; 1: one at a time
  uint32_t max_queue = 256;          // requests waiting beyond the batch; more get `overloaded`
  int64_t max_prefill_tokens = 256;  // prompt tokens computed per step, in slices of prompts
  std::string default_model;         // its name (directory): requests naming it use no adapter
  int64_t max_step_tokens =
      0;  // rows per step, decode rows first, then prompt slices (0: no bound)
};

using generate_outcome = std::variant<messages::generate_reply, messages::failure>;

/// One request as the scheduler holds it.
struct pending_generation {
  messages::generate_request req;
  std::function<void(messages::stream_chunk)> on_chunk;  // set for streaming requests
  std::function<void(generate_outcome)> done;            // called exactly once
};

/// A request that left the scheduler, with its answer, for the caller to deliver.
struct finished_generation {
  pending_generation j;
  generate_outcome outcome;
};

/// The most prompt tokens a lease's model and KV reserve can take: longer prompts are
/// refused before they are encoded.
int64_t prompt_token_limit(const model_lease& lease);

class batch_scheduler {
 public:
  using clock = std::chrono::steady_clock;
  /// Request events for the monitor (messages::request_event kinds).
  using event_fn = std::function<void(uint8_t kind, const std::string& id, uint64_t kv_bytes)>;
  /// Returns the allocator's caches after an allocation failure, before the retry.
  using flush_fn = std::function<void()>;

  batch_scheduler(scheduler_limits limits, event_fn events, flush_fn flush);
  ~batch_scheduler();

  /// Queues a request; a full queue answers `overloaded` at once (returned, not queued).
  std::optional<finished_generation> enqueue(pending_generation j);
  /// Ends a request whose client went away: a waiting one now (returned), a running one at
  /// the next step. False when the id is unknown (already answered).
  bool cancel(const std::string& request_id, std::vector<finished_generation>& out);

  /// The waiting request that needs a lease next, when the batch could take it now; the
  /// caller acquires one and calls leased() or lease_failed(). One at a time: null while
  /// a lease is on its way.
  const messages::generate_request* start_lease();
  /// `prompt_ids`: the prompt already encoded (off this thread); without them, admission
  /// encodes it.
  void leased(const std::string& request_id, model_lease lease,
              std::optional<std::vector<int32_t>> prompt_ids = std::nullopt);
  void lease_failed(const std::string& request_id, messages::failure why,
                    std::vector<finished_generation>& out);

  /// One step: expire timeouts, drop cancelled sequences, admit and prefill, decode one
  /// token for every running sequence, stream new text. Returns who finished.
  std::vector<finished_generation> step();

  /// Whether step() has anything to do now.
  bool has_work() const;
  /// Nothing runs, nothing is leased or being leased: the time for a post-request cleanup.
  bool idle() const;
  messages::batch_state state() const;

 private:
  struct waiting_generation;
  struct running_generation;

  void admit(std::vector<finished_generation>& out);
  std::vector<batch_place> places() const;
  bool has_place_for(const waiting_generation& w);  // pauses a flood's sequence when fair
  void resume_paused();
  struct prompt_slice {
    running_generation* r;
    int64_t tokens;
  };
  std::vector<prompt_slice> plan_prefill();  // which prompts get how much, within the budget
  void prefill(const std::vector<prompt_slice>& plan, std::vector<finished_generation>& out);
  void sliced(running_generation& r, int64_t tokens, bool prompt_done);  // a slice's figures
  void make_room(std::vector<finished_generation>& out);  // KV blocks for the next step
  std::vector<running_generation*> stepping() const;
  static std::vector<model::generation*> generations_of(
      const std::vector<running_generation*>& rows);
  void decode(std::vector<finished_generation>& out);
  void stepped(const std::vector<running_generation*>& rows);  // a decode step's figures
  // Prompt slices and the decode rows in one pass (model::base_model::step_with_prompts);
  // false when the model cannot, or the pass failed: nothing advanced, do them apart.
  bool step_together(const std::vector<prompt_slice>& plan, std::vector<finished_generation>& out);
  void expire(std::vector<finished_generation>& out);
  void finish(running_generation& r, std::vector<finished_generation>& out);
  void stream_text();
  static void send_chunk(running_generation& r);
  void fail(pending_generation j, messages::errc code, std::string message,
            std::vector<finished_generation>& out);
  std::optional<pending_generation> take_waiting(const std::string& request_id);

  scheduler_limits limits_;
  event_fn events_;
  flush_fn flush_;
  std::deque<std::unique_ptr<waiting_generation>> waiting_;
  std::vector<std::unique_ptr<running_generation>> running_;
  bool leasing_ = false;
  std::string leasing_id_;  // the waiting request whose lease is on its way
  fair_order order_;
  uint64_t admitted_ = 0;
  messages::batch_state stats_;
  std::weak_ptr<const model::base_model> pool_model_;  // the model whose KV pool /health shows
};

}  // namespace adapterd::actors
