// Compute dtypes, Mistral's sliding window, stop strings and weight errors, on the fixture
// models (copied and edited in a temporary directory where a case needs another config).
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <fstream>

#include <unistd.h>

#include <catch2/catch.hpp>

#include "model/base_model.hpp"
#include "model/io/safetensors.hpp"
#include "tests/fixtures.hpp"
#include "tests/model_helpers.hpp"

using namespace adapterd::model;
using adapterd::test::fixtures_dir;
using adapterd::test::read_json;
using adapterd::test::greedy;
using adapterd::test::max_abs_diff;
namespace fs = std::filesystem;

namespace {

struct temp_model {
  fs::path dir;
  explicit temp_model(const std::string& from) {
    dir = fs::temp_directory_path() / ("adapterd-model-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++));
    fs::remove_all(dir);
    fs::copy(from, dir, fs::copy_options::recursive);
  }
  ~temp_model() { fs::remove_all(dir); }
  static int& counter() {
    static int n = 0;
    return n;
  }
  void edit_config(const std::function<void(nlohmann::json&)>& edit) {
    auto config = read_json((dir / "config.json").string());
    edit(config);
    std::ofstream(dir / "config.json") << config.dump(2);
  }
};

}  // namespace

TEST_CASE("bfloat16 compute keeps the golden stable prefix", "[model][dtype]") {
  ADAPTERD_SKIP_WITHOUT_FIXTURES();
  for (const char* preset : {"llama", "qwen2"}) {
    auto root = fixtures_dir() + "/" + preset;
    auto golden = read_json(root + "/golden.json");
    auto model = base_model::load(root + "/model", load_options{adapterd::test::test_device(), 0, "bfloat16"});
    REQUIRE(model);
    CHECK((*model)->dtype() == "bfloat16");
    // bf16 rounds every activation: a logit may be off by up to ~0.2 here, so greedy may
    // only flip at a step whose golden top1-top2 margin is below twice that.
    const float logit_tolerance = 0.25f;
    for (const auto& c : golden["cases"]) {
      if (!c["adapter"].is_null())
        continue;
      auto prompt = c["prompt_ids"].get<std::vector<int32_t>>();
      auto expected = c["greedy_ids"].get<std::vector<int32_t>>();
      auto margins = c["step_margins"].get<std::vector<float>>();
      auto out = (*model)->generate_ids(prompt, greedy(static_cast<uint32_t>(expected.size())), nullptr);
      REQUIRE(out);
      INFO(preset << " case " << c["id"].get<std::string>());
      size_t first_diff = 0;
      while (first_diff < expected.size() && first_diff < out->output_ids.size()
             && out->output_ids[first_diff] == expected[first_diff])
        ++first_diff;
      if (first_diff < expected.size() && first_diff < out->output_ids.size())
        CHECK(margins[first_diff] < 2 * logit_tolerance);
      auto logits = (*model)->logits(prompt, nullptr);
      REQUIRE(logits);
      auto row = (prompt.size() - 1) * static_cast<size_t>((*model)->config().vocab_size);
      for (const auto& pair : c["first_step_top5"])
        CHECK(std::fabs((*logits)[row + pair[0].get<size_t>()] - pair[1].get<float>()) < logit_tolerance);
    }
  }
  auto fp16_on_cpu = base_model::load(fixtures_dir() + "/llama/model", load_options{"cpu", 0, "float16"});
  if (adapterd::test::test_device() != "cpu") {
    auto fp16 = base_model::load(fixtures_dir() + "/llama/model",
                                 load_options{adapterd::test::test_device(), 0, "float16"});
    REQUIRE(fp16);
    auto out = (*fp16)->generate_ids({507, 39, 68}, greedy(4), nullptr);
    REQUIRE(out);
  }
  REQUIRE_FALSE(fp16_on_cpu);
  CHECK(fp16_on_cpu.err().message.find("CUDA") != std::string::npos);
}

TEST_CASE("Mistral's sliding window limits attention, cached or not", "[model][mistral]") {
  ADAPTERD_SKIP_WITHOUT_FIXTURES();
  auto llama = base_model::load(fixtures_dir() + "/llama/model", load_options{"cpu", 0});
  REQUIRE(llama);
  auto ids = (*llama)->tok().encode("A sliding window forgets what lies too far behind it.", true);
  REQUIRE(ids.size() > 8);
  auto full = (*llama)->logits(ids, nullptr);
  REQUIRE(full);

  temp_model wide(fixtures_dir() + "/llama/model");
  wide.edit_config([&](nlohmann::json& c) {
    c["architectures"] = {"MistralForCausalLM"};
    c["sliding_window"] = 4096;
  });
  auto wide_model = base_model::load(wide.dir.string(), load_options{"cpu", 0});
  REQUIRE(wide_model);
  auto same = (*wide_model)->logits(ids, nullptr);
  REQUIRE(same);
  CHECK(max_abs_diff(*full, *same) < 1e-5f);  // a window longer than the text changes nothing

  temp_model narrow(fixtures_dir() + "/llama/model");
  narrow.edit_config([&](nlohmann::json& c) {
    c["architectures"] = {"MistralForCausalLM"};
    c["sliding_window"] = 4;
  });
  auto narrow_model = base_model::load(narrow.dir.string(), load_options{"cpu", 0});
  REQUIRE(narrow_model);
  auto windowed = (*narrow_model)->logits(ids, nullptr);
  auto windowed_cached = (*narrow_model)->logits(ids, nullptr, true);
  REQUIRE(windowed);
  REQUIRE(windowed_cached);
  auto vocab = static_cast<size_t>((*llama)->config().vocab_size);
  std::vector<float> first_rows(windowed->begin(), windowed->begin() + 4 * static_cast<std::ptrdiff_t>(vocab));
  CHECK(max_abs_diff(first_rows, *full) < 1e-5f);          // inside the window: the same
  CHECK(max_abs_diff(*windowed, *full, 5 * vocab) > 1e-3f);  // beyond it: different
  CHECK(max_abs_diff(*windowed, *windowed_cached) < 1e-4f);  // the KV cache agrees
}

TEST_CASE("stop strings end generation before them", "[model][stop]") {
  ADAPTERD_SKIP_WITHOUT_FIXTURES();
  auto model = base_model::load(fixtures_dir() + "/qwen2/model", load_options{"cpu", 0});
  REQUIRE(model);
  auto free_run = (*model)->generate("The quick brown fox", greedy(24), nullptr);
  REQUIRE(free_run);
  REQUIRE(free_run->text.size() > 12);
  auto stop_text = free_run->text.substr(6, 3);
  auto params = greedy(24);
  params.stop = {"never-appears", stop_text};
  auto stopped = (*model)->generate("The quick brown fox", params, nullptr);
  REQUIRE(stopped);
  CHECK(stopped->finish_reason == "stop");
  CHECK(stopped->text == free_run->text.substr(0, free_run->text.find(stop_text)));
  CHECK(stopped->output_ids.size() < free_run->output_ids.size());
}

TEST_CASE("missing and mis-shaped tensors are named", "[model][errors]") {
  ADAPTERD_SKIP_WITHOUT_FIXTURES();
  temp_model shaped(fixtures_dir() + "/llama/model");
  shaped.edit_config([](nlohmann::json& c) { c["intermediate_size"] = 300; });
  auto r = base_model::load(shaped.dir.string(), load_options{"cpu", 0});
  REQUIRE_FALSE(r);
  CHECK(r.err().message.find("model.layers.0.mlp.gate_proj.weight") != std::string::npos);

  temp_model missing(fixtures_dir() + "/llama/model");
  auto file = safetensors_file::open((missing.dir / "model.safetensors").string());
  REQUIRE(file);
  std::vector<tensor_blob> kept;
  for (const auto& t : (*file)->tensors())
    if (t.name != "model.layers.1.self_attn.k_proj.weight")
      kept.push_back({t.name, t.type, t.shape, std::vector<std::byte>(t.data, t.data + t.nbytes)});
  file = safetensors_file::open(fixtures_dir() + "/llama/model/model.safetensors");  // drop the mapping
  REQUIRE(write_safetensors((missing.dir / "model.safetensors").string(), kept));
  auto m = base_model::load(missing.dir.string(), load_options{"cpu", 0});
  REQUIRE_FALSE(m);
  CHECK(m.err().message.find("missing tensor model.layers.1.self_attn.k_proj.weight") != std::string::npos);
}

TEST_CASE("chunked prefill gives the same tokens", "[model][memory]") {
  ADAPTERD_SKIP_WITHOUT_FIXTURES();
  auto model = base_model::load(fixtures_dir() + "/llama/model", load_options{"cpu", 0});
  REQUIRE(model);
  auto ids = (*model)->tok().encode("Prefill in chunks of three tokens should not change a thing.", true);
  auto params = greedy(10);
  auto whole = (*model)->generate_ids(ids, params, nullptr);
  params.prefill_chunk = 3;
  auto chunked = (*model)->generate_ids(ids, params, nullptr);
  REQUIRE(whole);
  REQUIRE(chunked);
  CHECK(whole->output_ids == chunked->output_ids);
}

TEST_CASE("an allocation failure is an out_of_memory error, and chunking gets round it", "[model][memory]") {
  ADAPTERD_SKIP_WITHOUT_FIXTURES();
  load_options opts{"cpu", 0};
  opts.activation_limit_bytes = 8 * 256 * 3 * 4;  // an 8-token forward pass at most
  auto model = base_model::load(fixtures_dir() + "/llama/model", opts);
  REQUIRE(model);
  auto ids = (*model)->tok().encode("This prompt is longer than eight tokens, which is too much.", true);
  auto params = greedy(4);
  auto failed = (*model)->generate_ids(ids, params, nullptr);
  REQUIRE_FALSE(failed);
  CHECK(failed.err().code == errc::out_of_memory);
  params.prefill_chunk = 8;
  auto chunked = (*model)->generate_ids(ids, params, nullptr);
  REQUIRE(chunked);
  CHECK(chunked->output_ids.size() == 4);
}

TEST_CASE("size estimates match what loading takes", "[model][memory]") {
  ADAPTERD_SKIP_WITHOUT_FIXTURES();
  for (const char* dir : {"/llama/model", "/llama/model_bf16_sharded", "/qwen2/model"}) {
    auto path = fixtures_dir() + dir;
    auto estimate = estimate_weight_bytes(path, load_options{"cpu", 0});
    auto model = base_model::load(path, load_options{"cpu", 0});
    REQUIRE(estimate);
    REQUIRE(model);
    INFO(dir);
    CHECK(*estimate == (*model)->weight_bytes());
  }
  auto model = base_model::load(fixtures_dir() + "/llama/model", load_options{"cpu", 0});
  REQUIRE(model);
  auto dir = fixtures_dir() + "/llama/adapters/lora_all_rs";
  auto estimate = (*model)->estimate_adapter_bytes(dir);
  auto adapter = (*model)->load_adapter(dir);
  REQUIRE(estimate);
  REQUIRE(adapter);
  CHECK(*estimate == (*adapter)->bytes());
  // 3 layers x (k + v) x 2 kv heads x 16 dims x 4 bytes per token
  CHECK((*model)->kv_cache_bytes(10) == 3 * 2 * 2 * 16 * 4 * 10);
}

TEST_CASE("an adapter moved to host memory and back gives the same output", "[model][memory]") {
  ADAPTERD_SKIP_WITHOUT_FIXTURES();
  auto model = base_model::load(fixtures_dir() + "/llama/model", load_options{"cpu", 0});
  REQUIRE(model);
  auto adapter = (*model)->load_adapter(fixtures_dir() + "/llama/adapters/lora_qv");
  REQUIRE(adapter);
  auto host = (*model)->move_adapter(**adapter, true);
  REQUIRE(host);
  CHECK((*host)->device() == "cpu");
  auto back = (*model)->move_adapter(**host, false);
  REQUIRE(back);
  auto ids = (*model)->tok().encode("tiers", true);
  auto a = (*model)->generate_ids(ids, greedy(6), adapter->get());
  auto b = (*model)->generate_ids(ids, greedy(6), back->get());
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a->output_ids == b->output_ids);
}
