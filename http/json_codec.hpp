#pragma once
// JSON in and out of the seed's endpoints; the only place that knows their field names.
#include <string>
#include <variant>

#include "http/api.hpp"

namespace adapterd::http {

struct api_error {
  unsigned status = 400;
  std::string code;
  std::string message;
};

/// Parses and validates a /generate-lite body.
std::variant<messages::generate_request, api_error> parse_generate(const std::string& body,
                                                                   const limits& lim);

/// The optional {"level": "flush" | "adapters" | "all"} of /cleanup-memory (empty: flush).
std::variant<messages::cleanup_request, api_error> parse_cleanup(const std::string& body);

std::string to_json(const messages::generate_reply& r);
/// One streamed piece of text: {"text", "tokens", "request_id"}.
std::string to_json(const messages::stream_chunk& c);
/// A Server-Sent Event: "event: NAME\n" (when named), "data: JSON\n\n".
std::string sse_event(const std::string& name, const std::string& data);
std::string to_json(const messages::cleanup_reply& r);
std::string to_json(const messages::health_report& r);

/// {"error": {"code", "message"}} with the status that fits a failure.
api_error to_api_error(const messages::failure& f);
response error_response(const api_error& e);

}  // namespace adapterd::http
