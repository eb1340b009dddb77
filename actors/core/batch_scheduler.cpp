// Over 600 lines on purpose: one state machine (waiting, admitted, running, finished)
// whose steps share its invariants; split, each part would need all of them. What stands
// alone is outside already: the waiting order (fair_order), which sequence gives way to a
// flow without a place (fair_places), leases (model_lease), a request's output rules
// (output_rules).
#include "actors/core/batch_scheduler.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "actors/core/chat_prompt.hpp"
#include "actors/core/logprob_messages.hpp"
#include "actors/core/model_errors.hpp"
#include "actors/core/output_rules.hpp"
#include "model/prompt.hpp"
#include "model/text_generation.hpp"

namespace adapterd::actors {

using messages::errc;
using messages::request_event;

struct batch_scheduler::waiting_generation {
  pending_generation j;
  clock::time_point arrived;
  std::optional<model_lease> lease;
  std::optional<std::vector<int32_t>> prompt_ids;  // encoded once, however many steps it waits
  fair_order::ticket ticket;
  std::string flow;  // the adapter under the client's key (fair_order, fair_places)
};

struct batch_scheduler::running_generation {
  pending_generation j;
  model_lease lease;
  std::unique_ptr<model::text_generation> gen;
  clock::time_point arrived;
  clock::time_point admitted;
  int64_t admitted_wall_us = 0;
  uint64_t service_seq = 0;
  uint32_t batch_size_max = 0;
  bool cancelled = false;
  clock::time_point last_token_at;  // for the inter-token histogram
  int64_t prefill_slice_cap = 0;    // after running out of memory in prefill: smaller slices
  int64_t prefill_steps = 0;        // steps it has spent in prefill, computed or passed over
  size_t logprobs_sent = 0;         // output tokens whose logprobs went out in a chunk
  std::string flow;
  bool paused = false;  // gave its place to a flow that had none (fair_places); keeps its KV
  bool stepping() const {
    return !paused && !gen->finished() && !gen->prefilling() && !gen->tokens().preempted();
  }
};

// Streams the text released since the last chunk, with the logprobs of the tokens since
// (a token whose text is held back, such as half a character, still sends its logprob).
void batch_scheduler::send_chunk(running_generation& r) {
  if (!r.j.on_chunk)
    return;
  auto text = r.gen->take_text();
  auto calls = r.gen->take_tool_calls();
  const auto& logprobs = r.gen->tokens().output().logprobs;
  if (text.empty() && calls.empty() && r.logprobs_sent == logprobs.size())
    return;
  messages::stream_chunk c;
  c.request_id = r.j.req.request_id;
  c.text = std::move(text);
  c.tool_calls = tool_call_messages(calls);
  c.tokens = static_cast<uint32_t>(r.gen->tokens_generated());
  c.arrival_seq = r.j.req.arrival_seq;
  c.logprobs = logprob_messages(logprobs, r.logprobs_sent, r.lease.model->tok());
  r.logprobs_sent = logprobs.size();
  r.j.on_chunk(std::move(c));
}

namespace {

constexpr int64_t retry_prefill_chunk = 16;
// Steps a prompt may spend in prefill, passed over for shorter ones, before it goes first.
constexpr int64_t prefill_patience = 32;
// Prompt tokens a step computes even when its decode rows fill --max-step-tokens: new
// prompts still start while a full batch streams.
constexpr int64_t min_prompt_slice = 16;

int64_t wall_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double ms_between(batch_scheduler::clock::time_point a, batch_scheduler::clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// The adapter a request names before the supervisor resolves it ("" for none): its path,
// what follows "base:", or a model name other than the default one (an adapter id; another
// base model counts as one here, which only fairness and the gateway's lists see).
std::string adapter_named(const messages::generate_request& r, const std::string& default_model) {
  if (!r.adapter_path.empty())
    return r.adapter_path;
  if (auto colon = r.base_model.find(':'); colon != std::string::npos)
    return r.base_model.substr(colon + 1);
  return r.base_model == default_model ? "" : r.base_model;
}

// Requests that name the same model the same way share a batch.
std::string model_key(const messages::generate_request& r) {
  return r.base_model + (r.prefer_cpu ? "|cpu" : "|");
}

model::generation_params params_for(const messages::generate_request& req, int64_t max_context) {
  model::generation_params params;
  params.max_new_tokens = req.max_new_tokens;
  params.sampling.temperature = req.temperature;
  params.sampling.top_p = req.top_p;
  params.sampling.top_k = req.top_k;
  params.sampling.repetition_penalty = req.repetition_penalty;
  params.sampling.presence_penalty = req.presence_penalty;
  params.sampling.frequency_penalty = req.frequency_penalty;
  params.sampling.logit_bias.assign(req.logit_bias.begin(), req.logit_bias.end());
  if (req.has_seed)
    params.sampling.seed = req.seed;
  params.stop = req.stop;
  params.stop_ids = req.stop_token_ids;
  params.ignore_eos = req.ignore_eos;
  params.min_tokens = req.min_tokens;
  params.logprobs = req.logprobs;
  params.prompt_logprobs = req.prompt_logprobs;
  params.max_context_tokens = max_context;
  params.pooled_kv = true;
  params.defer_prefill = true;  // prefill() computes the prompt, a slice per step
  return params;
}

bool past_deadline(const messages::generate_request& req,
                   batch_scheduler::clock::time_point arrived,
                   batch_scheduler::clock::time_point now) {
  return req.timeout_s > 0 && std::chrono::duration<double>(now - arrived).count() > req.timeout_s;
}

std::string timeout_text(double seconds) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "no answer within timeout_s = %g s", seconds);
  return buf;
}

}  // namespace

batch_scheduler::batch_scheduler(scheduler_limits limits, event_fn events, flush_fn flush)
    : limits_(limits), events_(std::move(events)), flush_(std::move(flush)) {
  limits_.max_batch_size = std::max<uint32_t>(1, limits_.max_batch_size);
  stats_.max_batch_size = limits_.max_batch_size;
  stats_.max_queue = limits_.max_queue;
}

batch_scheduler::~batch_scheduler() = default;

void batch_scheduler::fail(pending_generation j, errc code, std::string message,
                           std::vector<finished_generation>& out) {
  events_(request_event::failed, j.req.request_id, 0);
  out.push_back({std::move(j), messages::failure{code, std::move(message)}});
}

std::optional<finished_generation> batch_scheduler::enqueue(pending_generation j) {
  if (waiting_.size() >= limits_.max_queue) {
    ++stats_.rejected;
    messages::failure why{errc::overloaded, "the queue is full (" + std::to_string(waiting_.size())
                                                + " waiting, max_queue "
                                                + std::to_string(limits_.max_queue)
                                                + "); try again shortly"};
    return finished_generation{std::move(j), why};
  }
  // The flow: the adapter under the client's key (a newline cannot be in either).
  auto flow = adapter_named(j.req, limits_.default_model) + "\n" + j.req.client;
  const auto ticket = order_.issue(flow, j.req.priority);
  // Its place: after every request that holds a lease or waits for one (they go in the
  // order their leases came), and after every one whose ticket goes first.
  auto at = waiting_.end();
  while (at != waiting_.begin()) {
    const auto& w = **std::prev(at);
    if (w.lease || (leasing_ && w.j.req.request_id == leasing_id_)
        || !fair_order::before(ticket, w.ticket))
      break;
    --at;
  }
  waiting_.insert(
      at, std::make_unique<waiting_generation>(waiting_generation{
              std::move(j), clock::now(), std::nullopt, std::nullopt, ticket, std::move(flow)}));
  return std::nullopt;
}

std::optional<pending_generation> batch_scheduler::take_waiting(const std::string& id) {
  for (auto it = waiting_.begin(); it != waiting_.end(); ++it)
    if ((*it)->j.req.request_id == id) {
      auto j = std::move((*it)->j);
      waiting_.erase(it);
      return j;
    }
  return std::nullopt;
}

bool batch_scheduler::cancel(const std::string& id, std::vector<finished_generation>& out) {
  // The choices of one request (OpenAI's n) run as "id", "id.1", "id.2", ...: a client
  // that goes away cancels them all.
  auto ours = [&](const std::string& other) {
    return other.compare(0, id.size(), id) == 0
           && (other.size() == id.size() || other[id.size()] == '.');
  };
  bool found = false;
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    if (!ours((*it)->j.req.request_id)) {
      ++it;
      continue;
    }
    auto j = std::move((*it)->j);
    it = waiting_.erase(it);
    ++stats_.cancelled;
    fail(std::move(j), errc::cancelled, "the client went away", out);
    found = true;
  }
  for (auto& r : running_)
    if (ours(r->j.req.request_id) && !r->cancelled) {
      r->cancelled = true;
      found = true;
    }
  return found;
}

const messages::generate_request* batch_scheduler::start_lease() {
  if (leasing_)
    return nullptr;
  std::optional<std::string> key;
  if (!running_.empty())
    key = model_key(running_.front()->j.req);
  const auto seats = places();
  const auto active = active_places(seats);
  size_t leased = 0;
  for (auto it = waiting_.begin(); it != waiting_.end(); ++it) {
    auto& w = *it;
    if (w->lease) {
      ++leased;
      if (!key)
        key = model_key(w->j.req);
      continue;
    }
    // The same model as what runs (a different one waits until the batch drains, so that
    // loading it never displaces weights in use).
    if (key && model_key(w->j.req) != *key)
      return nullptr;
    if (active + leased >= limits_.max_batch_size) {
      // Full: only a request of a flow without a place goes on, ahead of the rest, to take
      // one from the flood at the next step (fair_places).
      if (limits_.max_batch_size < 2 || !flow_without_place(seats, w->flow)
          || std::any_of(waiting_.begin(), it,
                         [&](const auto& v) { return v->lease && v->flow == w->flow; }))
        continue;
      auto item = std::move(w);
      waiting_.erase(it);
      waiting_.push_front(std::move(item));
      it = waiting_.begin();
    }
    leasing_ = true;
    leasing_id_ = (*it)->j.req.request_id;
    return &(*it)->j.req;
  }
  return nullptr;
}

void batch_scheduler::leased(const std::string& id, model_lease lease,
                             std::optional<std::vector<int32_t>> prompt_ids) {
  leasing_ = false;
  for (auto& w : waiting_)
    if (w->j.req.request_id == id) {
      w->lease = std::move(lease);
      if (prompt_ids)
        w->prompt_ids = std::move(prompt_ids);
      return;
    }
}

int64_t prompt_token_limit(const model_lease& lease) {
  auto context = lease.model->config().max_position_embeddings;
  return lease.kv_reserve_tokens > 0 ? std::min(context, lease.kv_reserve_tokens) : context;
}

void batch_scheduler::lease_failed(const std::string& id, messages::failure why,
                                   std::vector<finished_generation>& out) {
  leasing_ = false;
  if (auto j = take_waiting(id))
    fail(std::move(*j), why.code, std::move(why.message), out);
}

void batch_scheduler::expire(std::vector<finished_generation>& out) {
  auto now = clock::now();
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    if (past_deadline((*it)->j.req, (*it)->arrived, now)) {
      auto j = std::move((*it)->j);
      it = waiting_.erase(it);
      ++stats_.timed_out;
      auto seconds = j.req.timeout_s;
      fail(std::move(j), errc::timeout, timeout_text(seconds) + " (still queued)", out);
    } else {
      ++it;
    }
  }
  for (auto it = running_.begin(); it != running_.end();) {
    auto& r = **it;
    if (r.cancelled) {
      ++stats_.cancelled;
      spdlog::info("gpu-owner {} cancelled after {} tokens: the client went away",
                   r.j.req.request_id, r.gen->tokens_generated());
      fail(std::move(r.j), errc::cancelled, "the client went away", out);
      it = running_.erase(it);  // frees its KV range
    } else if (past_deadline(r.j.req, r.arrived, now)) {
      ++stats_.timed_out;
      auto seconds = r.j.req.timeout_s;
      fail(std::move(r.j), errc::timeout, timeout_text(seconds), out);
      it = running_.erase(it);
    } else {
      ++it;
    }
  }
}

void batch_scheduler::admit(std::vector<finished_generation>& out) {
  // Preempted sequences get their blocks back before anyone new is let in.
  if (std::any_of(running_.begin(), running_.end(),
                  [](const auto& r) { return r->gen->tokens().preempted(); }))
    return;
  resume_paused();
  while (!waiting_.empty() && waiting_.front()->lease && has_place_for(*waiting_.front())) {
    auto& w = *waiting_.front();
    const auto& model = *w.lease->model;
    if (!running_.empty() && running_.front()->lease.model != w.lease->model)
      break;  // another model: after this batch drains
    if (!w.prompt_ids) {
      auto encoded =
          model::encode_prompt(model.tok(), w.j.req.prompt, chat_messages_of(w.j.req.chat),
                               w.j.req.tools, prompt_token_limit(*w.lease));
      if (!encoded) {
        auto j = std::move(w.j);
        waiting_.pop_front();
        auto code = encoded.err().code == model::errc::context_overflow ? errc::context_overflow
                                                                        : errc::bad_request;
        fail(std::move(j), code, encoded.err().message, out);
        continue;
      }
      w.prompt_ids = std::move(*encoded);
    }
    const auto& ids = *w.prompt_ids;
    auto params = params_for(w.j.req, w.lease->kv_reserve_tokens);
    auto rules = output_rules_for(model, w.j.req);
    if (!rules) {
      auto j = std::move(w.j);
      waiting_.pop_front();
      fail(std::move(j), errc::bad_request, rules.err().message, out);
      continue;
    }
    params.constraint = rules->constraint;
    const auto prompt = static_cast<int64_t>(ids.size());
    // A sequence starts with blocks for its prompt and one token and grows a block at a
    // time (make_room). Admission leaves a block for each running sequence to grow into, so
    // a new one does not push an older one out at once.
    const auto needed = model.kv_tokens_needed(ids.size(), params);
    const auto now_needed =
        prompt + 1 + model::kv_block_tokens * static_cast<int64_t>(running_.size());
    if (needed > model.kv_pool_tokens() && model.kv_pool_tokens() > 0) {
      // Alone with the whole pool it could not finish: preempting others would not help.
      auto j = std::move(w.j);
      waiting_.pop_front();
      fail(std::move(j), errc::insufficient_memory,
           "the KV pool holds " + std::to_string(model.kv_pool_tokens())
               + " tokens; this request may need " + std::to_string(needed),
           out);
      continue;
    }
    if (needed > 0 && model.kv_pool_tokens() > 0 && !model.kv_pool_fits(now_needed)) {
      if (running_.empty()) {  // cannot happen with a pool of kv_reserve_tokens; never spin on it
        auto j = std::move(w.j);
        waiting_.pop_front();
        fail(std::move(j), errc::insufficient_memory,
             "the KV pool cannot hold " + std::to_string(prompt + 1) + " tokens", out);
        continue;
      }
      break;  // waits for running sequences to free their KV blocks
    }
    auto item = std::move(waiting_.front());
    waiting_.pop_front();
    order_.served(item->ticket);
    auto gen = model::text_generation::start(model, ids, params, item->lease->adapter.get(),
                                             std::move(rules->tools));
    if (!gen) {
      auto why = to_failure(gen.err());
      fail(std::move(item->j), why.code, std::move(why.message), out);
      continue;
    }
    stats_.kv_pool_tokens =
        model.kv_pool_tokens();  // the pool of the model in use, shown when idle too
    pool_model_ = item->lease->model;
    auto r = std::make_unique<running_generation>();
    r->j = std::move(item->j);
    r->lease = std::move(*item->lease);
    r->gen = std::move(*gen);
    r->arrived = item->arrived;
    r->admitted = clock::now();
    r->admitted_wall_us = wall_us();
    r->service_seq = ++admitted_;
    r->last_token_at = r->admitted;
    r->flow = std::move(item->flow);
    running_.push_back(std::move(r));
  }
}

std::vector<batch_place> batch_scheduler::places() const {
  std::vector<batch_place> seats;
  seats.reserve(running_.size());
  for (const auto& r : running_)
    seats.push_back({r->flow, r->j.req.priority, r->service_seq, r->stepping(), r->paused});
  return seats;
}

bool batch_scheduler::has_place_for(const waiting_generation& w) {
  auto seats = places();
  if (active_places(seats) < limits_.max_batch_size)
    return true;
  auto victim = place_to_free(seats, w.flow, w.j.req.priority, limits_.max_batch_size);
  if (!victim)
    return false;
  auto& r = *running_[*victim];
  r.paused = true;
  ++stats_.fair_pauses;
  spdlog::info("gpu-owner {} paused after {} tokens: its place goes to {}, whose flow had none",
               r.j.req.request_id, r.gen->tokens_generated(), w.j.req.request_id);
  return true;
}

// Paused sequences take free places back, oldest first, unless the head of the queue is a
// request of a flow without a place: that one goes first.
void batch_scheduler::resume_paused() {
  auto seats = places();
  auto active = active_places(seats);
  if (active >= limits_.max_batch_size)
    return;
  if (!waiting_.empty() && waiting_.front()->lease
      && flow_without_place(seats, waiting_.front()->flow))
    ++active;  // its place
  for (auto& r : running_) {
    if (active >= limits_.max_batch_size)
      break;
    if (!r->paused)
      continue;
    r->paused = false;
    ++active;
    spdlog::info("gpu-owner {} resumed: a place is free", r->j.req.request_id);
  }
}

std::vector<batch_scheduler::prompt_slice> batch_scheduler::plan_prefill() {
  // Prompts are computed in slices within the step's budget, so a long prompt takes several
  // steps and the running streams still get a token every step. The least work left goes
  // first: a short prompt, or one the prefix cache mostly covers, gets its first token
  // without waiting behind long ones (this is what keeps the mean time to first token
  // low). A prompt still in prefill after prefill_patience steps goes first, oldest first,
  // so that none waits without bound.
  std::vector<running_generation*> order;
  for (auto& r : running_)
    if (r->gen->prefilling()) {
      // KV that another sequence with the same start computed since this one began
      r->lease.model->adopt_cached_prefix(r->gen->tokens());
      ++r->prefill_steps;
      order.push_back(r.get());
    }
  auto overdue = [](const running_generation* r) { return r->prefill_steps > prefill_patience; };
  std::stable_sort(order.begin(), order.end(), [&](const auto* a, const auto* b) {
    if (overdue(a) != overdue(b))
      return overdue(a);
    return !overdue(a) && a->gen->prefill_left() < b->gen->prefill_left();
  });  // running_ is in admission order, which the stable sort keeps among equals
  int64_t budget = limits_.max_prefill_tokens;
  if (limits_.max_step_tokens > 0) {
    // the decode rows come first; prompts still get a little, so that none starves
    const auto decoding = static_cast<int64_t>(stepping().size());
    budget =
        std::min(budget, std::max(limits_.max_step_tokens - decoding,
                                  std::min<int64_t>(min_prompt_slice, limits_.max_step_tokens)));
  }
  std::vector<prompt_slice> plan;
  for (auto* r : order) {
    if (budget <= 0)
      break;
    auto slice = std::min(budget, r->gen->prefill_left());
    if (r->prefill_slice_cap > 0)
      slice = std::min(slice, r->prefill_slice_cap);
    plan.push_back({r, slice});
    budget -= slice;
  }
  return plan;
}

void batch_scheduler::sliced(running_generation& r, int64_t tokens, bool prompt_done) {
  stats_.prompt_tokens += static_cast<uint64_t>(tokens);
  if (prompt_done) {
    auto now = clock::now();  // the prompt's last slice picked the first token
    ++stats_.generated_tokens;
    stats_.ttft_s.observe(std::chrono::duration<double>(now - r.arrived).count());
    r.last_token_at = now;
  }
}

void batch_scheduler::prefill(const std::vector<prompt_slice>& plan,
                              std::vector<finished_generation>& out) {
  std::vector<running_generation*> failed;
  for (const auto& [item, planned] : plan) {
    auto& r = *item;
    const auto& model = *r.lease.model;
    auto slice = planned;
    auto done = model.prefill_some(r.gen->tokens(), slice);
    if (!done && done.err().code == model::errc::out_of_memory) {
      spdlog::warn(
          "gpu-owner {} out of memory in prefill ({}); flushing and retrying in smaller slices",
          r.j.req.request_id, done.err().message);
      flush_();
      r.prefill_slice_cap = retry_prefill_chunk;
      slice = std::min(slice, retry_prefill_chunk);
      done = model.prefill_some(r.gen->tokens(), slice);
      events_(done ? request_event::oom_recovered : request_event::oom_failed, r.j.req.request_id,
              0);
      if (!done)
        done = model::error{
            model::errc::out_of_memory,
            "out of memory even after flushing and a smaller prefill: " + done.err().message};
    }
    if (!done) {
      auto why = to_failure(done.err());
      fail(std::move(r.j), why.code, std::move(why.message), out);
      failed.push_back(item);
      continue;
    }
    sliced(r, slice, *done);
  }
  running_.erase(std::remove_if(running_.begin(), running_.end(),
                                [&](const auto& r) {
                                  return std::find(failed.begin(), failed.end(), r.get())
                                         != failed.end();
                                }),
                 running_.end());  // frees their KV blocks
}

void batch_scheduler::make_room(std::vector<finished_generation>& out) {
  if (running_.empty())
    return;
  const auto& model = *running_.front()->lease.model;
  // running_ is in admission order. Preempted sequences come back first, oldest first, as
  // far as blocks allow.
  for (auto it = running_.begin(); it != running_.end();) {
    auto& g = (*it)->gen->tokens();
    if (!g.preempted()) {
      ++it;
      continue;
    }
    auto failed = model.restore(g);
    if (!failed) {
      spdlog::info("gpu-owner {} resumed after preemption", (*it)->j.req.request_id);
      ++it;
      continue;
    }
    if (failed->code == model::errc::out_of_memory)
      break;  // no blocks yet: younger ones wait behind it
    auto why = to_failure(*failed);
    fail(std::move((*it)->j), why.code, why.message, out);
    it = running_.erase(it);
  }
  // Every sequence that steps needs a slot for its next token. When the pool has no block
  // for one, the youngest running sequence gives its blocks back (it is recomputed later,
  // mostly from the prefix cache) until the older one has its block. The oldest alone
  // always fits: no sequence may need more than the whole pool.
  auto youngest_running = [&]() -> running_generation* {
    for (auto r = running_.rbegin(); r != running_.rend(); ++r)
      if ((*r)->stepping())
        return r->get();
    return nullptr;
  };
  for (auto& r : running_) {
    auto& g = r->gen->tokens();
    if (!r->stepping())
      continue;
    while (!model.make_room(g)) {
      auto* victim = youngest_running();
      model.preempt(victim->gen->tokens());
      ++stats_.preempted;
      spdlog::info(
          "gpu-owner {} preempted after {} tokens: its KV blocks let an older sequence grow",
          victim->j.req.request_id, victim->gen->tokens_generated());
      if (victim == r.get())
        break;
    }
  }
}

std::vector<batch_scheduler::running_generation*> batch_scheduler::stepping() const {
  std::vector<running_generation*> rows;
  for (const auto& r : running_)
    if (r->stepping())
      rows.push_back(r.get());
  return rows;
}

std::vector<model::generation*> batch_scheduler::generations_of(
    const std::vector<running_generation*>& rows) {
  std::vector<model::generation*> batch;
  for (auto* r : rows)
    batch.push_back(&r->gen->tokens());
  return batch;
}

void batch_scheduler::stepped(const std::vector<running_generation*>& rows) {
  const auto n = static_cast<uint32_t>(rows.size());
  ++stats_.steps;
  stats_.step_rows += n;
  stats_.last_batch_size = n;
  for (auto& r : running_)
    r->batch_size_max = std::max(r->batch_size_max, n);
  stats_.batch_sizes.observe(n);
  auto now = clock::now();
  for (auto* r : rows) {
    stats_.itl_s.observe(std::chrono::duration<double>(now - r->last_token_at).count());
    r->last_token_at = now;
  }
  stats_.generated_tokens += n;
}

bool batch_scheduler::step_together(const std::vector<prompt_slice>& plan,
                                    std::vector<finished_generation>& out) {
  if (plan.empty())
    return false;
  make_room(out);
  const auto rows = stepping();
  const auto batch = generations_of(rows);
  std::vector<model::base_model::prompt_slice> slices;
  for (const auto& p : plan)
    slices.push_back({&p.r->gen->tokens(), p.tokens});
  const auto& model = *plan.front().r->lease.model;
  const auto start = clock::now();
  auto together = model.step_with_prompts(batch, slices);
  if (!together)
    return false;
  if (!*together) {
    spdlog::warn("gpu-owner a step of {} rows with {} prompt slices failed ({}); doing them apart",
                 rows.size(), plan.size(), together->err().message);
    return false;
  }
  // the pass's time, in the shares of prompt and decode rows
  const double seconds = std::chrono::duration<double>(clock::now() - start).count();
  int64_t prompt_rows = 0;
  for (const auto& p : plan)
    prompt_rows += p.tokens;
  const double prompt_share =
      static_cast<double>(prompt_rows)
      / static_cast<double>(prompt_rows + static_cast<int64_t>(rows.size()));
  stats_.prefill_seconds += seconds * prompt_share;
  stats_.decode_seconds += seconds * (1 - prompt_share);
  for (size_t i = 0; i < plan.size(); ++i)
    sliced(*plan[i].r, plan[i].tokens, (**together)[i]);
  if (!rows.empty())
    stepped(rows);
  return true;
}

void batch_scheduler::decode(std::vector<finished_generation>& out) {
  const auto stepped_rows = stepping();
  const auto batch = generations_of(stepped_rows);
  if (batch.empty())
    return;
  const auto rows = static_cast<uint32_t>(batch.size());
  const auto& model = *running_.front()->lease.model;
  auto failed = model.step(batch);
  if (!failed) {
    stepped(stepped_rows);
    return;
  }
  if (failed->code != model::errc::out_of_memory) {
    spdlog::error("gpu-owner decode step of {} rows failed: {}", rows, failed->message);
    auto why = to_failure(*failed);
    for (auto& r : running_)
      fail(std::move(r->j), why.code, why.message, out);
    running_.clear();
    return;
  }
  // Out of memory: flush, then each row alone; a row that still fails fails alone. A step
  // advances a row only when it succeeds, so retried rows lose nothing.
  spdlog::warn("gpu-owner decode step of {} rows out of memory; flushing, one row at a time", rows);
  flush_();
  for (auto it = running_.begin(); it != running_.end();) {
    auto& r = **it;
    if (!r.stepping()) {  // not in the step
      ++it;
      continue;
    }
    auto alone = model.step({&r.gen->tokens()});
    events_(alone ? request_event::oom_failed : request_event::oom_recovered, r.j.req.request_id,
            0);
    if (alone) {
      fail(std::move(r.j), errc::out_of_memory,
           "out of memory in decode even alone: " + alone->message, out);
      it = running_.erase(it);
    } else {
      ++it;
    }
  }
}

void batch_scheduler::finish(running_generation& r, std::vector<finished_generation>& out) {
  send_chunk(r);
  auto output = r.gen->output();
  auto now = clock::now();
  messages::generate_reply reply;
  reply.request_id = r.j.req.request_id;
  reply.generated_text = output.text;
  reply.tool_calls = tool_call_messages(r.gen->tool_calls());
  reply.tokens_generated = static_cast<uint32_t>(output.output_ids.size());
  reply.prompt_tokens = static_cast<uint32_t>(output.prompt_ids.size());
  reply.cached_tokens = static_cast<uint32_t>(output.cached_tokens);
  reply.finish_reason = output.finish_reason;
  reply.model = r.lease.model_name;
  reply.adapter = r.lease.adapter_name;
  reply.device = r.lease.model->device();
  reply.queue_ms = ms_between(r.arrived, r.admitted);
  reply.load_ms = r.lease.load_ms;
  reply.generate_ms = ms_between(r.admitted, now);
  reply.arrival_seq = r.j.req.arrival_seq;
  reply.service_seq = r.service_seq;
  reply.started_at_us = r.admitted_wall_us;
  reply.finished_at_us = wall_us();
  reply.batch_size_max = r.batch_size_max;
  const auto& tok = r.lease.model->tok();
  reply.logprobs = logprob_messages(output.logprobs, 0, tok);
  if (r.j.req.prompt_logprobs)
    reply.prompt_logprobs = prompt_logprob_messages(output.prompt_ids, output.prompt_logprobs, tok);
  if (!r.j.req.prompt_ids.empty())
    reply.prompt_text = tok.decode(output.prompt_ids, false);
  spdlog::info("gpu-owner {} generated {} tokens in {:.1f} ms (batch up to {})", reply.request_id,
               reply.tokens_generated, reply.generate_ms, reply.batch_size_max);
  events_(request_event::finished, reply.request_id,
          r.lease.model->kv_cache_bytes(reply.prompt_tokens + reply.tokens_generated));
  out.push_back({std::move(r.j), std::move(reply)});
}

void batch_scheduler::stream_text() {
  for (auto& r : running_)
    if (!r->gen->finished())
      send_chunk(*r);
}

std::vector<finished_generation> batch_scheduler::step() {
  std::vector<finished_generation> out;
  expire(out);
  admit(out);
  const auto plan = plan_prefill();
  if (!step_together(plan, out)) {
    const auto prefill_start = clock::now();
    prefill(plan, out);
    stats_.prefill_seconds += std::chrono::duration<double>(clock::now() - prefill_start).count();
    stream_text();  // first tokens, from prompts done now, go out before the decode step
    make_room(out);
    const auto decode_start = clock::now();
    decode(out);
    stats_.decode_seconds += std::chrono::duration<double>(clock::now() - decode_start).count();
  }
  stream_text();
  for (auto it = running_.begin(); it != running_.end();) {
    if ((*it)->gen->finished()) {
      finish(**it, out);
      it = running_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

bool batch_scheduler::has_work() const {
  if (!running_.empty())
    return true;
  for (const auto& w : waiting_)
    if (w->lease || !leasing_)
      return true;
  return false;
}

bool batch_scheduler::idle() const {
  if (!running_.empty() || leasing_)
    return false;
  for (const auto& w : waiting_)
    if (w->lease)
      return false;
  return true;
}

messages::batch_state batch_scheduler::state() const {
  auto s = stats_;
  s.waiting = static_cast<uint32_t>(waiting_.size());
  s.running = static_cast<uint32_t>(running_.size());
  s.kv_pool_used = running_.empty() ? 0 : running_.front()->lease.model->kv_pool_tokens_used();
  auto load_of = [&](const std::string& name) -> messages::adapter_load& {
    for (auto& a : s.adapters)
      if (a.adapter == name)
        return a;
    return s.adapters.emplace_back(messages::adapter_load{name, 0, 0});
  };
  for (const auto& r : running_)
    ++load_of(r->lease.adapter_name).running;
  for (const auto& w : waiting_)
    ++load_of(w->lease ? w->lease->adapter_name : adapter_named(w->j.req, limits_.default_model))
          .waiting;
  if (auto model = pool_model_.lock()) {
    const auto blocks = model->kv_pool_stats();
    s.kv_blocks_total = blocks.total;
    s.kv_blocks_used = blocks.used;
    s.kv_blocks_cached = blocks.cached;
    s.prefix_lookups = blocks.lookups;
    s.prefix_hits = blocks.hits;
    s.cached_tokens = blocks.reused_tokens;
  }
  return s;
}

}  // namespace adapterd::actors
