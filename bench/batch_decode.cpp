// adapterd-batch-decode MODEL_DIR [ADAPTER_DIR...]: decode tokens/s of the model layer at
// batch sizes 1, 4 and 16 (or $BATCHES, e.g. BATCHES=1 for a profile of batch 1) (rows cycling
// through the adapters and the base model), measured in one run. Model compute only: no HTTP, no
// actors. KV=pooled takes each sequence's cache from the model's paged pool, its blocks scattered
// between other sequences' (as a busy server's are); the default gives each its own cache, blocks
// in order.
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include "model/base_model.hpp"

using namespace adapterd::model;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: adapterd-batch-decode MODEL_DIR [ADAPTER_DIR...]\n";
    return 2;
  }
  const bool pooled = std::getenv("KV") != nullptr && std::string(std::getenv("KV")) == "pooled";
  load_options options{"auto", 0};
  options.kv_pool_tokens = pooled ? 65536 : 0;
  auto model = base_model::load(argv[1], options);
  if (!model) {
    std::cerr << "adapterd-batch-decode: " << model.err().message << "\n";
    return 1;
  }
  std::vector<std::shared_ptr<const lora_adapter>> adapters{nullptr};
  for (int i = 2; i < argc; ++i) {
    auto a = (*model)->load_adapter(argv[i]);
    if (!a) {
      std::cerr << "adapterd-batch-decode: " << a.err().message << "\n";
      return 1;
    }
    adapters.push_back(*a);
  }
  std::cout << "model " << argv[1] << ": " << ((*model)->weight_bytes() >> 20) << " MiB on "
            << (*model)->device() << ", " << adapters.size() - 1 << " adapters\n";
  const int steps = std::getenv("STEPS") ? std::atoi(std::getenv("STEPS")) : 32;
  auto prompt = (*model)->tok().encode("The quick brown fox jumps over the lazy dog.", true);
  generation_params params;
  params.max_new_tokens = steps + 1;
  params.pooled_kv = pooled;
  double batch1 = 0;
  std::vector<int> batches{1, 4, 16};
  if (const char* env = std::getenv("BATCHES")) {
    batches.clear();
    for (const char* p = env; *p;) {
      char* end = nullptr;
      long v = std::strtol(p, &end, 10);
      if (end == p || v < 1 || v > 256) {
        std::cerr << "adapterd-batch-decode: BATCHES must be a list of 1 to 256, like 1,4,16\n";
        return 2;
      }
      batches.push_back(static_cast<int>(v));
      p = *end == ',' ? end + 1 : end;
    }
  }
  for (int rows : batches) {
    std::vector<std::unique_ptr<generation>> gens, between;
    std::vector<generation*> batch;
    if (pooled) {  // every other pair of blocks held by an idle sequence: the batch's lie between
      for (int r = 0; r < 2 * rows; ++r)
        if (auto g = (*model)->begin(prompt, params, nullptr))
          between.push_back(std::move(*g));
      for (size_t r = 0; r < between.size(); r += 2)
        between[r].reset();
    }
    for (int r = 0; r < rows; ++r) {
      auto g = (*model)->begin(prompt, params, adapters[static_cast<size_t>(r) % adapters.size()].get());
      if (!g) {
        std::cerr << "adapterd-batch-decode: " << g.err().message << "\n";
        return 1;
      }
      gens.push_back(std::move(*g));
      batch.push_back(gens.back().get());
    }
    auto start = std::chrono::steady_clock::now();
    for (int s = 0; s < steps; ++s)
      if (auto failed = (*model)->step(batch)) {
        std::cerr << "adapterd-batch-decode: " << failed->message << "\n";
        return 1;
      }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    double tps = rows * steps / secs;
    if (rows == 1)
      batch1 = tps;
    std::cout << "batch " << rows << ": " << tps << " tokens/s (" << tps / batch1 << "x batch 1)\n";
  }
  return 0;
}
