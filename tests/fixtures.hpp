#pragma once
// Where the shared fixtures live (../shared/fixtures, or $ADAPTERD_FIXTURES).
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

namespace adapterd::test {

inline std::string fixtures_dir() {
  if (const char* env = std::getenv("ADAPTERD_FIXTURES"))
    return env;
  return ADAPTERD_FIXTURES_DIR;
}

/// The device model tests run on: cpu, or $ADAPTERD_TEST_DEVICE (cuda on a GPU machine).
inline std::string test_device() {
  const char* env = std::getenv("ADAPTERD_TEST_DEVICE");
  return env != nullptr && *env != '\0' ? env : "cpu";
}

inline bool have_fixtures() {
  return std::filesystem::exists(fixtures_dir() + "/README.md");
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline nlohmann::json read_json(const std::string& path) {
  return nlohmann::json::parse(read_text(path));
}

}  // namespace adapterd::test

/// Fixture-based tests warn and return where ../shared/fixtures is absent.
#define ADAPTERD_SKIP_WITHOUT_FIXTURES()        \
  do {                                          \
    if (!adapterd::test::have_fixtures()) {     \
      WARN("fixtures absent: skipped");         \
      return;                                   \
    }                                           \
  } while (false)
