#include "actors/core/training_jobs.hpp"

#include <algorithm>

#include <filesystem>

#include <spdlog/spdlog.h>

#include "actors/core/model_names.hpp"
#include "actors/core/path_policy.hpp"
#include "actors/core/timestamp.hpp"

namespace adapterd::actors {

namespace {

bool finished(const messages::job_status& s) {
  return s.state == "succeeded" || s.state == "failed" || s.state == "cancelled";
}

}  // namespace

std::variant<training_paths, messages::failure> resolve_training(const messages::train_request& req,
                                                                 const training_settings& settings) {
  namespace fs = std::filesystem;
  using messages::errc;
  auto bad = [](std::string why) { return messages::failure{errc::bad_request, std::move(why)}; };
  if (req.dataset.empty())
    return bad("'dataset' is required: a text or JSONL file below the data roots");
  auto dataset = resolve_under_roots(req.dataset, settings.data_roots);
  std::error_code ec;
  if (!dataset || !fs::is_regular_file(*dataset, ec))
    return bad("dataset '" + req.dataset + "' is not a file below the data roots");
  if (auto bytes = fs::file_size(*dataset, ec); ec || bytes > settings.max_dataset_bytes)
    return bad("dataset '" + req.dataset + "' is " + std::to_string(bytes) + " bytes; at most "
               + std::to_string(settings.max_dataset_bytes) + " are taken");
  std::string base = settings.default_model;
  if (!req.base_model.empty() && req.base_model != fs::path(settings.default_model).filename().string()) {
    auto path = resolve_under_roots(req.base_model, settings.model_roots);
    if (!path || !fs::exists(*path + "/config.json"))
      return messages::failure{errc::unknown_model, "base_model '" + req.base_model + "' is not a model this server serves"};
    base = *path;
  }
  if (!req.id.empty())
    if (auto problem = adapter_id_problem(req.id))
      return bad(*problem + ": '" + req.id + "'");
  if (req.r < 1 || req.r > 256 || !(req.alpha > 0) || !(req.lr > 0 && req.lr < 1) || req.steps < 1
      || req.steps > 100000 || req.batch < 1 || req.batch > 64 || req.seq_len < 2 || req.seq_len > 4096)
    return bad("hyperparameters out of range: r 1-256, alpha > 0, lr in (0, 1), steps 1-100000, batch 1-64, seq_len 2-4096");
  for (const auto& t : req.targets)
    if (std::find(model::lora_target_names().begin(), model::lora_target_names().end(), t) == model::lora_target_names().end())
      return bad("unknown target module '" + t + "'");
  return training_paths{base, *dataset, settings.output_dir};
}

std::variant<messages::job_status, messages::failure> training_jobs::submit(const messages::train_request& req,
                                                                           const training_paths& paths) {
  auto pending = std::count_if(jobs_.begin(), jobs_.end(), [](const auto& j) { return !finished(j->status); });
  if (static_cast<size_t>(pending) >= max_pending_)
    return messages::failure{messages::errc::overloaded, std::to_string(pending)
                                                           + " training jobs are queued or running; try again later"};
  auto j = std::make_unique<job>();
  j->req = req;
  j->paths = paths;
  auto& s = j->status;
  s.id = "job-" + std::to_string(++next_id_);
  s.state = "queued";
  s.adapter_id = req.id.empty() ? s.id : req.id;
  s.dataset = req.dataset;
  s.base_model = req.base_model;
  s.steps = req.steps;
  s.created_at_ms = unix_ms();
  spdlog::info("training {} queued: {} on {}, {} steps", s.id, req.dataset, paths.base_dir, req.steps);
  jobs_.push_back(std::move(j));
  while (jobs_.size() > 100 && finished(jobs_.front()->status))  // a bound on the listed history
    jobs_.pop_front();
  return jobs_.back()->status;
}

std::vector<messages::job_status> training_jobs::list() const {
  std::vector<messages::job_status> out;
  for (const auto& j : jobs_)
    out.push_back(j->status);
  return out;
}

training_jobs::job* training_jobs::find(const std::string& id) {
  for (auto& j : jobs_)
    if (j->status.id == id)
      return j.get();
  return nullptr;
}

const training_jobs::job* training_jobs::find(const std::string& id) const {
  return const_cast<training_jobs*>(this)->find(id);
}

std::optional<messages::job_status> training_jobs::get(const std::string& id) const {
  auto* j = find(id);
  return j ? std::optional<messages::job_status>(j->status) : std::nullopt;
}

std::optional<messages::job_status> training_jobs::cancel(const std::string& id) {
  auto* j = find(id);
  if (!j)
    return std::nullopt;
  if (!finished(j->status))
    finish(*j, "cancelled", "");
  return j->status;
}

bool training_jobs::has_work() const {
  for (const auto& j : jobs_)
    if (!finished(j->status))
      return true;
  return false;
}

messages::job_status training_jobs::finish(job& j, const std::string& state, const std::string& error) {
  j.status.state = state;
  j.status.error = error;
  j.status.eta_s = 0;
  j.status.finished_at_ms = unix_ms();
  j.run.reset();  // its weights and optimizer state go now
  if (state == "failed")
    spdlog::error("training {} failed: {}", j.status.id, error);
  else
    spdlog::info("training {} {} after {} steps (loss {:.3f})", j.status.id, state, j.status.step, j.status.loss_avg);
  return j.status;
}

std::optional<messages::job_status> training_jobs::step() {
  job* current = nullptr;
  for (auto& j : jobs_)
    if (!finished(j->status)) {
      current = j.get();
      break;
    }
  if (!current)
    return std::nullopt;
  try {
    return step(*current);
  } catch (const std::exception& e) {
    return finish(*current, "failed", std::string("unexpected failure: ") + e.what());
  } catch (...) {
    return finish(*current, "failed", "unexpected failure");
  }
}

std::optional<messages::job_status> training_jobs::step(job& j) {
  if (!j.run) {
    model::lora_spec spec;
    spec.base_dir = j.paths.base_dir;
    spec.data.path = j.paths.dataset;
    spec.r = j.req.r;
    spec.alpha = j.req.alpha;
    spec.targets = j.req.targets;
    spec.lr = j.req.lr;
    spec.steps = j.req.steps;
    spec.batch = j.req.batch;
    spec.seq_len = j.req.seq_len;
    spec.seed = j.req.seed;
    auto run = model::start_lora_training(spec);
    if (!run)
      return finish(j, "failed", run.err().message);
    j.run = std::move(*run);
    j.status.state = "running";
  }
  auto p = j.run->step();
  if (!p)
    return finish(j, "failed", p.err().message);
  j.status.step = p->step;
  j.status.loss = p->loss;
  j.status.loss_avg = p->loss_avg;
  j.status.tokens_per_s = p->tokens_per_s;
  j.status.eta_s = p->eta_s;
  j.status.elapsed_s = p->elapsed_s;
  if (!j.run->done())
    return std::nullopt;
  auto dir = j.paths.output_dir + "/" + j.status.adapter_id;
  if (auto saved = j.run->save(dir); !saved)
    return finish(j, "failed", "saving the adapter: " + saved.err().message);
  j.status.adapter_path = dir;
  return finish(j, "succeeded", "");
}

void training_jobs::registration_failed(const std::string& id, const std::string& why) {
  if (auto* j = find(id)) {
    j->status.state = "failed";
    j->status.error = "the adapter was saved but could not be registered: " + why;
  }
}

}  // namespace adapterd::actors
