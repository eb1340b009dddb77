#pragma once
// The Jinja lexer: a template's source split into text, {{ }} and {% %} pieces (with
// transformers' whitespace settings), and an expression into tokens.
#include <string>
#include <vector>

#include "model/template/value.hpp"

namespace adapterd::model::jinja {

struct token {
  enum kind_t { name, number, string, op, end } kind = end;
  std::string text;
};

std::vector<token> lex(const std::string& src);

struct piece {
  enum kind_t { text, output, statement } kind;
  std::string content;
};

// Splits the source into text, {{ }} and {% %} pieces, applying whitespace control and
// the trim_blocks / lstrip_blocks settings transformers renders with.
std::vector<piece> split_source(const std::string& src);

}  // namespace adapterd::model::jinja
