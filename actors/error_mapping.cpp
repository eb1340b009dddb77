#include "actors/error_mapping.hpp"

#include "caf/sec.hpp"

#include "messages/type_ids.hpp"

namespace adapterd::actors {

caf::error make_failure(messages::errc code, const std::string& message) {
  return caf::make_error(code, message);
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
