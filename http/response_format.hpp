#pragma once
// Structured outputs at the edge: OpenAI's response_format and /generate-lite's
// json_schema, read into the request. The schema travels as text in the key order the
// client wrote it (the output lists its properties in that order); the model layer
// compiles it and refuses, by keyword, what it cannot enforce.
#include <string>

#include "http/json_fields.hpp"
#include "messages/generation.hpp"

namespace adapterd::http {

/// response_format: {"type": "text"}, {"type": "json_object"}, or {"type": "json_schema",
/// "json_schema": {"name", "description", "schema", "strict"}}. `body` is the request's
/// text, read again with its key order kept.
void read_response_format(fields& f, const std::string& body, messages::generate_request& gen);

/// /generate-lite's "json_schema": a schema object.
void read_json_schema(fields& f, const std::string& body, messages::generate_request& gen);

}  // namespace adapterd::http
