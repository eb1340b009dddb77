#include "actors/gpu_owner_actor.hpp"

#include <chrono>

#include <spdlog/spdlog.h>

#include "actors/error_mapping.hpp"
#include "model/memory_stats.hpp"

namespace adapterd::actors {

using messages::generate_reply;
using messages::generate_request;

struct gpu_owner_state {
  static inline const char* name = "gpu-owner";
  gpu_owner_state() = default;  // non-aggregate: CAF 0.17's C++20 state trap

  supervisor_actor supervisor;
  messages::janitor_actor janitor;
  messages::monitor_actor monitor;
  uint64_t service_seq = 0;
};

namespace {

using self_ptr = messages::gpu_owner_actor::stateful_pointer<gpu_owner_state>;

template <class Clock>
int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch())
    .count();
}

void report(self_ptr self, uint8_t kind, const std::string& id, uint64_t kv_bytes = 0) {
  self->send(self->state.monitor, messages::report_atom_v, messages::request_event{kind, id, kv_bytes});
}

constexpr int64_t retry_prefill_chunk = 16;

// Generates; on an allocation failure flushes the caches and retries once with a chunked
// prefill (less activation memory), else fails this request alone.
caf::expected<generate_reply> run(self_ptr self, const generate_request& req, const model_lease& lease) {
  model::generation_params params;
  params.max_new_tokens = req.max_new_tokens;
  params.sampling.temperature = req.temperature;
  params.sampling.top_p = req.top_p;
  params.sampling.top_k = req.top_k;
  params.sampling.repetition_penalty = req.repetition_penalty;
  if (req.has_seed)
    params.sampling.seed = req.seed;
  params.stop = req.stop;
  params.max_context_tokens = lease.kv_reserve_tokens;
  auto out = lease.model->generate(req.prompt, params, lease.adapter.get());
  if (!out && out.err().code == model::errc::out_of_memory) {
    spdlog::warn("gpu-owner {} out of memory ({}); flushing and retrying with chunked prefill",
                 req.request_id, out.err().message);
    model::flush_allocator_caches();
    params.prefill_chunk = retry_prefill_chunk;
    out = lease.model->generate(req.prompt, params, lease.adapter.get());
    report(self, out ? messages::request_event::oom_recovered : messages::request_event::oom_failed,
           req.request_id);
    if (!out)
      return make_failure(messages::errc::out_of_memory,
                          "out of memory even after flushing and a chunked prefill: " + out.err().message);
  }
  if (!out)
    return from_model_error(out.err());
  generate_reply r;
  r.request_id = req.request_id;
  r.generated_text = out->text;
  r.tokens_generated = static_cast<uint32_t>(out->output_ids.size());
  r.prompt_tokens = static_cast<uint32_t>(out->prompt_ids.size());
  r.finish_reason = out->finish_reason;
  r.model = lease.model_name;
  r.adapter = lease.adapter_name;
  r.device = lease.model->device();
  r.generate_ms = out->prefill_ms + out->decode_ms;
  return r;
}

// Post-request cleanup, then the answer: as with the seed's `finally`, a client gets its
// answer once memory is cleaned up, failed requests included, and the next request waits
// for both. Requests between node-local actors that always answer carry no timeout: CAF
// 0.17 keeps a timeout entry per request until it expires, which made memory grow.
template <class Answer>
void cleanup_then(self_ptr self, const std::string& id, Answer answer) {
  self->request(self->state.janitor, caf::infinite, messages::cleanup_atom_v,
                messages::cleanup_request{id, "after_request", "flush"})
    .await([answer](const messages::cleanup_reply&) mutable { answer(); },
           [id, answer](const caf::error& e) mutable {
             spdlog::warn("gpu-owner {} post-request cleanup failed: {}", id, caf::to_string(e));
             answer();
           });
}

messages::gpu_owner_actor::behavior_type gpu_owner_behavior(
  messages::gpu_owner_actor::stateful_pointer<gpu_owner_state> self, supervisor_actor supervisor,
  messages::janitor_actor janitor, messages::monitor_actor monitor) {
  self->state.supervisor = std::move(supervisor);
  self->state.janitor = std::move(janitor);
  self->state.monitor = std::move(monitor);
  return {
    [=](messages::generate_atom, generate_request& req) -> caf::result<generate_reply> {
      auto rp = self->make_response_promise<generate_reply>();
      auto seq = ++self->state.service_seq;
      auto started_us = now_us<std::chrono::steady_clock>();
      auto started_wall_us = now_us<std::chrono::system_clock>();
      report(self, messages::request_event::started, req.request_id);
      acquire_request acq{req.request_id, req.base_model, req.adapter_path, req.prefer_cpu};
      // await: no other request starts until this one has been answered and cleaned up.
      self->request(self->state.supervisor, caf::infinite, messages::acquire_atom_v, acq)
        .await(
          [=](const model_lease& lease) mutable {
            caf::expected<generate_reply> reply = make_failure(messages::errc::internal, "not run");
            try {
              reply = run(self, req, lease);
            } catch (const std::exception& e) {  // never let the device owner die of one request
              reply = make_failure(messages::errc::internal, e.what());
            }
            if (reply) {
              reply->queue_ms = static_cast<double>(started_us - req.received_at_us) / 1000.0;
              reply->load_ms = lease.load_ms;
              reply->arrival_seq = req.arrival_seq;
              reply->service_seq = seq;
              reply->started_at_us = started_wall_us;
              reply->finished_at_us = now_us<std::chrono::system_clock>();
              spdlog::info("gpu-owner {} generated {} tokens in {:.1f} ms", req.request_id,
                           reply->tokens_generated, reply->generate_ms);
              report(self, messages::request_event::finished, req.request_id,
                     lease.model->kv_cache_bytes(reply->prompt_tokens + reply->tokens_generated));
            } else {
              spdlog::warn("gpu-owner {} failed: {}", req.request_id, to_failure(reply.error()).message);
              report(self, messages::request_event::failed, req.request_id);
            }
            cleanup_then(self, req.request_id, [rp, reply]() mutable {
              if (reply)
                rp.deliver(std::move(*reply));
              else
                rp.deliver(reply.error());
            });
          },
          [=](const caf::error& e) mutable {
            spdlog::warn("gpu-owner {} no model: {}", req.request_id, to_failure(e).message);
            report(self, messages::request_event::failed, req.request_id);
            cleanup_then(self, req.request_id, [rp, e]() mutable { rp.deliver(e); });
          });
      return rp;
    },
  };
}

}  // namespace

messages::gpu_owner_actor spawn_gpu_owner(caf::actor_system& sys, supervisor_actor supervisor,
                                          messages::janitor_actor janitor,
                                          messages::monitor_actor monitor) {
  return sys.spawn<caf::detached>(gpu_owner_behavior, std::move(supervisor), std::move(janitor),
                                  std::move(monitor));
}

}  // namespace adapterd::actors
