#pragma once
// Tool calls (OpenAI's tools, tool_choice and tool_calls): what a chat turn called, what a
// request offers and demands, and what the model's output called.
#include <cstdint>
#include <string>

#include "caf/meta/type_name.hpp"

namespace adapterd::messages {

/// A function call: made by an assistant turn of a chat, or parsed from the output.
struct tool_call {
  std::string id;
  std::string name;
  std::string arguments;  // JSON text, as OpenAI carries it
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, tool_call& x) {
  return f(caf::meta::type_name("adapterd::tool_call"), x.id, x.name, x.arguments);
}

/// OpenAI's tool_choice: whether the output may, must, or must not call the tools.
enum class tool_choice : uint8_t {
  none,       // the tools are not offered: plain text
  automatic,  // OpenAI's "auto": the model decides; its calls are parsed out of the text
  required,   // at least one call, enforced by the JSON grammar
  named,      // exactly one call of generate_request::tool_name, enforced likewise
};

}  // namespace adapterd::messages
