// adapterd-make-tiny-model OUT_DIR [SEED] [ADAPTERS] [SIZE]: writes OUT_DIR/tiny-llama and
// OUT_DIR/tiny-llama-lora (and tiny-llama-lora-1 ... when ADAPTERS > 1). SIZE "bench" makes
// a 12-layer, 768-wide model (~78 M parameters, 290 MiB fp32) whose decode is bound by
// weight reads, for benchmarks, with 4096 positions (room for adapterd-load --long-prompt); "base"
// a 9-layer, 1024-wide one (102 M, 408.8 MB fp32) for the roofline report; "half" a 20-layer,
// 1536-wide one (~0.5 B, 2 GB fp32) whose weights dwarf every cache, for the weight formats'
// rooflines.
#include <cstring>
#include <iostream>
#include <string>

#include "model/io/tiny_model.hpp"

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || argv[1][0] == '-') {
    std::cerr
        << "usage: adapterd-make-tiny-model OUT_DIR [SEED] [ADAPTERS] [tiny|bench|base|half]\n"
           "writes OUT_DIR/tiny-llama (model) and OUT_DIR/tiny-llama-lora (adapter),\n"
           "plus OUT_DIR/tiny-llama-lora-1 ... when ADAPTERS > 1\n";
    return argc < 2 || argv[1][0] == '-' ? 2 : 0;
  }
  adapterd::model::tiny_model_spec spec;
  try {
    if (argc > 2)
      spec.seed = std::stoull(argv[2]);
    if (argc > 3)
      spec.adapters = std::stoi(argv[3]);
  } catch (const std::exception&) {
    std::cerr << "adapterd-make-tiny-model: SEED and ADAPTERS must be non-negative integers\n";
    return 2;
  }
  const std::pair<const char*, adapterd::model::llama_shape> sizes[] = {
      {"bench", {768, 2048, 12, 12, 4, 4096}},
      {"base", {1024, 2816, 9, 16, 4, 1024}},
      {"half", {1536, 4096, 20, 16, 4, 1024}}};
  std::string size = argc > 4 ? argv[4] : "tiny";
  bool known = size == "tiny";
  for (const auto& [name, shape] : sizes)
    if (size == name) {
      spec.shape = shape;
      spec.lora_rank = 16;
      known = true;
    }
  if (!known) {
    std::cerr << "adapterd-make-tiny-model: SIZE must be tiny, bench, base or half\n";
    return 2;
  }
  if (spec.adapters < 1 || spec.adapters > 64) {
    std::cerr << "adapterd-make-tiny-model: ADAPTERS must be 1 to 64\n";
    return 2;
  }
  std::string out = argv[1];
  auto written = adapterd::model::write_tiny_model(spec, out + "/tiny-llama", out + "/tiny-llama-lora");
  if (!written) {
    std::cerr << "adapterd-make-tiny-model: " << written.err().message << "\n";
    return 1;
  }
  std::cout << "wrote " << out << "/tiny-llama and " << out << "/tiny-llama-lora\n";
  return 0;
}
