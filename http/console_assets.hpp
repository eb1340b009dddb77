#pragma once
// The web console's files, compiled into the binary (http/console/embed.cmake): the page,
// its script and style, and uPlot from npm at its locked version. Nothing is fetched from
// elsewhere, so the page works offline.
#include <string_view>
#include <vector>

namespace adapterd::http {

struct console_asset {
  std::string_view name;  // as in /console/assets/{name}; "index.html" is the page itself
  std::string_view content_type;
  std::string_view body;
};

const std::vector<console_asset>& console_assets();

/// The asset called `name`, or nullptr.
inline const console_asset* find_console_asset(std::string_view name) {
  for (const auto& a : console_assets())
    if (a.name == name)
      return &a;
  return nullptr;
}

}  // namespace adapterd::http
