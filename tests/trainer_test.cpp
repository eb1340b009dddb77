// Training with autograd: the loss falls on a fixed seed, and what the trainer saves loads
// back into the inference path with the trainer's own outputs.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "model/base_model.hpp"
#include "model/io/tiny_model.hpp"
#include "model/train/trainer.hpp"

using namespace adapterd::model;

namespace {

std::string temp_dir(const std::string& name) {
  auto dir = (std::filesystem::temp_directory_path() / ("adapterd-train-" + name)).string();
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// A small fortune-style file: entries separated by "%" lines.
std::string write_corpus(const std::string& dir) {
  std::ofstream out(dir + "/corpus.txt");
  const char* lines[] = {"The quick brown fox jumps over the lazy dog.", "A penny saved is a penny earned.",
                         "All that glitters is not gold.", "Fortune favours the bold.",
                         "Time flies like an arrow; fruit flies like a banana."};
  for (int i = 0; i < 60; ++i)
    out << lines[i % 5] << " " << lines[(i * 3 + 1) % 5] << "\n%\n";
  return dir + "/corpus.txt";
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, static_cast<double>(std::fabs(a[i] - b[i])));
  return worst;
}

}  // namespace

TEST_CASE("pretraining lowers the loss, and the saved model serves the trainer's logits", "[train]") {
  auto dir = temp_dir("pretrain");
  pretrain_spec spec;
  spec.data.path = write_corpus(dir);
  spec.merges = 100;
  spec.hidden = 64;
  spec.intermediate = 128;
  spec.layers = 2;
  spec.heads = 4;
  spec.context = 64;
  spec.steps = 40;
  spec.batch = 8;
  spec.seq_len = 32;
  spec.threads = 1;
  auto run = start_pretraining(spec, dir + "/model");
  REQUIRE(run);
  double before = (*run)->eval_loss(4);
  while (!(*run)->done())
    REQUIRE((*run)->step());
  double after = (*run)->eval_loss(4);
  CHECK(after < before - 0.5);
  REQUIRE((*run)->save(dir + "/model"));
  load_options options;
  options.device = "cpu";
  auto model = base_model::load(dir + "/model", options);
  REQUIRE(model);
  std::vector<int32_t> ids{5, 80, 120, 33, 7, 61};
  auto served = (*model)->logits(ids, nullptr);
  REQUIRE(served);
  CHECK(max_abs_diff(*served, (*run)->logits(ids)) < 1e-3);
}

TEST_CASE("LoRA training lowers the loss, and the saved adapter reproduces the trainer's logits", "[train]") {
  auto dir = temp_dir("lora");
  tiny_model_spec tiny;
  REQUIRE(write_tiny_model(tiny, dir + "/base", dir + "/unused"));
  lora_spec spec;
  spec.base_dir = dir + "/base";
  spec.data.path = write_corpus(dir);
  spec.targets = {"q_proj", "v_proj", "down_proj"};
  spec.steps = 30;
  spec.batch = 4;
  spec.seq_len = 32;
  spec.lr = 5e-3;
  spec.threads = 1;
  auto run = start_lora_training(spec);
  REQUIRE(run);
  double before = (*run)->eval_loss(4);
  while (!(*run)->done())
    REQUIRE((*run)->step());
  double after = (*run)->eval_loss(4);
  CHECK(after < before - 0.2);
  REQUIRE((*run)->save(dir + "/adapter"));
  CHECK(std::filesystem::exists(dir + "/adapter/adapter_config.json"));
  load_options options;
  options.device = "cpu";
  auto model = base_model::load(spec.base_dir, options);
  REQUIRE(model);
  auto adapter = (*model)->load_adapter(dir + "/adapter");
  REQUIRE(adapter);
  std::vector<int32_t> ids{3, 40, 99, 12, 250, 7, 18};
  auto with = (*model)->logits(ids, adapter->get());
  auto without = (*model)->logits(ids, nullptr);
  REQUIRE(with);
  REQUIRE(without);
  CHECK(max_abs_diff(*with, (*run)->logits(ids)) < 1e-3);
  CHECK(max_abs_diff(*with, *without) > 1e-2);  // the adapter learned something
}

TEST_CASE("training refuses what it cannot do, with reasons", "[train]") {
  auto dir = temp_dir("refuse");
  lora_spec spec;
  spec.base_dir = dir + "/nothing-here";
  spec.data.path = write_corpus(dir);
  auto run = start_lora_training(spec);
  REQUIRE_FALSE(run);
  tiny_model_spec tiny;
  REQUIRE(write_tiny_model(tiny, dir + "/base", dir + "/unused"));
  spec.base_dir = dir + "/base";
  spec.targets = {"qkv_proj"};
  run = start_lora_training(spec);
  REQUIRE_FALSE(run);
  CHECK(run.err().message.find("qkv_proj") != std::string::npos);
  spec.targets = {"q_proj"};
  spec.data.path = dir + "/missing.txt";
  REQUIRE_FALSE(start_lora_training(spec));
  std::ofstream(dir + "/bad.jsonl") << "{\"text\": \"fine\"}\nnot json\n";
  spec.data.path = dir + "/bad.jsonl";
  run = start_lora_training(spec);
  REQUIRE_FALSE(run);
  CHECK(run.err().message.find("bad.jsonl:2") != std::string::npos);
}

TEST_CASE("the same seed trains the same weights, bit for bit", "[train]") {
  auto dir = temp_dir("seed");
  auto run_once = [&](const std::string& out) {
    pretrain_spec spec;
    spec.data.path = write_corpus(dir);
    spec.merges = 50;
    spec.hidden = 32;
    spec.intermediate = 64;
    spec.layers = 1;
    spec.heads = 2;
    spec.context = 32;
    spec.steps = 5;
    spec.batch = 4;
    spec.seq_len = 16;
    spec.threads = 1;
    auto run = start_pretraining(spec, out);
    REQUIRE(run);
    while (!(*run)->done())
      REQUIRE((*run)->step());
    REQUIRE((*run)->save(out));
    std::ifstream in(out + "/model.safetensors", std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  auto a = run_once(dir + "/a"), b = run_once(dir + "/b");
  CHECK(a.size() > 1000);
  CHECK(a == b);
}
