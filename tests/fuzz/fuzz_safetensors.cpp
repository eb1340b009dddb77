// The safetensors header and layout checks, on arbitrary bytes.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "model/io/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::byte> bytes(size);
  for (size_t i = 0; i < size; ++i)
    bytes[i] = static_cast<std::byte>(data[i]);
  auto file = adapterd::model::safetensors_file::parse(std::move(bytes), "fuzz");
  (void)file;
  return 0;
}
