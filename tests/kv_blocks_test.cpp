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
  auto a = b.take(3), m = b.take(4), c = b.take(3);
  REQUIRE(a);
  REQUIRE(m);
  REQUIRE(c);
  CHECK(*a == std::vector<int32_t>{0, 1, 2});  // a fresh pool hands out blocks in order
  CHECK(b.free() == 0);
  CHECK_FALSE(b.take(1));
  b.give_back(*a);
  b.give_back(*c);
  // 6 free blocks in two separate places serve one sequence of 6 (first fit over ranges could not)
  auto big = b.take(6);
  REQUIRE(big);
  CHECK(big->size() == 6);
  CHECK(b.used() == 10);
  b.give_back(*big);
  b.give_back(*big);  // twice: the second changes nothing
  b.give_back({-1, 10, 99});
  CHECK(b.free() == 6);
  CHECK_FALSE(b.take(0));
  CHECK_FALSE(b.take(-2));
  CHECK_FALSE(b.take(7));
  b.give_back(*m);
  CHECK(b.free() == 10);
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
    CHECK(model.kv_pool_tokens_used() == 4 * kv_block_tokens);  // 40 + 20 tokens: 4 blocks
    CHECK(greedy(model, prompt, 60, true) == own);
    second->reset();
    CHECK(model.kv_pool_tokens_used() == 0);
  }
}
