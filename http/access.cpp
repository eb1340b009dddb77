#include "http/access.hpp"

#include <algorithm>
#include <string>

namespace adapterd::http {

namespace {

bool same(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned char>(a[i] ^ b[i % std::max<size_t>(1, b.size())]);
  return diff == 0;
}

bool listed(const std::vector<std::string>& keys, const std::string& key) {
  bool found = false;
  for (const auto& k : keys)
    found = same(key, k) || found;  // no early exit: every key costs the same
  return found;
}

// The key of "Bearer KEY", if that is what the header holds.
std::optional<std::string> bearer_key(const std::string& authorization) {
  const std::string prefix = "Bearer ";
  if (authorization.size() <= prefix.size() || authorization.compare(0, prefix.size(), prefix) != 0)
    return std::nullopt;
  return authorization.substr(prefix.size());
}

}  // namespace

std::optional<api_error> check_access(const limits& lim, const std::string& authorization, bool admin_route) {
  if (lim.api_keys.empty() && lim.admin_keys.empty())
    return std::nullopt;
  const auto bearer = bearer_key(authorization);
  if (!bearer)
    return api_error{401, "unauthorized", "this server needs an API key: send 'Authorization: Bearer KEY'"};
  const auto& key = *bearer;
  bool admin = listed(lim.admin_keys, key);
  if (!admin && !listed(lim.api_keys, key))
    return api_error{401, "unauthorized", "the API key is not valid"};
  if (admin_route && !admin)
    return api_error{403, "forbidden", "this route needs an admin key"};
  return std::nullopt;
}

std::string client_label(const limits& lim, const std::string& authorization) {
  const auto bearer = bearer_key(authorization);
  if (!bearer)
    return "";
  const auto& key = *bearer;
  for (size_t i = 0; i < lim.api_keys.size(); ++i)
    if (same(key, lim.api_keys[i]))
      return "key-" + std::to_string(i);
  for (size_t i = 0; i < lim.admin_keys.size(); ++i)
    if (same(key, lim.admin_keys[i]))
      return "admin-" + std::to_string(i);
  return "";
}

}  // namespace adapterd::http
