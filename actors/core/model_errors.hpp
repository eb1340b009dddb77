#pragma once
// Model-layer errors as the failures that cross actor boundaries (messages::errc). CAF-free,
// so that the cores use it; actors/error_mapping.hpp turns failures into CAF errors.
#include "messages/errors.hpp"
#include "model/result.hpp"

namespace adapterd::actors {

messages::failure to_failure(const model::error& e);

}  // namespace adapterd::actors
