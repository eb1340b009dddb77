#include "actors/core/fair_order.hpp"

#include <algorithm>

namespace adapterd::actors {

fair_order::ticket fair_order::issue(const std::string& flow, int32_t priority) {
  auto& last = last_tag_[flow];
  last = std::max(last, served_tag_) + 1;
  return {priority, last};
}

void fair_order::served(const ticket& t) {
  served_tag_ = std::max(served_tag_, t.tag);
  // A flow whose last tag is served has nothing that could still need it: the next
  // request of that flow starts from served_tag_ anyway.
  for (auto it = last_tag_.begin(); it != last_tag_.end();)
    it = it->second <= served_tag_ ? last_tag_.erase(it) : std::next(it);
}

}  // namespace adapterd::actors
