#include "actors/gpu_owner_actor.hpp"

#include <chrono>
#include <tuple>

#include "caf/send.hpp"

#include <spdlog/spdlog.h>

#include "actors/core/batch_scheduler.hpp"
#include "actors/error_mapping.hpp"
#include "actors/handler_firewall.hpp"
#include "model/memory_stats.hpp"

namespace adapterd::actors {

using messages::generate_reply;
using messages::generate_request;

struct gpu_owner_state {
  static inline const char* name = "gpu-owner";
  gpu_owner_state() = default;  // non-aggregate: CAF 0.17's C++20 state trap

  supervisor_actor supervisor;
  tokenizer_pool_actor tokenizers;
  messages::janitor_actor janitor;
  messages::monitor_actor monitor;
  std::unique_ptr<batch_scheduler> scheduler;
  bool step_queued = false;
  messages::batch_state reported;
  std::chrono::steady_clock::time_point reported_at;
  training_settings training;
  training_jobs jobs;
  bool train_queued = false;
  double generate_s = 0, train_s = 0;  // device time since generation last went idle
};

namespace {

using self_ptr = messages::gpu_owner_actor::stateful_pointer<gpu_owner_state>;

void kick(self_ptr self);

// What /health shows changed (or a while passed): tell the monitor.
void report_batch(self_ptr self) {
  auto now = self->state.scheduler->state();
  auto& old = self->state.reported;
  auto visible = [](const messages::batch_state& s) {
    return std::make_tuple(s.waiting, s.running, s.last_batch_size, s.kv_pool_used,
                           s.kv_blocks_used, s.kv_blocks_cached, s.prefix_lookups, s.rejected,
                           s.cancelled, s.timed_out, s.preempted);
  };
  // Also every 32 steps, and every half second while stepping: the console's tokens/s
  // wants a fresh count every second or so.
  const auto at = std::chrono::steady_clock::now();
  const bool due =
      now.steps >= old.steps + 32
      || (now.steps > old.steps && at - self->state.reported_at >= std::chrono::milliseconds(500));
  if (visible(now) == visible(old) && !due)
    return;
  old = now;
  self->state.reported_at = at;
  self->send(self->state.monitor, messages::report_atom_v, now);
}

void deliver_now(std::vector<finished_generation>& done) {
  for (auto& f : done)
    f.j.done(std::move(f.outcome));
  done.clear();
}

// Answers: when the batch has emptied, after the post-request cleanup (as the seed's
// `finally` did: a client gets its answer once memory is cleaned up, and the next
// request waits for both); mid-batch at once, since a flush then would free nothing.
// Requests between node-local actors that always answer carry no timeout: CAF 0.17
// keeps a timeout entry per request until it expires, which made memory grow.
void deliver(self_ptr self, std::vector<finished_generation> done) {
  if (done.empty())
    return;
  if (!self->state.scheduler->idle())
    return deliver_now(done);
  auto id = done.front().j.req.request_id;
  auto shared = std::make_shared<std::vector<finished_generation>>(std::move(done));
  self->request(self->state.janitor, caf::infinite, messages::cleanup_atom_v,
                messages::cleanup_request{id, messages::cleanup_reason::after_request,
                                          messages::cleanup_level::flush, ""})
      .await([shared](const messages::cleanup_reply&) { deliver_now(*shared); },
             [shared, id](const caf::error& e) {
               spdlog::warn("gpu-owner {} post-request cleanup failed: {}", id, caf::to_string(e));
               deliver_now(*shared);
             });
}

// Asks the supervisor for the model (and adapter) of the next request that can join.
void lease_next(self_ptr self) {
  const auto* req = self->state.scheduler->start_lease();
  if (req == nullptr)
    return;
  acquire_request acq{req->request_id, req->base_model, req->adapter_path, req->prefer_cpu};
  auto id = req->request_id;
  auto failed = [self, id](const caf::error& e) {
    auto why = to_failure(e);
    spdlog::warn("gpu-owner {} refused before its first step: {}", id, why.message);
    std::vector<finished_generation> done;
    self->state.scheduler->lease_failed(id, why, done);
    deliver(self, std::move(done));
    kick(self);
  };
  // The prompt is encoded by the tokenizer pool, while this actor goes on stepping the
  // running batch: a long prompt never freezes the other streams.
  encode_job prompt{id, nullptr, req->prompt, req->chat, req->tools, 0};
  auto given_ids = req->prompt_ids;  // a prompt of token ids needs no encoding
  self->request(self->state.supervisor, caf::infinite, messages::acquire_atom_v, std::move(acq))
      .then(
          [=](model_lease& lease) mutable {
            if (!given_ids.empty()) {  // begin() checks them against the vocabulary and context
              self->state.scheduler->leased(id, std::move(lease), std::move(given_ids));
              return kick(self);
            }
            prompt.model = lease.model;
            prompt.max_tokens = prompt_token_limit(lease);
            self->request(self->state.tokenizers, caf::infinite, messages::encode_atom_v,
                          std::move(prompt))
                .then(
                    [=](encoded_prompt& encoded) mutable {
                      self->state.scheduler->leased(id, std::move(lease), std::move(encoded.ids));
                      kick(self);
                    },
                    failed);
          },
          failed);
}

// Every handler ends here. One step message in the mailbox at a time: requests that arrive
// meanwhile queue behind it and join at the next step.
void kick(self_ptr self) {
  auto& st = self->state;
  report_batch(self);
  lease_next(self);
  bool generating = st.scheduler->has_work();
  if (!generating)
    st.generate_s = st.train_s = 0;
  // Training gets the device when generation has none, else only its share of the time.
  if (st.jobs.has_work() && !st.train_queued
      && (!generating || st.train_s <= st.training.device_share * (st.generate_s + st.train_s))) {
    st.train_queued = true;
    self->send(self, messages::train_step_atom_v);
  }
  if (st.step_queued || !generating)
    return;
  st.step_queued = true;
  self->send(self, messages::step_atom_v);
}

void report_jobs(self_ptr self) {
  self->send(self->state.monitor, messages::report_atom_v, messages::job_list{self->state.jobs.list()});
}

void run_train_step(self_ptr self) {
  auto& st = self->state;
  st.train_queued = false;
  auto started = std::chrono::steady_clock::now();
  auto finished = st.jobs.step();
  st.train_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (finished && finished->state == "succeeded") {
    // Servable at once: the supervisor registers the adapter under its id.
    auto id = finished->id;
    self->request(st.supervisor, caf::infinite, messages::adapters_atom_v,
                  messages::adapter_request{id, messages::adapter_action::load,
                                            finished->adapter_id, finished->adapter_path})
        .then([self](const messages::adapter_reply&) { report_jobs(self); },
              [self, id](const caf::error& e) {
                self->state.jobs.registration_failed(id, to_failure(e).message);
                report_jobs(self);
              });
  }
  report_jobs(self);  // /health's active_jobs and each job's progress
  kick(self);
}

void run_step(self_ptr self) {
  self->state.step_queued = false;
  std::vector<finished_generation> done;
  auto started = std::chrono::steady_clock::now();
  try {
    done = self->state.scheduler->step();
  } catch (const std::exception& e) {  // never let the device owner die of one step
    spdlog::error("gpu-owner step failed: {}", e.what());
  }
  self->state.generate_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  deliver(self, std::move(done));
  kick(self);
}

messages::gpu_owner_actor::behavior_type gpu_owner_behavior(self_ptr self, gpu_owner_config config) {
  self->state.supervisor = std::move(config.supervisor);
  self->state.tokenizers = std::move(config.tokenizers);
  self->state.janitor = std::move(config.janitor);
  self->state.monitor = std::move(config.monitor);
  self->state.training = std::move(config.training);
  self->state.jobs = training_jobs(self->state.training.max_pending_jobs);
  auto events = [self](uint8_t kind, const std::string& id, uint64_t kv_bytes) {
    self->send(self->state.monitor, messages::report_atom_v, messages::request_event{kind, id, kv_bytes});
  };
  auto flush = [] { model::flush_allocator_caches(); };
  self->state.scheduler = std::make_unique<batch_scheduler>(config.limits, events, flush);
  self->state.reported = self->state.scheduler->state();
  self->send(self->state.monitor, messages::report_atom_v, self->state.reported);
  return guarded_behavior<messages::gpu_owner_actor::behavior_type>(
      "gpu-owner",
      [=](messages::generate_atom, generate_request& req) -> caf::result<generate_reply> {
        // Read the sender first: making the response promise takes it from the message.
        auto requester = caf::actor_cast<messages::chunk_sink>(self->current_sender());
        auto rp = self->make_response_promise<generate_reply>();
        pending_generation j;
        if (req.stream && requester) {
          // The requester is whoever asked (the http actor here, a router elsewhere); the
          // text goes to it as one-way messages, sent (not anonymously) so that a router can
          // tell they came from a worker it trusts.
          j.on_chunk = [self, requester](messages::stream_chunk c) {
            self->send(requester, messages::chunk_atom_v, std::move(c));
          };
        }
        j.done = [rp](generate_outcome outcome) mutable {
          if (auto* reply = std::get_if<generate_reply>(&outcome))
            rp.deliver(std::move(*reply));
          else
            rp.deliver(make_failure(std::get<messages::failure>(outcome).code,
                                    std::get<messages::failure>(outcome).message));
        };
        j.req = std::move(req);
        if (auto rejected = self->state.scheduler->enqueue(std::move(j))) {
          spdlog::warn("gpu-owner {} refused: {}", rejected->j.req.request_id,
                       std::get<messages::failure>(rejected->outcome).message);
          rejected->j.done(std::move(rejected->outcome));
        }
        kick(self);
        return rp;
      },
      [=](messages::cancel_atom, const std::string& id) {
        std::vector<finished_generation> done;
        self->state.scheduler->cancel(id, done);
        deliver_now(done);  // nobody waits for these answers
        kick(self);
      },
      [=](messages::step_atom) { run_step(self); },
      [=](messages::train_atom,
          const messages::train_request& req) -> caf::result<messages::job_status> {
        auto paths = resolve_training(req, self->state.training);
        if (auto* f = std::get_if<messages::failure>(&paths))
          return make_failure(f->code, f->message);
        auto submitted = self->state.jobs.submit(req, std::get<training_paths>(paths));
        if (auto* f = std::get_if<messages::failure>(&submitted))
          return make_failure(f->code, f->message);
        report_jobs(self);
        kick(self);
        return std::get<messages::job_status>(submitted);
      },
      [=](messages::jobs_atom,
          const messages::job_request& req) -> caf::result<messages::job_list> {
        auto& jobs = self->state.jobs;
        if (req.action == messages::job_action::list)
          return messages::job_list{jobs.list()};
        auto status =
            req.action == messages::job_action::cancel ? jobs.cancel(req.id) : jobs.get(req.id);
        if (!status)
          return make_failure(messages::errc::job_not_found, "no training job '" + req.id + "'");
        if (req.action == messages::job_action::cancel)
          report_jobs(self);
        return messages::job_list{{*status}};
      },
      [=](messages::train_step_atom) { run_train_step(self); });
}

}  // namespace

messages::gpu_owner_actor spawn_gpu_owner(caf::actor_system& sys, gpu_owner_config config) {
  if (config.placement == actor_placement::scheduler_pool)
    return sys.spawn(gpu_owner_behavior, std::move(config));
  return sys.spawn<caf::detached>(gpu_owner_behavior, std::move(config));
}

}  // namespace adapterd::actors
