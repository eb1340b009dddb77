// Tool calls taken out of model output: any bytes, in any pieces, through each family's
// parser. The first byte picks the family and the piece size. When no call comes out, the
// content must be the output byte for byte: a parser may hold text back, never lose it.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "model/tools/tool_call_parser.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace adapterd::model;
  if (size == 0)
    return 0;
  const tool_syntax syntaxes[] = {tool_syntax::hermes, tool_syntax::llama3_json,
                                  tool_syntax::mistral, tool_syntax::json};
  const auto syntax = syntaxes[data[0] % 4];
  const bool forced = (data[0] & 4) != 0;
  const size_t piece = 1 + (data[0] >> 3);
  const std::string output(reinterpret_cast<const char*>(data) + 1, size - 1);
  tool_call_parser p(syntax, {"get_weather", "f"}, forced);
  std::string content;
  for (size_t i = 0; i < output.size(); i += piece)
    content += p.push(output.substr(i, piece));
  content += p.finish();
  if (p.calls().empty() && content != output)
    std::abort();
  for (const auto& call : p.calls())
    if (call.name != "get_weather" && call.name != "f")
      std::abort();
  return 0;
}
