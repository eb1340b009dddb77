#pragma once
// API keys: who may call which route.
#include <optional>
#include <string>

#include "http/json_codec.hpp"

namespace adapterd::http {

/// None when `authorization` ("Bearer KEY") may call the route; else 401 (no key, or an
/// unknown one) or 403 (an API key on an admin route). Keys compare in constant time.
std::optional<api_error> check_access(const limits& lim, const std::string& authorization, bool admin_route);

/// Who sent a request that passed check_access, as the scheduler's fairness tells clients
/// apart: "key-N" or "admin-N" (the key's place in its list, never the key), "" without keys.
std::string client_label(const limits& lim, const std::string& authorization);

}  // namespace adapterd::http
