// The continuous-batching scheduler on a real tiny model: arrival order, admission bounds,
// the KV pool, cancellation, and tokens that do not depend on the batch.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>

#include "actors/core/batch_scheduler.hpp"
#include "model/io/tiny_model.hpp"
#include "model/step_profile.hpp"
#include "model/text_generation.hpp"

using namespace adapterd;
using actors::batch_scheduler;
using actors::finished_generation;
using actors::pending_generation;

namespace {

struct tiny_world {
  std::string dir;
  std::shared_ptr<const model::base_model> model;
  std::vector<std::shared_ptr<const model::lora_adapter>> adapters{nullptr};

  explicit tiny_world(int64_t pool_tokens, bool prefix_cache = false) {
    dir = (std::filesystem::temp_directory_path() / "adapterd-sched-test").string();
    model::tiny_model_spec spec;
    spec.adapters = 2;
    REQUIRE(model::write_tiny_model(spec, dir + "/m", dir + "/a"));
    model::load_options options;
    options.device = "cpu";
    options.kv_pool_tokens = pool_tokens;
    options.prefix_cache = prefix_cache;
    auto m = model::base_model::load(dir + "/m", options);
    REQUIRE(m);
    model = *m;
    for (auto path : {dir + "/a", dir + "/a-1"}) {
      auto a = model->load_adapter(path);
      REQUIRE(a);
      adapters.push_back(*a);
    }
  }

  actors::model_lease lease(size_t adapter) const {
    actors::model_lease l;
    l.model = model;
    l.adapter = adapters[adapter];
    l.model_name = "m";
    l.kv_reserve_tokens = 256;
    return l;
  }
};

messages::generate_request greedy_request(const std::string& id, const std::string& prompt, uint32_t n) {
  messages::generate_request r;
  r.request_id = id;
  r.prompt = prompt;
  r.max_new_tokens = n;
  r.temperature = 0;
  return r;
}

struct collector {
  std::map<std::string, actors::generate_outcome> answers;
  std::map<std::string, std::string> streamed;
  std::vector<std::string> order;

  pending_generation make(messages::generate_request req, bool stream = false) {
    pending_generation j;
    j.req = std::move(req);
    if (stream)
      j.on_chunk = [this](messages::stream_chunk c) { streamed[c.request_id] += c.text; };
    return j;
  }
  void take(std::vector<finished_generation>& done) {
    for (auto& f : done) {
      order.push_back(f.j.req.request_id);
      answers[f.j.req.request_id] = f.outcome;
    }
    done.clear();
  }
  const messages::generate_reply& reply(const std::string& id) {
    REQUIRE(answers.count(id));
    REQUIRE(std::holds_alternative<messages::generate_reply>(answers[id]));
    return std::get<messages::generate_reply>(answers[id]);
  }
};

batch_scheduler make_scheduler(uint32_t max_batch, uint32_t max_queue = 64) {
  return batch_scheduler(
      {max_batch, max_queue, 2048, ""}, [](uint8_t, const std::string&, uint64_t) {}, [] {});
}

// Leases every request the scheduler asks for, then steps until nothing is left.
void run_all(batch_scheduler& s, const tiny_world& w, collector& c,
             const std::map<std::string, size_t>& adapter_of, int max_steps = 10000) {
  for (int i = 0; i < max_steps && s.has_work(); ++i) {
    while (const auto* req = s.start_lease())
      s.leased(req->request_id, w.lease(adapter_of.at(req->request_id)));
    auto done = s.step();
    c.take(done);
  }
  REQUIRE_FALSE(s.has_work());
}

}  // namespace

TEST_CASE("scheduler: greedy tokens are the same alone and in a mixed-adapter batch", "[scheduler]") {
  tiny_world w(4096);
  std::map<std::string, size_t> adapter_of;
  std::vector<messages::generate_request> reqs;
  for (int i = 0; i < 6; ++i) {
    auto id = "r" + std::to_string(i);
    reqs.push_back(greedy_request(id, "prompt " + std::to_string(i) + std::string(static_cast<size_t>(i), '!'),
                                  static_cast<uint32_t>(5 + i)));
    adapter_of[id] = static_cast<size_t>(i % 3);
  }
  collector alone;
  for (const auto& r : reqs) {
    auto s = make_scheduler(1);
    REQUIRE_FALSE(s.enqueue(alone.make(r)));
    run_all(s, w, alone, adapter_of);
  }
  collector together;
  auto s = make_scheduler(8);
  for (const auto& r : reqs)
    REQUIRE_FALSE(s.enqueue(together.make(r, true)));
  run_all(s, w, together, adapter_of);
  uint32_t widest = 0;
  for (const auto& r : reqs) {
    const auto& a = alone.reply(r.request_id);
    const auto& b = together.reply(r.request_id);
    CHECK(a.generated_text == b.generated_text);
    CHECK(a.tokens_generated == b.tokens_generated);
    CHECK(together.streamed[r.request_id] == b.generated_text);
    widest = std::max(widest, b.batch_size_max);
  }
  CHECK(widest == 6);
  CHECK(s.state().steps > 0);
}

TEST_CASE("scheduler: one at a time serves in arrival order", "[scheduler]") {
  tiny_world w(4096);
  collector c;
  auto s = make_scheduler(1);
  std::map<std::string, size_t> adapter_of;
  for (int i = 0; i < 4; ++i) {
    auto id = "q" + std::to_string(i);
    adapter_of[id] = 0;
    REQUIRE_FALSE(s.enqueue(c.make(greedy_request(id, "x", 3))));
  }
  run_all(s, w, c, adapter_of);
  CHECK(c.order == std::vector<std::string>{"q0", "q1", "q2", "q3"});
  for (int i = 0; i < 4; ++i) {
    CHECK(c.reply("q" + std::to_string(i)).service_seq == static_cast<uint64_t>(i + 1));
    CHECK(c.reply("q" + std::to_string(i)).batch_size_max == 1);
  }
}

TEST_CASE("scheduler: a full queue refuses at once", "[scheduler]") {
  auto s = make_scheduler(1, 2);
  collector c;
  REQUIRE_FALSE(s.enqueue(c.make(greedy_request("a", "x", 2))));
  REQUIRE_FALSE(s.enqueue(c.make(greedy_request("b", "x", 2))));
  auto refused = s.enqueue(c.make(greedy_request("c", "x", 2)));
  REQUIRE(refused);
  REQUIRE(std::holds_alternative<messages::failure>(refused->outcome));
  CHECK(std::get<messages::failure>(refused->outcome).code == messages::errc::overloaded);
  CHECK(s.state().rejected == 1);
  CHECK(s.state().waiting == 2);
}

TEST_CASE(
    "scheduler: sequences grow into the KV pool; when it runs out the youngest steps aside, then "
    "resumes",
    "[scheduler][kv_pool]") {
  const bool prefix_cache = GENERATE(false, true);
  INFO("prefix cache " << prefix_cache);
  std::map<std::string, size_t> adapter_of{{"big1", 0}, {"big2", 1}, {"big3", 2}};
  std::vector<messages::generate_request> reqs{greedy_request("big1", "hello", 40),
                                               greedy_request("big2", "hello there", 40),
                                               greedy_request("big3", "hello", 40)};
  collector alone;
  {
    tiny_world roomy(4096, prefix_cache);
    for (const auto& r : reqs) {
      auto s = make_scheduler(1);
      REQUIRE_FALSE(s.enqueue(alone.make(r)));
      run_all(s, roomy, alone, adapter_of);
    }
  }
  tiny_world w(64, prefix_cache);  // 4 blocks: one sequence of a short prompt + 40 tokens
  auto lease = [&](size_t adapter) {
    auto l = w.lease(adapter);
    l.kv_reserve_tokens = 64;  // as the service sizes it: no sequence needs more than the pool
    return l;
  };
  collector c;
  auto s = make_scheduler(8);
  for (const auto& r : reqs)
    REQUIRE_FALSE(s.enqueue(c.make(r, true)));
  uint32_t most_running = 0;
  for (int i = 0; i < 2000 && s.has_work(); ++i) {
    while (const auto* req = s.start_lease())
      s.leased(req->request_id, lease(adapter_of.at(req->request_id)));
    auto done = s.step();
    c.take(done);
    most_running = std::max(most_running, s.state().running);
    REQUIRE(w.model->kv_pool_tokens_used() <= 64);
  }
  REQUIRE_FALSE(s.has_work());
  CHECK(most_running >= 2);         // admitted with a prompt's blocks, not a whole reservation
  CHECK(s.state().preempted >= 1);  // and the pool ran out as they grew
  for (const auto& r : reqs) {
    CHECK(c.reply(r.request_id).generated_text == alone.reply(r.request_id).generated_text);
    CHECK(c.streamed[r.request_id] == c.reply(r.request_id).generated_text);
  }
  CHECK(w.model->kv_pool_tokens_used() == 0);
}

TEST_CASE("scheduler: a request that could not finish in the whole KV pool is refused at once",
          "[scheduler][kv_pool]") {
  tiny_world w(64);
  collector c;
  auto s = make_scheduler(8);
  REQUIRE_FALSE(
      s.enqueue(c.make(greedy_request("huge", "hello", 200))));  // lease: 256-token context
  run_all(s, w, c, {{"huge", 0}});
  REQUIRE(std::holds_alternative<messages::failure>(c.answers["huge"]));
  CHECK(std::get<messages::failure>(c.answers["huge"]).code == messages::errc::insufficient_memory);
}

TEST_CASE("scheduler: a cached prompt prefix costs nothing of a step's prefill budget",
          "[scheduler][prefix]") {
  tiny_world w(4096, true);
  collector c;
  batch_scheduler s(
      {8, 64, 100, ""}, [](uint8_t, const std::string&, uint64_t) {}, [] {});
  const std::string prompt =
      "a system prompt that many requests share, word after word after word, "
      "and then some more of it to fill several blocks of the cache";
  std::map<std::string, size_t> adapter_of{{"warm", 0}, {"r1", 0}, {"r2", 0}, {"r3", 0}};
  REQUIRE_FALSE(s.enqueue(c.make(greedy_request("warm", prompt, 2))));
  run_all(s, w, c, adapter_of);
  REQUIRE(c.reply("warm").prompt_tokens
          > 64);  // the three below would not fit the budget of 100 together
  for (auto id : {"r1", "r2", "r3"})
    REQUIRE_FALSE(s.enqueue(c.make(greedy_request(id, prompt, 4))));
  while (const auto* req = s.start_lease())
    s.leased(req->request_id, w.lease(0));
  const auto first_tokens = s.state().ttft_s.count;
  const auto prompt_tokens = s.state().prompt_tokens;
  auto done = s.step();
  c.take(done);
  // One step computes all three: each only its uncached tail, within the budget of 100.
  CHECK(s.state().ttft_s.count == first_tokens + 3);
  CHECK(s.state().prompt_tokens - prompt_tokens <= 100);
  run_all(s, w, c, adapter_of);
  for (auto id : {"r1", "r2", "r3"}) {
    CHECK(c.reply(id).cached_tokens > 0);
    CHECK(c.reply(id).cached_tokens % 16 == 0);
  }
}

TEST_CASE(
    "scheduler: a long prompt is computed in slices while running streams get a token every step",
    "[scheduler]") {
  tiny_world w(4096);
  std::string long_prompt;
  for (int i = 0; i < 30; ++i)  // ~150 tokens of the 256 a lease allows
    long_prompt += "word" + std::to_string(i) + " ";
  std::map<std::string, size_t> adapter_of{{"stream", 1}, {"long", 2}};
  collector alone;
  {
    auto s = make_scheduler(1);
    REQUIRE_FALSE(s.enqueue(alone.make(greedy_request("long", long_prompt, 6))));
    run_all(s, w, alone, adapter_of);
  }
  if (std::holds_alternative<messages::failure>(alone.answers["long"]))
    FAIL(std::get<messages::failure>(alone.answers["long"]).message);
  REQUIRE(alone.reply("long").prompt_tokens > 100);
  collector c;
  batch_scheduler s(
      {8, 64, 16, ""}, [](uint8_t, const std::string&, uint64_t) {}, [] {});
  REQUIRE_FALSE(s.enqueue(c.make(greedy_request("stream", "tick", 40), true)));
  auto step = [&] {
    while (const auto* req = s.start_lease())
      s.leased(req->request_id, w.lease(adapter_of.at(req->request_id)));
    auto done = s.step();
    c.take(done);
  };
  step();
  REQUIRE_FALSE(s.enqueue(c.make(greedy_request("long", long_prompt, 6))));
  // Every step while the long prompt is computed, 16 tokens at a time, gives the stream a token.
  int prefill_steps = 0;
  for (int i = 0; i < 100 && s.state().ttft_s.count < 2; ++i) {
    const auto generated = s.state().generated_tokens;
    step();
    CHECK(s.state().generated_tokens >= generated + 1);
    ++prefill_steps;
  }
  CHECK(prefill_steps >= static_cast<int>(alone.reply("long").prompt_tokens / 16));
  run_all(s, w, c, adapter_of);
  CHECK(c.reply("long").generated_text
        == alone.reply("long").generated_text);  // slices: one pass's tokens
  CHECK(c.reply("stream").tokens_generated == 40);
}

TEST_CASE("scheduler: a step's rows stay within max_step_tokens, decode rows first",
          "[scheduler]") {
  tiny_world w(4096);
  std::string long_prompt;
  for (int i = 0; i < 30; ++i)  // ~150 tokens
    long_prompt += "word" + std::to_string(i) + " ";
  collector c;
  actors::scheduler_limits limits{8, 64, 256, ""};
  limits.max_step_tokens = 24;
  batch_scheduler s(
      limits, [](uint8_t, const std::string&, uint64_t) {}, [] {});
  std::map<std::string, size_t> adapter_of{{"a", 0}, {"b", 1}, {"c", 2}, {"d", 0}, {"long", 1}};
  auto step = [&] {
    while (const auto* req = s.start_lease())
      s.leased(req->request_id, w.lease(adapter_of.at(req->request_id)));
    auto done = s.step();
    c.take(done);
  };
  for (auto id : {"a", "b", "c", "d"})
    REQUIRE_FALSE(s.enqueue(c.make(greedy_request(id, "tick", 60), true)));
  step();  // their short prompts, then four rows decode every step
  REQUIRE_FALSE(s.enqueue(c.make(greedy_request("long", long_prompt, 4))));
  int slices = 0;
  for (int i = 0; i < 100 && s.state().ttft_s.count < 5; ++i) {
    const auto before = s.state();
    step();
    const auto prompt = s.state().prompt_tokens - before.prompt_tokens;
    const auto decoded = s.state().generated_tokens - before.generated_tokens;
    INFO("step " << i << ": " << prompt << " prompt tokens, " << decoded << " tokens generated");
    CHECK(decoded >= 4);      // the streams never wait for the prompt
    CHECK(prompt <= 24 - 4);  // the decode rows come first within the step's 24
    slices += prompt > 0 ? 1 : 0;
  }
  CHECK(slices >= 150 / 20);
  run_all(s, w, c, adapter_of);
  collector alone;  // the same tokens as the long prompt alone, in one pass
  {
    auto one = make_scheduler(1);
    REQUIRE_FALSE(one.enqueue(alone.make(greedy_request("long", long_prompt, 4))));
    run_all(one, w, alone, adapter_of);
  }
  CHECK(c.reply("long").generated_text == alone.reply("long").generated_text);
  for (auto id : {"a", "b", "c", "d"})
    CHECK(c.reply(id).tokens_generated == 60);
}

TEST_CASE("scheduler: cancelling frees the sequence; waiting ones answer at once", "[scheduler]") {
  tiny_world w(4096);
  collector c;
  auto s = make_scheduler(1);
  REQUIRE_FALSE(s.enqueue(c.make(greedy_request("run", "x", 200))));
  REQUIRE_FALSE(s.enqueue(c.make(greedy_request("wait", "y", 5))));
  const auto* req = s.start_lease();
  REQUIRE(req);
  s.leased(req->request_id, w.lease(0));
  auto done = s.step();
  c.take(done);
  REQUIRE(s.state().running == 1);
  CHECK(w.model->kv_pool_tokens_used() > 0);
  std::vector<finished_generation> out;
  CHECK(s.cancel("wait", out));
  REQUIRE(out.size() == 1);
  CHECK(std::get<messages::failure>(out[0].outcome).code == messages::errc::cancelled);
  CHECK(s.cancel("run", out));
  CHECK_FALSE(s.cancel("nobody", out));
  done = s.step();
  c.take(done);
  CHECK(std::get<messages::failure>(c.answers["run"]).code == messages::errc::cancelled);
  CHECK(s.state().running == 0);
  CHECK(s.state().cancelled == 2);
  CHECK(w.model->kv_pool_tokens_used() == 0);
  CHECK(s.idle());
}

TEST_CASE("text generation: streamed pieces add up to the final text", "[stream]") {
  tiny_world w(0);
  model::generation_params p;
  p.max_new_tokens = 30;
  auto ids = w.model->tok().encode("Once upon a time", true);
  auto g = model::text_generation::start(*w.model, ids, p, nullptr);
  REQUIRE(g);
  std::string streamed = (*g)->take_text();
  while (!(*g)->finished()) {
    REQUIRE_FALSE(w.model->step({&(*g)->tokens()}));
    streamed += (*g)->take_text();
  }
  streamed += (*g)->take_text();
  auto whole = w.model->generate("Once upon a time", p, nullptr);
  REQUIRE(whole);
  CHECK(streamed == (*g)->output().text);
  CHECK(whole->text == (*g)->output().text);
}

namespace {

std::string words_prompt(int count, const std::string& stem = "word") {
  std::string p;
  for (int i = 0; i < count; ++i)
    p += stem + std::to_string(i) + " ";
  return p;
}

void lease_and_step(batch_scheduler& s, const tiny_world& w, collector& c,
                    const std::map<std::string, size_t>& adapter_of) {
  while (const auto* req = s.start_lease())
    s.leased(req->request_id, w.lease(adapter_of.at(req->request_id)));
  auto done = s.step();
  c.take(done);
}

}  // namespace

TEST_CASE("scheduler: two requests that begin alike at once compute their common prompt once",
          "[scheduler][prefix]") {
  tiny_world w(4096, true);
  const auto prompt = words_prompt(30);  // ~150 tokens, in slices of 16
  collector alone;
  {
    auto s = make_scheduler(1);
    REQUIRE_FALSE(s.enqueue(alone.make(greedy_request("x", prompt, 6))));
    run_all(s, w, alone, {{"x", 1}});
  }
  const auto prompt_tokens = alone.reply("x").prompt_tokens;
  REQUIRE(prompt_tokens > 100);
  w.model->drop_prefix_cache();
  collector c;
  batch_scheduler s(
      {8, 64, 16, ""}, [](uint8_t, const std::string&, uint64_t) {}, [] {});
  SECTION("the same adapter: the second takes the first's blocks as they are computed") {
    for (auto id : {"a", "b"})
      REQUIRE_FALSE(s.enqueue(c.make(greedy_request(id, prompt, 6))));
    const auto before = s.state().prompt_tokens;
    run_all(s, w, c, {{"a", 1}, {"b", 1}});
    CHECK(s.state().prompt_tokens - before < prompt_tokens + 32);
    CHECK(c.reply("b").cached_tokens >= (prompt_tokens - 1) / 16 * 16 - 16);
    CHECK(c.reply("a").generated_text == alone.reply("x").generated_text);
    CHECK(c.reply("b").generated_text == alone.reply("x").generated_text);
  }
  SECTION("different adapters: nothing is shared") {
    for (auto id : {"a", "b"})
      REQUIRE_FALSE(s.enqueue(c.make(greedy_request(id, prompt, 6))));
    const auto before = s.state().prompt_tokens;
    run_all(s, w, c, {{"a", 1}, {"b", 2}});
    CHECK(s.state().prompt_tokens - before == 2 * prompt_tokens);
    CHECK(c.reply("a").cached_tokens == 0);
    CHECK(c.reply("b").cached_tokens == 0);
    CHECK(c.reply("a").generated_text == alone.reply("x").generated_text);
  }
}

TEST_CASE(
    "scheduler: a short prompt does not wait behind a long one, and a long one waits boundedly",
    "[scheduler]") {
  tiny_world w(8192);
  const auto long_prompt = words_prompt(30);
  std::map<std::string, size_t> adapter_of{{"long", 0}, {"short", 0}};
  collector c;
  batch_scheduler s(
      {16, 256, 16, ""}, [](uint8_t, const std::string&, uint64_t) {}, [] {});
  SECTION("least left first") {
    REQUIRE_FALSE(s.enqueue(c.make(greedy_request("long", long_prompt, 2))));
    REQUIRE_FALSE(s.enqueue(c.make(greedy_request("short", "hi", 2))));
    run_all(s, w, c, adapter_of);
    REQUIRE(c.order.size() == 2);
    CHECK(c.order[0] == "short");  // oldest first would have made it wait ~10 steps
  }
  SECTION("a prompt passed over again and again goes first after a bounded number of steps") {
    REQUIRE_FALSE(s.enqueue(c.make(greedy_request("long", long_prompt, 1))));
    // Every step a new prompt arrives that is shorter than what the long one has left
    // and fills the budget alone.
    int steps = 0;
    for (; steps < 200 && !c.answers.count("long"); ++steps) {
      const auto id = "short" + std::to_string(steps);
      adapter_of[id] = 0;
      REQUIRE_FALSE(s.enqueue(c.make(greedy_request(id, words_prompt(4, "s" + id), 1))));
      lease_and_step(s, w, c, adapter_of);
    }
    CHECK(c.answers.count("long") == 1);
    CHECK(steps <= 32 + 2 + 150 / 16 + 2);  // patience, then its slices
    run_all(s, w, c, adapter_of);
  }
}

TEST_CASE("scheduler: one adapter flooding the queue does not hold back another's request",
          "[scheduler][fair]") {
  tiny_world w(4096);
  auto s = make_scheduler(1);
  collector c;
  std::map<std::string, size_t> adapter_of;
  for (int i = 0; i < 8; ++i) {
    auto r = greedy_request("flood" + std::to_string(i), "flood", 2);
    r.adapter_path = "flooding";
    adapter_of[r.request_id] = 1;
    REQUIRE_FALSE(s.enqueue(c.make(r)));
  }
  auto quiet = greedy_request("quiet", "quiet", 2);
  quiet.adapter_path = "quiet";
  adapter_of["quiet"] = 2;
  REQUIRE_FALSE(s.enqueue(c.make(quiet)));
  auto other_key = greedy_request("other-key", "flood", 2);
  other_key.adapter_path = "flooding";
  other_key.client = "key-1";  // the same adapter under another API key is another flow
  adapter_of["other-key"] = 1;
  REQUIRE_FALSE(s.enqueue(c.make(other_key)));

  auto st = s.state();
  std::map<std::string, uint32_t> waiting;
  for (const auto& a : st.adapters)
    waiting[a.adapter] = a.waiting;
  CHECK(waiting == std::map<std::string, uint32_t>{{"flooding", 9}, {"quiet", 1}});

  run_all(s, w, c, adapter_of);
  // one at a time (batch 1): the order served is the order answered
  REQUIRE(c.order.size() == 10);
  CHECK(c.order[0] == "flood0");
  CHECK(c.order[1] == "quiet");
  CHECK(c.order[2] == "other-key");
  CHECK(c.order[3] == "flood1");
}

TEST_CASE(
    "scheduler: a full batch pauses the flood's youngest for a flow without a place, "
    "and the paused one resumes token for token",
    "[scheduler][fair]") {
  tiny_world w(4096);
  std::map<std::string, size_t> adapter_of;
  auto long_request = [&](const std::string& id, size_t adapter) {
    auto r = greedy_request(id, "a long story about " + id, 24);
    r.ignore_eos = true;
    r.adapter_path = adapter == 1 ? "flooding" : "quiet";
    adapter_of[id] = adapter;
    return r;
  };
  // Alone: each request's tokens with nobody else in the batch.
  collector alone;
  for (const auto* id : {"flood0", "flood1", "quiet"}) {
    auto s = make_scheduler(1);
    REQUIRE_FALSE(s.enqueue(alone.make(long_request(id, std::string(id) == "quiet" ? 2 : 1))));
    run_all(s, w, alone, adapter_of);
  }

  auto s = make_scheduler(2);
  collector c;
  for (const auto* id : {"flood0", "flood1", "flood2"})
    REQUIRE_FALSE(s.enqueue(c.make(long_request(id, 1), true)));
  auto lease_and_step = [&] {
    while (const auto* req = s.start_lease())
      s.leased(req->request_id, w.lease(adapter_of.at(req->request_id)));
    auto done = s.step();
    c.take(done);
  };
  for (int i = 0; i < 4; ++i)
    lease_and_step();
  CHECK(s.state().running == 2);  // the batch is full of the flood
  REQUIRE_FALSE(s.enqueue(c.make(long_request("quiet", 2), true)));
  lease_and_step();
  auto st = s.state();
  CHECK(st.fair_pauses == 1);
  CHECK(st.running == 3);                    // the paused one keeps its KV
  CHECK_FALSE(c.streamed["quiet"].empty());  // admitted and prefilled at this step
  run_all(s, w, c, adapter_of);
  // The quiet request did not wait for a flood sequence to finish: it ended before the
  // flood's third request (which waited for a place) and before the paused one.
  auto at = [&](const std::string& id) {
    return std::find(c.order.begin(), c.order.end(), id) - c.order.begin();
  };
  CHECK(at("quiet") < at("flood1"));
  CHECK(at("quiet") < at("flood2"));
  for (const auto* id : {"flood0", "flood1", "quiet"}) {
    INFO(id);
    CHECK(c.reply(id).generated_text == alone.reply(id).generated_text);
    CHECK(c.streamed[id] == c.reply(id).generated_text);
  }
  CHECK(c.reply("flood2").tokens_generated == 24);
}

TEST_CASE(
    "scheduler: steps count prompt and decode time apart; the step profile charges "
    "phases only while on",
    "[scheduler][profile]") {
  tiny_world w(4096);
  auto s = make_scheduler(4);
  collector c;
  std::map<std::string, size_t> adapter_of{{"a", 1}, {"b", 0}};
  for (const auto* id : {"a", "b"})
    REQUIRE_FALSE(s.enqueue(c.make(greedy_request(id, "a prompt of a few words", 6))));
  (void)model::take_step_profile();
  run_all(s, w, c, adapter_of);  // the profile is off: nothing is charged
  CHECK(model::take_step_profile().steps == 0);
  CHECK(s.state().prefill_seconds > 0);
  CHECK(s.state().decode_seconds > 0);

  model::enable_step_profile(true);
  auto g = w.model->begin(w.model->tok().encode("profile me", true), {}, w.adapters[1].get());
  REQUIRE(g);
  (void)model::take_step_profile();  // the prefill's phases
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 3; ++i)
    REQUIRE_FALSE(w.model->step({g->get()}));
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  model::enable_step_profile(false);
  const auto p = model::take_step_profile();
  CHECK(p.steps == 3);
  CHECK(p.matrices_s > 0);
  CHECK(p.attention_s > 0);
  CHECK(p.lora_s > 0);  // the adapter's rows
  CHECK(p.sampling_s > 0);
  CHECK(p.matrices_s + p.attention_s + p.lora_s + p.other_s + p.sampling_s <= wall);
}

TEST_CASE("scheduler: a request with a lower priority value is served before those waiting",
          "[scheduler][fair]") {
  tiny_world w(4096);
  auto s = make_scheduler(1);
  collector c;
  std::map<std::string, size_t> adapter_of;
  for (const auto* id : {"first", "second", "third"}) {
    adapter_of[id] = 0;
    REQUIRE_FALSE(s.enqueue(c.make(greedy_request(id, "same flow", 2))));
  }
  auto urgent = greedy_request("urgent", "same flow", 2);
  urgent.priority = -5;
  adapter_of["urgent"] = 0;
  REQUIRE_FALSE(s.enqueue(c.make(urgent)));
  run_all(s, w, c, adapter_of);
  CHECK(c.order == std::vector<std::string>{"urgent", "first", "second", "third"});
}

TEST_CASE("scheduler: cancelling a request cancels its choices (id.1, id.2), not a lookalike",
          "[scheduler]") {
  tiny_world w(4096);
  collector c;
  auto s = make_scheduler(2);
  for (const auto* id : {"req-7", "req-7.1", "req-7.2", "req-70"})
    REQUIRE_FALSE(s.enqueue(c.make(greedy_request(id, "choices", 200))));
  for (int i = 0; i < 2; ++i) {
    const auto* req = s.start_lease();
    REQUIRE(req);
    s.leased(req->request_id, w.lease(0));
  }
  auto done = s.step();
  c.take(done);
  REQUIRE(s.state().running == 2);  // req-7 and req-7.1 run, req-7.2 and req-70 wait
  std::vector<finished_generation> out;
  CHECK(s.cancel("req-7", out));
  REQUIRE(out.size() == 1);
  CHECK(out[0].j.req.request_id == "req-7.2");
  done = s.step();
  c.take(done);
  CHECK(std::get<messages::failure>(c.answers["req-7"]).code == messages::errc::cancelled);
  CHECK(std::get<messages::failure>(c.answers["req-7.1"]).code == messages::errc::cancelled);
  CHECK_FALSE(c.answers.count("req-70"));  // still waiting or running, not cancelled
  CHECK(s.state().cancelled == 3);
}
