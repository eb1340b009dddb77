// adapterd-make-tiny-model OUT_DIR [SEED] [ADAPTERS]: writes OUT_DIR/tiny-llama and
// OUT_DIR/tiny-llama-lora (and tiny-llama-lora-1 ... when ADAPTERS > 1).
#include <cstring>
#include <iostream>
#include <string>

#include "model/tiny_model.hpp"

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || argv[1][0] == '-') {
    std::cerr << "usage: adapterd-make-tiny-model OUT_DIR [SEED] [ADAPTERS]\n"
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
