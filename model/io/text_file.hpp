#pragma once
// Whole-file reads of the small JSON files a model directory holds.
#include <optional>
#include <string>

namespace adapterd::model {

/// The file's bytes, or nullopt when it cannot be opened.
std::optional<std::string> read_text_file(const std::string& path);

}  // namespace adapterd::model
