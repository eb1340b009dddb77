#pragma once
// GET /metrics: the Prometheus text exposition format (version 0.0.4), from the node's
// health report and the HTTP layer's own request counts.
#include <string>

#include "messages/health.hpp"

namespace adapterd::http {

/// Counts one answered request under a bounded route label (unknown paths count as "other").
void count_request(const std::string& method, const std::string& path, unsigned status);

std::string prometheus_text(const messages::health_report& h);

}  // namespace adapterd::http
