#include "messages/errors.hpp"

namespace adapterd::messages {

const char* to_string(errc code) {
  switch (code) {
    case errc::bad_request: return "bad_request";
    case errc::unknown_model: return "unknown_model";
    case errc::adapter_not_found: return "adapter_not_found";
    case errc::adapter_forbidden: return "adapter_forbidden";
    case errc::invalid_adapter: return "invalid_adapter";
    case errc::context_overflow: return "context_overflow";
    case errc::out_of_memory: return "out_of_memory";
    case errc::insufficient_memory: return "insufficient_memory";
    case errc::model_load_failed: return "model_load_failed";
    case errc::timeout: return "timeout";
    case errc::unavailable: return "unavailable";
    case errc::internal: return "internal";
    case errc::overloaded: return "overloaded";
    case errc::cancelled: return "cancelled";
    case errc::unauthorized: return "unauthorized";
    case errc::worker_lost: return "worker_lost";
    case errc::job_not_found: return "job_not_found";
  }
  return "internal";
}

}  // namespace adapterd::messages
