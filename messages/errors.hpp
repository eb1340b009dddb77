#pragma once
// Expected failures that cross actor (and machine) boundaries. Each has one HTTP status,
// chosen in http/.
#include <cstdint>
#include <string>

namespace adapterd::messages {

enum class errc : uint8_t {
  bad_request = 1,      // malformed or out-of-range request fields
  unknown_model,        // base_model names no model this server may load
  adapter_not_found,    // adapter_path is not an adapter directory
  adapter_forbidden,    // adapter_path lies outside the configured adapter roots
  invalid_adapter,      // the adapter cannot run on the base model
  context_overflow,     // the prompt does not fit the model's context
  out_of_memory,        // the device could not hold this request
  insufficient_memory,  // the memory budget cannot take this request, even after evictions
  model_load_failed,    // the base model could not be loaded
  timeout,              // no answer within the request timeout
  unavailable,          // an actor the request needs is gone
  internal,             // a bug
  overloaded,           // the queue is full; try again later
  cancelled,            // the client went away
  unauthorized,         // a node without the cluster's shared secret
  worker_lost,          // the worker serving the request went away after it had answered in part
  job_not_found,        // no training job has that id
};

const char* to_string(errc code);

/// The value an error carries across an actor boundary: its code and a message for people.
struct failure {
  errc code = errc::internal;
  std::string message;
};

}  // namespace adapterd::messages
