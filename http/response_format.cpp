#include "http/response_format.hpp"

namespace adapterd::http {

void read_response_format(fields& f, const std::string& body, messages::generate_request& gen) {
  const auto* format = f.object("response_format");
  if (format == nullptr)
    return;
  fields rf(*format, "response_format");
  const auto type = rf.required_text("type");
  if (type == "json_object") {
    gen.format = messages::output_format::json_object;
  } else if (type == "json_schema") {
    const auto* spec = rf.object("json_schema");
    if (spec == nullptr)
      rf.fail("json_schema", "missing_field", "is required with type json_schema");
    fields js(*spec, "response_format.json_schema");
    js.text("name", 64);
    js.text("description");
    js.boolean("strict");  // every schema is followed exactly, strict or not
    const auto* schema = js.object("schema");
    if (schema == nullptr)
      js.fail("schema", "missing_field", "is required");
    js.refuse_unknown();
    gen.format = messages::output_format::json_schema;
    gen.json_schema = ordered_text(body, {"response_format", "json_schema", "schema"});
  } else if (type != "text") {
    rf.fail("type", "out_of_range", "must be text, json_object or json_schema");
  }
  rf.refuse_unknown();
}

void read_json_schema(fields& f, const std::string& body, messages::generate_request& gen) {
  if (f.object("json_schema") == nullptr)
    return;
  gen.format = messages::output_format::json_schema;
  gen.json_schema = ordered_text(body, {"json_schema"});
}

}  // namespace adapterd::http
