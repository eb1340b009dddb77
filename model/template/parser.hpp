#pragma once
// The Jinja parser: pieces and tokens from the lexer into the evaluator's tree.
#include <string>

#include "model/template/evaluator.hpp"

namespace adapterd::model::jinja {

/// The statements of a whole template (after Jinja's trailing-newline rule).
body parse_template(const std::string& text);

}  // namespace adapterd::model::jinja
