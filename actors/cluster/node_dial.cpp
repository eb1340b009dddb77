#include "actors/cluster/node_dial.hpp"

#include <charconv>

namespace adapterd::actors {

std::optional<node_address> parse_node_address(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size())
    return std::nullopt;
  unsigned port = 0;
  const char* first = text.data() + colon + 1;
  const char* last = text.data() + text.size();
  auto [end, ec] = std::from_chars(first, last, port);
  if (ec != std::errc{} || end != last || port == 0 || port > 65535)
    return std::nullopt;
  return node_address{text.substr(0, colon), static_cast<uint16_t>(port)};
}

}  // namespace adapterd::actors
