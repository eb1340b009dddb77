#include "model/io/weights.hpp"

#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "model/io/text_file.hpp"

namespace adapterd::model {

result<tensor_index> open_tensors(const std::string& dir, const std::string& single_file) {
  namespace fs = std::filesystem;
  std::vector<std::string> paths;
  auto index_path = dir + "/" + single_file + ".index.json";
  if (fs::exists(dir + "/" + single_file)) {
    paths.push_back(dir + "/" + single_file);
  } else if (fs::exists(index_path)) {
    auto index = nlohmann::json::parse(read_text_file(index_path).value_or(""), nullptr, false);
    if (index.is_discarded() || !index.contains("weight_map") || !index["weight_map"].is_object())
      return make_error(errc::invalid_model, index_path + ": no weight_map");
    std::set<std::string> shards;
    for (const auto& [name, file] : index["weight_map"].items()) {
      auto f = file.is_string() ? file.get<std::string>() : std::string();
      if (f.empty() || f.find('/') != std::string::npos || f.find("..") != std::string::npos)
        return make_error(errc::invalid_model, index_path + ": bad shard name for " + name);
      shards.insert(f);
    }
    for (const auto& s : shards)
      paths.push_back(dir + "/" + s);
  } else {
    return make_error(errc::invalid_model, "no " + single_file + " (or its .index.json) in " + dir);
  }
  tensor_index out;
  for (const auto& p : paths) {
    auto file = safetensors_file::open(p);
    if (!file)
      return file.err();
    out.files.push_back(*file);
    for (const auto& t : (*file)->tensors())
      out.by_name[t.name] = &t;
  }
  return out;
}

}  // namespace adapterd::model
