#include "actors/core/model_names.hpp"

#include <cctype>

namespace adapterd::actors {

named_weights resolve_names(std::string base_model, std::string adapter, const std::string& default_name,
                            const std::map<std::string, std::string>& ids) {
  if (adapter.empty()) {
    auto colon = base_model.find(':');
    if (colon != std::string::npos) {
      adapter = base_model.substr(colon + 1);
      base_model.erase(colon);
    } else if (ids.count(base_model)) {
      adapter = base_model;
      base_model.clear();
    }
  }
  if (auto it = ids.find(adapter); it != ids.end())
    adapter = it->second;
  if (base_model == default_name)
    base_model.clear();
  return {base_model, adapter};
}

std::optional<std::string> adapter_id_problem(const std::string& id) {
  if (id.empty() || id.size() > 64)
    return "an adapter id has 1 to 64 characters";
  bool only_dots = true;
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-')
      return "an adapter id may hold only letters, digits, '.', '_' and '-'";
    only_dots = only_dots && c == '.';
  }
  if (only_dots)
    return "an adapter id cannot be only dots";
  return std::nullopt;
}

}  // namespace adapterd::actors
