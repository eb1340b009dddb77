// The fixtures' golden outputs (an independent fp32 reference of transformers + PEFT)
// reproduced by the model layer, for every storage variant of each preset.
#include <cmath>
#include <cstring>
#include <map>
#include <memory>

#include <catch2/catch.hpp>

#include "model/base_model.hpp"
#include "model/io/safetensors.hpp"
#include "tests/fixtures.hpp"
#include "tests/model_helpers.hpp"

using namespace adapterd::model;
using adapterd::test::fixtures_dir;
using adapterd::test::have_fixtures;
using adapterd::test::read_json;
using adapterd::test::greedy;
using adapterd::test::max_abs_diff;

namespace {

std::shared_ptr<const base_model> load_or_fail(const std::string& dir) {
  auto m = base_model::load(dir, load_options{adapterd::test::test_device(), 0, "float32"});
  if (!m)
    FAIL("load " << dir << ": " << m.err().message);
  return *m;
}

// The adapters a preset's cases name, each loaded once.
class case_adapters {
public:
  case_adapters(const base_model& model, std::string root, const nlohmann::json& golden)
    : model_(model), root_(std::move(root)), golden_(golden) {}
  const lora_adapter* get(const nlohmann::json& test_case) {
    if (!test_case["adapter"].is_string())
      return nullptr;
    auto name = test_case["adapter"].get<std::string>();
    if (!loaded_.count(name)) {
      auto a = model_.load_adapter(root_ + "/" + golden_["adapters"][name]["dir"].get<std::string>());
      if (!a)
        FAIL(a.err().message);
      loaded_[name] = *a;
    }
    return loaded_[name].get();
  }
  size_t size() const { return loaded_.size(); }

private:
  const base_model& model_;
  std::string root_;
  const nlohmann::json& golden_;
  std::map<std::string, std::shared_ptr<const lora_adapter>> loaded_;
};

// A generation begun for every golden case of one adapter (or none), with the tokens it
// must give; `deferred(i)`: whether case i's prompt waits to be computed in the steps.
struct golden_rows {
  std::vector<std::unique_ptr<generation>> rows;
  std::vector<std::vector<int32_t>> expected;
  std::vector<std::string> names;

  template <class Deferred>
  golden_rows(const base_model& model, case_adapters& adapters, const nlohmann::json& golden,
              Deferred deferred) {
    for (const auto& c : golden["cases"]) {
      if (c["adapter"].is_array())
        continue;
      auto params = greedy(c["max_new_tokens"]);
      params.defer_prefill = deferred(rows.size());
      auto g = model.begin(c["prompt_ids"].get<std::vector<int32_t>>(), params, adapters.get(c));
      REQUIRE(g);
      rows.push_back(std::move(*g));
      expected.push_back(c["greedy_ids"].get<std::vector<int32_t>>());
      names.push_back(c["id"].get<std::string>());
    }
  }
  std::vector<generation*> batch() const {
    std::vector<generation*> out;
    for (const auto& r : rows)
      out.push_back(r.get());
    return out;
  }
};

}  // namespace

TEST_CASE("golden greedy tokens and logits for every preset and storage", "[model][golden]") {
  ADAPTERD_SKIP_WITHOUT_FIXTURES();
  for (const char* preset : {"llama", "qwen2"}) {
    auto root = fixtures_dir() + "/" + preset;
    auto golden = read_json(root + "/golden.json");
    auto logits_file = safetensors_file::open(root + "/golden_logits.safetensors");
    REQUIRE(logits_file);
    for (const auto& dir : golden["model_dirs"]) {
      auto model = load_or_fail(root + "/" + dir.get<std::string>());
      case_adapters adapters(*model, root, golden);
      size_t checked = 0;
      for (const auto& c : golden["cases"]) {
        if (c["adapter"].is_array())
          continue;  // several adapters active at once: not offered
        const lora_adapter* adapter = adapters.get(c);
        INFO(preset << "/" << dir.get<std::string>() << " case " << c["id"].get<std::string>());
        auto prompt = c["prompt_ids"].get<std::vector<int32_t>>();
        auto out = model->generate_ids(prompt, greedy(c["max_new_tokens"]), adapter);
        REQUIRE(out);
        CHECK(out->output_ids == c["greedy_ids"].get<std::vector<int32_t>>());
        CHECK(out->finish_reason == c["finish_reason"].get<std::string>());
        CHECK(model->tok().decode(out->output_ids, true) == c["text"].get<std::string>());
        ++checked;
        // Teacher-forced logits over prompt + greedy ids, against the golden rows.
        auto ids = prompt;
        auto gen = c["greedy_ids"].get<std::vector<int32_t>>();
        ids.insert(ids.end(), gen.begin(), gen.end());
        auto logits = model->logits(ids, adapter);
        REQUIRE(logits);
        const auto* rows = (*logits_file)->find(c["logits_key"].get<std::string>());
        REQUIRE(rows != nullptr);
        auto first = c["logits_rows"][0].get<size_t>();
        auto vocab = static_cast<size_t>(model->config().vocab_size);
        REQUIRE(rows->shape[1] == static_cast<int64_t>(vocab));
        std::vector<float> expected(static_cast<size_t>(rows->numel()));
        std::memcpy(expected.data(), rows->data, rows->nbytes);
        std::vector<float> mine(logits->begin() + static_cast<std::ptrdiff_t>(first * vocab),
                                logits->begin() + static_cast<std::ptrdiff_t>(first * vocab + expected.size()));
        CHECK(max_abs_diff(mine, expected) < 2e-3f);
        // The first generated step, against the reference's own top-5, to 1e-4.
        auto step_row = (prompt.size() - 1) * vocab;
        for (const auto& pair : c["first_step_top5"]) {
          auto id = pair[0].get<size_t>();
          CHECK(std::fabs((*logits)[step_row + id] - pair[1].get<float>()) < 1e-4f);
        }
      }
      CHECK(checked > 20);
    }
  }
}

TEST_CASE("KV-cached decoding equals full recomputation", "[model]") {
  ADAPTERD_SKIP_WITHOUT_FIXTURES();
  auto root = fixtures_dir() + "/llama";
  auto model = load_or_fail(root + "/model");
  auto adapter = model->load_adapter(root + "/adapters/lora_qv");
  REQUIRE(adapter);
  auto ids = model->tok().encode("KV caches must not change a single logit, ever.", true);
  for (const lora_adapter* a : {static_cast<const lora_adapter*>(nullptr), adapter->get()}) {
    auto full = model->logits(ids, a, false);
    auto step = model->logits(ids, a, true);
    REQUIRE(full);
    REQUIRE(step);
    REQUIRE(full->size() == step->size());
    CHECK(max_abs_diff(*full, *step) < 1e-4f);
  }
}

TEST_CASE("unmerged LoRA equals merged weights", "[model][lora]") {
  ADAPTERD_SKIP_WITHOUT_FIXTURES();
  for (auto [preset, name] : {std::pair{"llama", "lora_pattern"}, std::pair{"llama", "lora_all_rs"},
                              std::pair{"qwen2", "lora_mlp_rs"}}) {
    auto root = fixtures_dir() + "/" + preset;
    auto model = load_or_fail(root + "/model");
    auto adapter = model->load_adapter(root + "/adapters/" + name);
    REQUIRE(adapter);
    auto merged = model->merged_with(**adapter);
    REQUIRE(merged);
    auto ids = model->tok().encode("Merging is an optimisation, not a change of meaning.", true);
    auto unmerged_logits = model->logits(ids, adapter->get());
    auto merged_logits = (*merged)->logits(ids, nullptr);
    auto base_logits = model->logits(ids, nullptr);
    REQUIRE(unmerged_logits);
    REQUIRE(merged_logits);
    INFO(preset << "/" << name);
    CHECK(max_abs_diff(*unmerged_logits, *merged_logits) < 1e-3f);
    CHECK(max_abs_diff(*unmerged_logits, *base_logits) > 1e-2f);
    auto a = model->generate_ids(ids, greedy(12), adapter->get());
    auto b = (*merged)->generate_ids(ids, greedy(12), nullptr);
    REQUIRE(a);
    REQUIRE(b);
    CHECK(a->output_ids == b->output_ids);
  }
}

TEST_CASE("model load errors name what is wrong", "[model]") {
  auto missing = base_model::load("/nonexistent", load_options{"cpu", 0});
  REQUIRE_FALSE(missing);
  CHECK(missing.err().code == errc::invalid_model);
  if (!have_fixtures())
    return;
  auto model = load_or_fail(fixtures_dir() + "/llama/model");
  auto wrong_base = model->load_adapter(fixtures_dir() + "/qwen2/adapters/lora_attn");
  REQUIRE_FALSE(wrong_base);
  CHECK(wrong_base.err().code == errc::invalid_adapter);
  auto not_adapter = model->load_adapter(fixtures_dir() + "/llama/model");
  REQUIRE_FALSE(not_adapter);
  CHECK(not_adapter.err().code == errc::invalid_adapter);
  auto long_prompt = std::vector<int32_t>(600, 5);
  auto overflow = model->generate_ids(long_prompt, greedy(4), nullptr);
  REQUIRE_FALSE(overflow);
  CHECK(overflow.err().code == errc::context_overflow);
}

TEST_CASE("a batch mixing adapters gives every row its golden tokens", "[model][batch]") {
  ADAPTERD_SKIP_WITHOUT_FIXTURES();
  for (const char* preset : {"llama", "qwen2"}) {
    auto root = fixtures_dir() + "/" + preset;
    auto golden = read_json(root + "/golden.json");
    auto model = load_or_fail(root + "/model");
    case_adapters adapters(*model, root, golden);
    golden_rows g(*model, adapters, golden, [](size_t) { return false; });
    // Every case in one batch: base rows and rows of three adapters side by side.
    REQUIRE(adapters.size() >= 2);
    const auto batch = g.batch();
    for (int steps = 0; steps < 64; ++steps)
      REQUIRE_FALSE(model->step(batch));
    for (size_t i = 0; i < g.rows.size(); ++i) {
      INFO(preset << " case " << g.names[i]);
      CHECK(g.rows[i]->finished());
      CHECK(g.rows[i]->output().output_ids == g.expected[i]);
    }
  }
}

TEST_CASE("prompt slices stepped with decode rows in one pass give every row its golden tokens",
          "[model][batch]") {
  ADAPTERD_SKIP_WITHOUT_FIXTURES();
  // a few tokens a pass (several passes per prompt), or whole prompts (several done at once)
  const int64_t slice_tokens = GENERATE(3, 1000);
  for (const char* preset : {"llama", "qwen2"}) {
    auto root = fixtures_dir() + "/" + preset;
    auto golden = read_json(root + "/golden.json");
    auto model = load_or_fail(root + "/model");
    case_adapters adapters(*model, root, golden);
    // every other prompt computed in slices, in the steps
    golden_rows g(*model, adapters, golden, [](size_t i) { return i % 2 == 1; });
    const auto batch = g.batch();
    for (int steps = 0; steps < 200; ++steps) {
      std::vector<base_model::prompt_slice> slices;
      for (auto& r : g.rows)
        if (r->prefilling())
          slices.push_back({r.get(), slice_tokens});
      if (slices.empty()) {
        REQUIRE_FALSE(model->step(batch));
        continue;
      }
      auto together = model->step_with_prompts(batch, slices);
      if (!together) {
        WARN("this device does not run prompt slices and decode rows in one pass");
        return;
      }
      REQUIRE(static_cast<bool>(*together));
      REQUIRE((**together).size() == slices.size());
    }
    for (size_t i = 0; i < g.rows.size(); ++i) {
      INFO(preset << " case " << g.names[i] << ", slices of " << slice_tokens);
      CHECK(g.rows[i]->finished());
      CHECK(g.rows[i]->output().output_ids == g.expected[i]);
    }
  }
}
