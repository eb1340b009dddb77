#pragma once
// The tensors of a model or adapter directory, by name, across shards; torch-free.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/io/safetensors.hpp"
#include "model/result.hpp"

namespace adapterd::model {

struct tensor_index {
  std::vector<std::shared_ptr<const safetensors_file>> files;
  std::map<std::string, const tensor_view*> by_name;
};

/// Opens `dir`/`single_file`, or every shard that `dir`/`single_file`.index.json names.
result<tensor_index> open_tensors(const std::string& dir, const std::string& single_file);

}  // namespace adapterd::model
