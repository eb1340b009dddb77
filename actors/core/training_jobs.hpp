#pragma once
// LoRA training jobs on a node: a queue, one running at a time, advanced one optimizer
// step per call by the gpu-owner in its own time slices. CAF-free, so tests drive it
// directly. A job that fails says why; none fails silently.
#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "messages/errors.hpp"
#include "messages/training.hpp"
#include "model/train/trainer.hpp"

namespace adapterd::actors {

/// Where training may read and write.
struct training_settings {
  std::string default_model;
  std::vector<std::string> model_roots;
  std::vector<std::string> data_roots;   // datasets must lie below one of these
  std::string output_dir;                // finished adapters go to output_dir/ID (below an adapter root)
  double device_share = 0.25;            // of device time while generation is busy
  uint64_t max_dataset_bytes = 256ull << 20;  // larger datasets are refused before reading
  size_t max_pending_jobs = 16;          // queued or running; more are refused (overloaded)
};

struct training_paths {
  std::string base_dir;     // the resolved base model
  std::string dataset;      // the resolved dataset file
  std::string output_dir;   // where the adapter goes
};

/// The files a request names, resolved, or why it cannot run (bad_request: a dataset
/// outside the data roots, an unknown base model, an invalid id or hyperparameter).
std::variant<training_paths, messages::failure> resolve_training(const messages::train_request& req,
                                                                 const training_settings& settings);

class training_jobs {
public:
  explicit training_jobs(size_t max_pending = 16) : max_pending_(max_pending) {}
  /// Queues a job; its status (state "queued"), or `overloaded` when max_pending jobs
  /// are already queued or running.
  std::variant<messages::job_status, messages::failure> submit(const messages::train_request& req,
                                                               const training_paths& paths);
  std::vector<messages::job_status> list() const;
  std::optional<messages::job_status> get(const std::string& id) const;
  /// Cancels a queued or running job; none when there is no such job.
  std::optional<messages::job_status> cancel(const std::string& id);

  bool has_work() const;

  /// One optimizer step of the current job (starting it first when needed). When a job
  /// finishes, its adapter is saved and its status returned, state "succeeded" with
  /// adapter_path set (the caller registers it) or "failed" with the reason. Whatever the
  /// trainer throws (a full disk, an allocation) fails that job, never the caller.
  std::optional<messages::job_status> step();

  /// The caller's registration of a finished job's adapter failed: the job failed.
  void registration_failed(const std::string& id, const std::string& why);

private:
  struct job {
    messages::job_status status;
    messages::train_request req;
    training_paths paths;
    std::unique_ptr<model::trainer> run;
  };
  job* find(const std::string& id);
  const job* find(const std::string& id) const;
  messages::job_status finish(job& j, const std::string& state, const std::string& error);
  std::optional<messages::job_status> step(job& j);

  std::deque<std::unique_ptr<job>> jobs_;  // in submission order; finished ones stay listed
  uint64_t next_id_ = 0;
  size_t max_pending_;
};

}  // namespace adapterd::actors
