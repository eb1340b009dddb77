#pragma once
// What the names in a request stand for. OpenAI clients name everything with one "model"
// string: the default model's name, another base model, "base:adapter", or an adapter id
// registered with POST /adapters. /generate-lite names base_model and adapter_path apart.
#include <map>
#include <optional>
#include <string>

namespace adapterd::actors {

struct named_weights {
  std::string base_model;  // empty: the default model
  std::string adapter;     // empty: none; else a path as the client wrote it
};

/// `ids`: adapter id -> its path. `default_name`: the default model's directory name.
named_weights resolve_names(std::string base_model, std::string adapter, const std::string& default_name,
                            const std::map<std::string, std::string>& ids);

/// Why `id` cannot name an adapter (1-64 of A-Z a-z 0-9 . _ -, not only dots), or none.
std::optional<std::string> adapter_id_problem(const std::string& id);

}  // namespace adapterd::actors
