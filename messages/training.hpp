#pragma once
// The training family: LoRA training jobs that run on a node's device between generation
// steps, and what they report.
#include <cstdint>
#include <string>
#include <vector>

#include "caf/meta/type_name.hpp"

namespace adapterd::messages {

struct train_request {
  std::string request_id;
  std::string dataset;     // a text or JSONL file under the data roots
  std::string base_model;  // empty: the default model
  std::string id;          // the adapter id to register; empty: job id
  int32_t r = 8;
  double alpha = 16;
  std::vector<std::string> targets{"q_proj", "v_proj"};
  double lr = 2e-3;
  int64_t steps = 100;
  int64_t batch = 4;
  int64_t seq_len = 64;
  uint64_t seed = 7;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, train_request& x) {
  return f(caf::meta::type_name("adapterd::train_request"), x.request_id, x.dataset, x.base_model, x.id, x.r,
           x.alpha, x.targets, x.lr, x.steps, x.batch, x.seq_len, x.seed);
}

struct job_status {
  std::string id;
  std::string state;  // queued | running | succeeded | failed | cancelled
  std::string error;  // why it failed
  std::string adapter_id;
  std::string adapter_path;
  std::string dataset;
  std::string base_model;
  int64_t step = 0;
  int64_t steps = 0;
  double loss = 0;
  double loss_avg = 0;
  double tokens_per_s = 0;
  double eta_s = 0;
  double elapsed_s = 0;
  int64_t created_at_ms = 0;
  int64_t finished_at_ms = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_status& x) {
  return f(caf::meta::type_name("adapterd::job_status"), x.id, x.state, x.error, x.adapter_id, x.adapter_path,
           x.dataset, x.base_model, x.step, x.steps, x.loss, x.loss_avg, x.tokens_per_s, x.eta_s, x.elapsed_s,
           x.created_at_ms, x.finished_at_ms);
}

/// list (id empty) | get | cancel.
enum class job_action : uint8_t { list, get, cancel };

struct job_request {
  std::string request_id;
  job_action action = job_action::list;
  std::string id;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_request& x) {
  return f(caf::meta::type_name("adapterd::job_request"), x.request_id, x.action, x.id);
}

struct job_list {
  std::vector<job_status> jobs;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_list& x) {
  return f(caf::meta::type_name("adapterd::job_list"), x.jobs);
}

}  // namespace adapterd::messages
