#pragma once
// What the supervisor hands the gpu-owner: shared handles to resident weights. Node-local
// by nature (pointers into this process), so never serialised. CAF-free: the batch
// scheduler holds leases.
#include <cstdint>
#include <memory>
#include <string>

#include "model/base_model.hpp"

namespace adapterd::actors {

struct acquire_request {
  std::string request_id;
  std::string base_model;    // as the client wrote it; empty: the default
  std::string adapter_path;  // as the client wrote it; empty: none
  bool prefer_cpu = false;
  // A client's request, counted in the console's use counts; not a preload or registration.
  bool counted = true;
};

struct model_lease {
  std::shared_ptr<const model::base_model> model;
  std::shared_ptr<const model::lora_adapter> adapter;  // null: base model only
  std::string model_name;
  std::string adapter_name;
  double load_ms = 0;             // time this acquisition spent loading
  int64_t kv_reserve_tokens = 0;  // the longest sequence the budget reserved KV cache for
};

}  // namespace adapterd::actors
