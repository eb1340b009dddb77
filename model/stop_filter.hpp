#pragma once
// Stop strings over streamed text: releases only text that cannot be the start of a stop
// string, and ends the text before the first stop string that appears.
#include <string>
#include <vector>

namespace adapterd::model {

class stop_filter {
public:
  explicit stop_filter(std::vector<std::string> stops) : stops_(std::move(stops)) {}

  /// Adds decoded text; returns what is now safe to release.
  std::string push(const std::string& text);
  /// At the end: releases what was held back (nothing once a stop string was seen).
  std::string finish();
  bool stopped() const { return stopped_; }

private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace adapterd::model
