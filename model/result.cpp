#include "model/result.hpp"

namespace adapterd::model {

const char* to_string(errc code) {
  switch (code) {
    case errc::invalid_argument: return "invalid_argument";
    case errc::not_found: return "not_found";
    case errc::invalid_model: return "invalid_model";
    case errc::invalid_adapter: return "invalid_adapter";
    case errc::context_overflow: return "context_overflow";
    case errc::out_of_memory: return "out_of_memory";
    case errc::internal: return "internal";
  }
  return "internal";
}

}  // namespace adapterd::model
