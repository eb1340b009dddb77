#include "actors/error_mapping.hpp"

#include "caf/sec.hpp"

#include "messages/type_ids.hpp"

namespace adapterd::actors {

caf::error make_failure(messages::errc code, const std::string& message) {
  return caf::make_error(code, message);
}

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

caf::error from_model_error(const model::error& e) {
  auto f = to_failure(e);
  return make_failure(f.code, f.message);
}

messages::failure to_failure(const caf::error& e) {
  if (e.category() == caf::atom("adapterd")) {
    std::string message;
    if (!e.context().empty() && e.context().match_element<std::string>(0))
      message = e.context().get_as<std::string>(0);
    return {static_cast<messages::errc>(e.code()), message};
  }
  if (e == caf::sec::request_timeout)
    return {messages::errc::timeout, "no answer within the request timeout"};
  return {messages::errc::unavailable, "service actor unavailable: " + caf::to_string(e)};
}

}  // namespace adapterd::actors
