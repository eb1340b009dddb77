// adapterd-make-tiny-model OUT_DIR: writes OUT_DIR/tiny-llama and OUT_DIR/tiny-llama-lora.
#include <cstring>
#include <iostream>
#include <string>

#include "model/tiny_model.hpp"

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || argv[1][0] == '-') {
    std::cerr << "usage: adapterd-make-tiny-model OUT_DIR [SEED]\n"
                 "writes OUT_DIR/tiny-llama (model) and OUT_DIR/tiny-llama-lora (adapter)\n";
    return argc < 2 || argv[1][0] == '-' ? 2 : 0;
  }
  adapterd::model::tiny_model_spec spec;
  if (argc > 2) {
    try {
      spec.seed = std::stoull(argv[2]);
    } catch (const std::exception&) {
      std::cerr << "adapterd-make-tiny-model: SEED must be a non-negative integer\n";
      return 2;
    }
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
