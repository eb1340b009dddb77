// Training jobs are bounded: how many wait, how large a dataset is read, and a job whose
// output cannot be saved fails with its reason instead of taking its caller down.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "actors/core/training_jobs.hpp"
#include "model/io/tiny_model.hpp"

using namespace adapterd;

namespace {

std::string temp_dir(const std::string& name) {
  auto dir = (std::filesystem::temp_directory_path() / ("adapterd-jobs-" + name)).string();
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

void write_corpus(const std::string& path, int entries) {
  std::ofstream out(path);
  for (int i = 0; i < entries; ++i)
    out << "Fortune favours the bold, number " << i << ", and time flies like an arrow.\n%\n";
}

}  // namespace

TEST_CASE("training jobs beyond the pending bound are refused as overloaded", "[train][hardening]") {
  actors::training_jobs jobs(2);
  messages::train_request req;
  req.dataset = "d.txt";
  actors::training_paths paths{"base", "d.txt", "out"};
  CHECK(std::holds_alternative<messages::job_status>(jobs.submit(req, paths)));
  CHECK(std::holds_alternative<messages::job_status>(jobs.submit(req, paths)));
  auto third = jobs.submit(req, paths);
  REQUIRE(std::holds_alternative<messages::failure>(third));
  CHECK(std::get<messages::failure>(third).code == messages::errc::overloaded);
  jobs.cancel("job-1");  // a finished job frees its place
  CHECK(std::holds_alternative<messages::job_status>(jobs.submit(req, paths)));
}

TEST_CASE("a dataset over the size bound is refused before it is read", "[train][hardening]") {
  auto dir = temp_dir("size");
  write_corpus(dir + "/big.txt", 100);
  actors::training_settings settings;
  settings.default_model = dir + "/base";
  settings.data_roots = {dir};
  settings.max_dataset_bytes = 1000;
  messages::train_request req;
  req.dataset = "big.txt";
  auto r = actors::resolve_training(req, settings);
  REQUIRE(std::holds_alternative<messages::failure>(r));
  CHECK(std::get<messages::failure>(r).message.find("at most 1000") != std::string::npos);
}

TEST_CASE("a job whose adapter cannot be saved fails with the reason; stepping never throws", "[train][hardening]") {
  auto dir = temp_dir("save");
  model::tiny_model_spec tiny;
  REQUIRE(model::write_tiny_model(tiny, dir + "/base", dir + "/unused"));
  write_corpus(dir + "/data.txt", 60);
  std::ofstream(dir + "/blocker") << "a file where the output directory should be";
  actors::training_jobs jobs;
  messages::train_request req;
  req.dataset = "data.txt";
  req.steps = 2;
  req.batch = 1;
  req.seq_len = 16;
  REQUIRE(std::holds_alternative<messages::job_status>(
    jobs.submit(req, actors::training_paths{dir + "/base", dir + "/data.txt", dir + "/blocker/out"})));
  std::optional<messages::job_status> finished;
  for (int i = 0; i < 10 && !finished; ++i)
    REQUIRE_NOTHROW(finished = jobs.step());
  REQUIRE(finished);
  CHECK(finished->state == "failed");
  CHECK(finished->error.find("saving") != std::string::npos);
  CHECK_FALSE(jobs.has_work());
}
