#pragma once
// Which directories a request may name: a path is accepted only when, with symlinks and
// ".." resolved, it lies inside one of the configured roots.
#include <optional>
#include <string>
#include <vector>

namespace adapterd::actors {

/// The resolved path when `requested` lies inside one of `roots`; relative paths are
/// tried against each root in turn.
std::optional<std::string> resolve_under_roots(const std::string& requested,
                                               const std::vector<std::string>& roots);

/// The directory a base_model name stands for: the default model (by its path or its
/// directory's name), or a model directory (with a config.json) below `roots`.
std::optional<std::string> resolve_model_dir(const std::string& requested,
                                             const std::string& default_model,
                                             const std::vector<std::string>& roots);

}  // namespace adapterd::actors
