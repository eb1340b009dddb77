// Structured outputs: a client's JSON schema compiled, then bytes run through its matcher
// (the input is the schema, a NUL byte, then the text). Neither may crash or loop.
#include <cstdint>
#include <string>

#include "model/grammar/json_matcher.hpp"
#include "model/grammar/json_schema.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const auto split = input.find('\0');
  const auto schema = input.substr(0, split);
  const auto text = split == std::string::npos ? std::string() : input.substr(split + 1);
  auto graph = adapterd::model::compile_json_schema(schema);
  if (!graph)
    return 0;
  adapterd::model::json_matcher m(*graph);
  for (unsigned char c : text) {
    auto before = m;
    if (!m.feed_byte(c)) {
      m = before;
      continue;  // skip what the schema refuses, so that the walk gets deep
    }
    (void)m.key();
  }
  (void)m.can_end();
  (void)m.finished();
  return 0;
}
