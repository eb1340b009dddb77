#include "model/stop_filter.hpp"

#include <algorithm>

namespace adapterd::model {

std::string stop_filter::push(const std::string& text) {
  if (stopped_)
    return {};
  held_ += text;
  size_t cut = std::string::npos;
  for (const auto& stop : stops_)
    cut = std::min(cut, held_.find(stop));
  if (cut != std::string::npos) {
    stopped_ = true;
    auto out = held_.substr(0, cut);
    held_.clear();
    return out;
  }
  // Keep the longest tail that a stop string begins with; the rest is safe.
  size_t keep = 0;
  for (const auto& stop : stops_)
    for (size_t n = std::min(stop.size() - 1, held_.size()); n > keep; --n)
      if (held_.compare(held_.size() - n, n, stop, 0, n) == 0) {
        keep = n;
        break;
      }
  auto out = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return out;
}

std::string stop_filter::finish() {
  if (stopped_)
    return {};
  auto out = std::move(held_);
  held_.clear();
  return out;
}

}  // namespace adapterd::model
