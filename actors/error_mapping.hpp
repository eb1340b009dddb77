#pragma once
// Errors at the actor boundary: model-layer errors become CAF errors carrying a
// messages::errc and a message; CAF errors become messages::failure for the HTTP side.
#include "caf/error.hpp"

#include "actors/core/model_errors.hpp"
#include "messages/errors.hpp"
#include "model/result.hpp"

namespace adapterd::actors {

caf::error make_failure(messages::errc code, const std::string& message);
caf::error from_model_error(const model::error& e);
messages::failure to_failure(const caf::error& e);

}  // namespace adapterd::actors
