#pragma once
// The order in which waiting requests are served. First by priority (lower first, as in
// vLLM's priority scheduling), then by start-time fair queuing over flows, a flow being one
// adapter under one API key: a request's tag is one past the later of its flow's previous
// tag and the last tag served. A flow that floods the queue gets one place per round, and
// a request of a quiet flow goes into the next round: behind at most one request of each
// other flow, however many those queued. Free of CAF and of the model, so that it can be
// tested alone.
#include <cstdint>
#include <map>
#include <string>

namespace adapterd::actors {

class fair_order {
 public:
  struct ticket {
    int32_t priority = 0;
    uint64_t tag = 0;
  };

  /// The ticket of a request of `flow` arriving now.
  ticket issue(const std::string& flow, int32_t priority);
  /// A request left the queue for the batch: the round it belongs to has begun.
  void served(const ticket& t);
  /// Whether a request holding `a` goes before one holding `b` (equal tickets: arrival).
  static bool before(const ticket& a, const ticket& b) {
    return a.priority != b.priority ? a.priority < b.priority : a.tag < b.tag;
  }
  /// Flows remembered (each waiting request keeps at most one alive).
  size_t flows() const { return last_tag_.size(); }

 private:
  std::map<std::string, uint64_t> last_tag_;
  uint64_t served_tag_ = 0;
};

}  // namespace adapterd::actors
