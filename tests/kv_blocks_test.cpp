// The paged KV pool: its blocks, and a sequence whose blocks lie scattered through the pool
// generating the same tokens as one with a cache of its own, on the CPU kernels and on
// libtorch.
#include <catch2/catch.hpp>

#include <filesystem>

#include "model/base_model.hpp"
#include "model/io/tiny_model.hpp"
#include "model/llama/kv_blocks.hpp"

using namespace adapterd::model;

TEST_CASE("kv blocks: any free blocks serve a sequence, and none is freed twice", "[kv_pool]") {
  kv_blocks b(10);
  CHECK(kv_blocks_for(0) == 0);
  CHECK(kv_blocks_for(1) == 1);
  CHECK(kv_blocks_for(16) == 1);
  CHECK(kv_blocks_for(17) == 2);
  auto a = b.take_blocks(3), m = b.take_blocks(4), c = b.take_blocks(3);
  REQUIRE(a);
  REQUIRE(m);
  REQUIRE(c);
  CHECK(*a == std::vector<int32_t>{0, 1, 2});  // a fresh pool hands out blocks in order
  CHECK(b.free() == 0);
  CHECK_FALSE(b.take_blocks(1));
  b.give_back(*a);
  b.give_back(*c);
  // 6 free blocks in two separate places serve one sequence of 6 (first fit over ranges could not)
  auto big = b.take_blocks(6);
  REQUIRE(big);
  CHECK(big->size() == 6);
  CHECK(b.used() == 10);
  b.give_back(*big);
  b.give_back(*big);  // twice: the second changes nothing
  b.give_back({-1, 10, 99});
  CHECK(b.free() == 6);
  CHECK_FALSE(b.take_blocks(0));
  CHECK_FALSE(b.take_blocks(-2));
  CHECK_FALSE(b.take_blocks(7));
  b.give_back(*m);
  CHECK(b.free() == 10);
}

namespace {

std::vector<int32_t> tokens_from(int32_t seed, size_t n) {
  std::vector<int32_t> t(n);
  for (size_t i = 0; i < n; ++i)
    t[i] = static_cast<int32_t>((seed * 31 + static_cast<int32_t>(i) * 7) % 300);
  return t;
}

}  // namespace

TEST_CASE("prefix cache: whole blocks of a prefix are found again under the same adapter only",
          "[kv_pool]") {
  kv_blocks b(12, true);
  const kv_owner base{}, tuned{7, 9};
  auto prompt = tokens_from(1, 40);
  auto first = b.take(48, base, prompt.data(), 39);
  REQUIRE(first);
  CHECK(first->reused_tokens == 0);
  b.publish(first->blocks, base, prompt.data(), 40);  // blocks 0 and 1 are whole
  b.give_back(first->blocks);
  CHECK(b.stats().cached == 2);
  CHECK(b.stats().used == 0);
  auto again = b.take(48, base, prompt.data(), 39);
  REQUIRE(again);
  CHECK(again->reused_tokens == 32);
  CHECK(std::vector<int32_t>(again->blocks.begin(), again->blocks.begin() + 2)
        == std::vector<int32_t>(first->blocks.begin(), first->blocks.begin() + 2));
  // shared: another sequence on the same prefix while the first holds it
  auto shared = b.take(40, base, prompt.data(), 39);
  REQUIRE(shared);
  CHECK(shared->reused_tokens == 32);
  CHECK(b.stats().used == 3 + 1);  // two shared blocks, one fresh each
  b.give_back(shared->blocks);
  b.give_back(again->blocks);
  // another adapter's KV of the same tokens differs: not found
  auto other = b.take(48, tuned, prompt.data(), 39);
  REQUIRE(other);
  CHECK(other->reused_tokens == 0);
  b.give_back(other->blocks);
  // a prompt that differs in its second block keeps only the first
  auto changed = prompt;
  changed[20] += 1;
  auto partly = b.take(48, base, changed.data(), 39);
  REQUIRE(partly);
  CHECK(partly->reused_tokens == 16);
  b.give_back(partly->blocks);
  // at most `reusable` tokens: a 32-token prompt must prefill its last token itself
  auto short_one = b.take(40, base, prompt.data(), 31);
  REQUIRE(short_one);
  CHECK(short_one->reused_tokens == 16);
  b.give_back(short_one->blocks);
  const auto s = b.stats();
  CHECK(s.lookups == 6);
  CHECK(s.hits == 4);
  CHECK(s.reused_tokens == 32 + 32 + 16 + 16);
  CHECK(s.used == 0);
  CHECK(s.cached + s.free == 12);
}

TEST_CASE("prefix cache: a sequence begun alongside another adopts the blocks it computes",
          "[kv_pool]") {
  kv_blocks b(20, true);
  const kv_owner base{}, tuned{7, 9};
  auto prompt = tokens_from(3, 50);  // three whole blocks and a part
  auto first = b.take(51, base, prompt.data(), 49);
  auto second = b.take(51, base, prompt.data(), 49);
  auto other = b.take(51, tuned, prompt.data(), 49);
  REQUIRE(first);
  REQUIRE(second);
  REQUIRE(other);
  CHECK(second->reused_tokens == 0);  // nothing was computed yet when it began
  CHECK(b.adopt(second->blocks, base, prompt.data(), 0, 49) == 0);
  // The first computes two blocks and offers them; the second takes them instead of its own.
  b.publish(first->blocks, base, prompt.data(), 32);
  const auto free_before = b.free();
  const auto fresh = second->blocks;
  CHECK(b.adopt(second->blocks, base, prompt.data(), 0, 49) == 32);
  CHECK(std::vector<int32_t>(second->blocks.begin(), second->blocks.begin() + 2)
        == std::vector<int32_t>(first->blocks.begin(), first->blocks.begin() + 2));
  CHECK(second->blocks[2] == fresh[2]);
  CHECK(b.free() == free_before + 2);  // its own two fresh blocks went back
  // Another adapter's sequence with the same tokens finds nothing.
  CHECK(b.adopt(other->blocks, tuned, prompt.data(), 0, 49) == 0);
  // The third block, once computed; the part block and the last prompt token never.
  b.publish(first->blocks, base, prompt.data(), 50);
  CHECK(b.adopt(second->blocks, base, prompt.data(), 32, 49) == 48);
  CHECK(b.adopt(second->blocks, base, prompt.data(), 48, 49) == 48);
  // A sequence part-way through a block of its own keeps computing it.
  CHECK(b.adopt(other->blocks, base, prompt.data(), 5, 49) == 5);
  b.give_back(first->blocks);
  b.give_back(second->blocks);
  b.give_back(other->blocks);
  CHECK(b.used() == 0);
  CHECK(b.free() == 20);
}

TEST_CASE("prefix cache: the pool takes cached blocks back least recently used first",
          "[kv_pool]") {
  kv_blocks b(6, true);
  auto p1 = tokens_from(1, 33), p2 = tokens_from(2, 33);
  for (const auto* p : {&p1, &p2}) {
    auto t = b.take(33, {}, p->data(), 32);
    REQUIRE(t);
    b.publish(t->blocks, {}, p->data(), 32);
    b.give_back(t->blocks);
  }
  CHECK(b.stats().cached == 4);
  CHECK(b.fits(6 * kv_block_tokens));  // cached blocks can be taken back
  // four fresh blocks: the two free ones, then p1's (the older), the later block first
  auto fill = b.take_blocks(3);
  REQUIRE(fill);
  CHECK(b.stats().cached == 3);
  auto hit = b.take(33, {}, p1.data(), 32);
  REQUIRE(hit);
  CHECK(hit->reused_tokens == 16);  // p1's second block went; its first is still there
  b.give_back(hit->blocks);
  b.give_back(*fill);
  // a recycled block is never found through: what was cached after it is gone with it
  auto all = b.take_blocks(6);
  REQUIRE(all);
  b.give_back(*all);
  auto miss = b.take(33, {}, p2.data(), 32);
  REQUIRE(miss);
  CHECK(miss->reused_tokens == 0);
  b.give_back(miss->blocks);
  b.drop_cached();
  CHECK(b.stats().cached == 0);
  CHECK(b.stats().free == 6);
}

TEST_CASE("prefix cache: 2,000 sequences over shared prefixes leave every block accounted for",
          "[kv_pool]") {
  kv_blocks b(64, true);
  std::vector<kv_blocks::taken> running;
  uint32_t state = 12345;
  auto next = [&] { return state = state * 1103515245u + 12345u, (state >> 16) & 0x7fff; };
  int taken = 0;
  for (int i = 0; i < 2000; ++i) {
    // prompts share one of 4 system prompts, then differ
    auto prompt = tokens_from(static_cast<int32_t>(next() % 4), 48);
    const auto tail = tokens_from(1000 + static_cast<int32_t>(next() % 50), 1 + next() % 40);
    prompt.insert(prompt.end(), tail.begin(), tail.end());
    const kv_owner owner{0, next() % 3};
    const auto total = static_cast<int64_t>(prompt.size()) + 16;
    if (auto t = b.take(total, owner, prompt.data(), static_cast<int64_t>(prompt.size()) - 1)) {
      b.publish(t->blocks, owner, prompt.data(), static_cast<int64_t>(prompt.size()));
      running.push_back(std::move(*t));
      ++taken;
    }
    while (running.size() > 6 || (!running.empty() && next() % 3 == 0)) {
      const auto at = next() % running.size();
      b.give_back(running[at].blocks);
      running.erase(running.begin() + static_cast<std::ptrdiff_t>(at));
    }
    const auto s = b.stats();
    REQUIRE(s.used + s.cached + s.free == 64);
  }
  for (auto& t : running)
    b.give_back(t.blocks);
  const auto s = b.stats();
  CHECK(taken > 1500);
  CHECK(s.hits > 1000);
  CHECK(s.used == 0);
  CHECK(s.cached + s.free == 64);
  b.drop_cached();
  CHECK(b.stats().free == 64);
}

namespace {

std::vector<int32_t> greedy(const base_model& m, const std::vector<int32_t>& prompt, uint32_t n,
                            bool pooled) {
  generation_params p;
  p.max_new_tokens = n;
  p.sampling.temperature = 0;
  p.pooled_kv = pooled;
  auto g = m.begin(prompt, p, nullptr);
  REQUIRE(g);
  while (!(*g)->finished())
    REQUIRE_FALSE(m.step({g->get()}));
  return (*g)->output().output_ids;
}

}  // namespace

TEST_CASE("a sequence in scattered pool blocks decodes as one in a cache of its own", "[kv_pool]") {
  const auto dir = (std::filesystem::temp_directory_path() / "adapterd-kv-blocks-test").string();
  tiny_model_spec spec;
  REQUIRE(write_tiny_model(spec, dir + "/m", dir + "/a"));
  // float32: the CPU kernels; bfloat16 compute: libtorch's path; a bf16 cache on the kernels
  for (auto [dtype, kv] :
       {std::pair{"float32", "auto"}, {"bfloat16", "auto"}, {"float32", "bfloat16"}}) {
    INFO(dtype << " compute, KV " << kv);
    load_options options;
    options.device = "cpu";
    options.dtype = dtype;
    options.kv_dtype = kv;
    options.kv_pool_tokens = 512;
    auto m = base_model::load(dir + "/m", options);
    REQUIRE(m);
    const auto& model = **m;
    std::vector<int32_t> prompt;
    for (int i = 0; i < 40; ++i)
      prompt.push_back(static_cast<int32_t>(3 + (i * 7) % 200));
    const auto own = greedy(model, prompt, 60, false);
    // Scatter the pool: two sequences hold blocks, the first ends, and the next one gets
    // its freed blocks and then blocks past the second's.
    generation_params hold;
    hold.max_new_tokens = 20;
    hold.pooled_kv = true;
    auto first = model.begin(prompt, hold, nullptr);
    auto second = model.begin(prompt, hold, nullptr);
    REQUIRE(first);
    REQUIRE(second);
    first->reset();
    CHECK(model.kv_pool_tokens_used() == 3 * kv_block_tokens);  // 40 + 1 tokens: 3 blocks
    CHECK(greedy(model, prompt, 60, true) == own);
    second->reset();
    CHECK(model.kv_pool_tokens_used() == 0);
  }
}

TEST_CASE(
    "a sequence grows a block at a time, and preempted and restored gives the tokens it gives "
    "alone",
    "[kv_pool]") {
  const auto dir = (std::filesystem::temp_directory_path() / "adapterd-kv-grow-test").string();
  tiny_model_spec spec;
  REQUIRE(write_tiny_model(spec, dir + "/m", dir + "/a"));
  for (bool prefix_cache : {false, true}) {
    INFO("prefix cache " << prefix_cache);
    load_options options;
    options.device = "cpu";
    options.kv_pool_tokens = 64;  // 4 blocks
    options.prefix_cache = prefix_cache;
    auto m = base_model::load(dir + "/m", options);
    REQUIRE(m);
    const auto& model = **m;
    std::vector<int32_t> prompt;
    for (int i = 0; i < 30; ++i)
      prompt.push_back(static_cast<int32_t>(3 + (i * 11) % 200));
    const auto own = greedy(model, prompt, 30, false);
    generation_params p;
    p.max_new_tokens = 30;
    p.sampling.temperature = 0;
    p.pooled_kv = true;
    auto g = model.begin(prompt, p, nullptr);
    REQUIRE(g);
    CHECK(model.kv_pool_tokens_used() == 2 * kv_block_tokens);  // 30 + 1 tokens
    // Another sequence takes the other two blocks: the pool is full.
    std::vector<int32_t> other{5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21};
    generation_params q = p;
    q.max_new_tokens = 4;
    auto h = model.begin(other, q, nullptr);
    REQUIRE(h);
    CHECK(model.kv_pool_tokens_used() == 4 * kv_block_tokens);
    int preempted_at = -1;
    while (!(*g)->finished()) {
      if (!model.make_room(**g)) {
        // Its 33rd KV slot is in a third block: the other one steps aside, and this one goes on.
        model.preempt(**h);
        CHECK((*h)->preempted());
        preempted_at = static_cast<int>((*g)->output().output_ids.size());
        REQUIRE(model.make_room(**g));
      }
      REQUIRE_FALSE(model.step({g->get()}));
    }
    CHECK(preempted_at == 3);  // 30 prompt tokens and the first 2 new ones fill two blocks
    CHECK((*g)->output().output_ids == own);
    // This one is done; the preempted one computes its KV again and finishes as if alone.
    const auto before = (*h)->output().output_ids;
    g->reset();
    REQUIRE_FALSE(model.restore(**h));
    CHECK_FALSE((*h)->preempted());
    while (!(*h)->finished())
      REQUIRE_FALSE(model.step({h->get()}));
    CHECK((*h)->output().output_ids == greedy(model, other, 4, false));
    CHECK(std::equal(before.begin(), before.end(), (*h)->output().output_ids.begin()));
    h->reset();
    CHECK(model.kv_pool_tokens_used() == 0);
  }
}

namespace {

struct run_result {
  std::vector<int32_t> ids;
  int64_t cached = 0;
};

run_result run(const base_model& m, const std::vector<int32_t>& prompt, const lora_adapter* adapter,
               bool pooled) {
  generation_params p;
  p.max_new_tokens = 24;
  p.sampling.temperature = 0;
  p.pooled_kv = pooled;
  auto g = m.begin(prompt, p, adapter);
  REQUIRE(g);
  while (!(*g)->finished())
    REQUIRE_FALSE(m.step({g->get()}));
  return {(*g)->output().output_ids, (*g)->output().cached_tokens};
}

}  // namespace

TEST_CASE("prefix cache: a shared prompt gives each adapter its own tokens, as without the cache",
          "[kv_pool][prefix]") {
  const auto dir = (std::filesystem::temp_directory_path() / "adapterd-prefix-cache-test").string();
  tiny_model_spec spec;
  spec.adapters = 2;
  REQUIRE(write_tiny_model(spec, dir + "/m", dir + "/a"));
  load_options options;
  options.device = "cpu";
  options.kv_pool_tokens = 1024;
  options.prefix_cache = true;
  auto m = base_model::load(dir + "/m", options);
  REQUIRE(m);
  const auto& model = **m;
  auto a = model.load_adapter(dir + "/a");
  auto b = model.load_adapter(dir + "/a-1");
  REQUIRE(a);
  REQUIRE(b);
  std::vector<int32_t> prompt;
  for (int i = 0; i < 70; ++i)
    prompt.push_back(static_cast<int32_t>(3 + (i * 11) % 250));
  std::vector<std::vector<int32_t>> outputs;
  for (const lora_adapter* adapter :
       {static_cast<const lora_adapter*>(nullptr), a->get(), b->get()}) {
    const auto alone = run(model, prompt, adapter, false);  // a cache of its own: no sharing
    const auto first = run(model, prompt, adapter, true);
    const auto second = run(model, prompt, adapter, true);
    CHECK(first.cached == 0);    // nothing before it under this adapter
    CHECK(second.cached == 64);  // 69 reusable tokens: four whole blocks
    CHECK(first.ids == alone.ids);
    CHECK(second.ids == alone.ids);
    // the conversation goes on: prompt + answer + more, reusing the answer's blocks too
    auto longer = prompt;
    longer.insert(longer.end(), second.ids.begin(), second.ids.end() - 1);
    for (int i = 0; i < 5; ++i)
      longer.push_back(static_cast<int32_t>(40 + i));
    const auto turn = run(model, longer, adapter, true);
    CHECK(turn.cached == (70 + 23 - 1) / 16 * 16);
    CHECK(turn.ids == run(model, longer, adapter, false).ids);
    outputs.push_back(second.ids);
  }
  CHECK(outputs[0] != outputs[1]);
  CHECK(outputs[1] != outputs[2]);
  const auto s = model.kv_pool_stats();
  CHECK(s.used == 0);
  CHECK(s.hits >= 6);
  // an adapter re-written under the same directory (re-trained) has other content: no hit
  spec.seed = 99;
  REQUIRE(write_tiny_model(spec, dir + "/m2", dir + "/a"));
  auto retrained = model.load_adapter(dir + "/a");
  REQUIRE(retrained);
  const auto fresh = run(model, prompt, retrained->get(), true);
  CHECK(fresh.cached == 0);
  CHECK(fresh.ids == run(model, prompt, retrained->get(), false).ids);
  model.drop_prefix_cache();
  CHECK(model.kv_pool_stats().cached == 0);
  CHECK(run(model, prompt, nullptr, true).cached == 0);
}
