#include "actors/core/path_policy.hpp"

#include <filesystem>
#include <vector>

namespace adapterd::actors {

namespace fs = std::filesystem;

namespace {

bool inside(const fs::path& candidate, const fs::path& root) {
  auto c = candidate.begin(), r = root.begin();
  for (; r != root.end(); ++r, ++c) {
    if (r->empty())
      continue;  // trailing separator
    if (c == candidate.end() || *c != *r)
      return false;
  }
  return true;
}

}  // namespace

std::optional<std::string> resolve_under_roots(const std::string& requested,
                                               const std::vector<std::string>& roots) {
  if (requested.empty() || requested.find('\0') != std::string::npos)
    return std::nullopt;
  fs::path requested_path = requested;
  std::optional<std::string> inside_but_missing;
  for (const auto& root : roots) {
    std::error_code ec;
    auto canonical_root = fs::weakly_canonical(root, ec);
    if (ec)
      continue;
    // A relative path may be written from the working directory or from the root.
    std::vector<fs::path> candidates{requested_path};
    if (requested_path.is_relative())
      candidates.push_back(canonical_root / requested_path);
    for (const auto& candidate : candidates) {
      auto resolved = fs::weakly_canonical(candidate, ec);
      if (ec || !inside(resolved, canonical_root))
        continue;
      if (fs::exists(resolved))
        return resolved.string();
      if (!inside_but_missing)
        inside_but_missing = resolved.string();
    }
  }
  return inside_but_missing;
}

std::optional<std::string> resolve_model_dir(const std::string& requested,
                                             const std::string& default_model,
                                             const std::vector<std::string>& roots) {
  if (requested.empty() || requested == default_model
      || requested == fs::path(default_model).filename().string())
    return default_model;
  auto path = resolve_under_roots(requested, roots);
  if (!path || !fs::exists(*path + "/config.json"))
    return std::nullopt;
  return path;
}

}  // namespace adapterd::actors
