#include "actors/core/model_errors.hpp"

namespace adapterd::actors {

messages::failure to_failure(const model::error& e) {
  using messages::errc;
  switch (e.code) {
    case model::errc::invalid_argument: return {errc::bad_request, e.message};
    case model::errc::not_found: return {errc::unknown_model, e.message};
    case model::errc::invalid_model: return {errc::model_load_failed, e.message};
    case model::errc::invalid_adapter: return {errc::invalid_adapter, e.message};
    case model::errc::context_overflow: return {errc::context_overflow, e.message};
    case model::errc::out_of_memory: return {errc::out_of_memory, e.message};
    case model::errc::internal: return {errc::internal, e.message};
  }
  return {errc::internal, e.message};
}

}  // namespace adapterd::actors
