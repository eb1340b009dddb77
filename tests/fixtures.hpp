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

/// The one way to skip fixture tests: asked for by name.
inline bool fixtures_opted_out() {
  const char* env = std::getenv("ADAPTERD_NO_FIXTURES");
  return env != nullptr && std::string(env) == "1";
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

/// A fixture-based test fails where ../shared/fixtures is absent, so that a checkout without
/// them can never pass by skipping. ADAPTERD_NO_FIXTURES=1 is the explicit opt-out: then
/// the test says it skipped and returns.
#define ADAPTERD_SKIP_WITHOUT_FIXTURES()                                                      \
  do {                                                                                        \
    if (!adapterd::test::have_fixtures()) {                                                   \
      if (!adapterd::test::fixtures_opted_out())                                              \
        FAIL("fixtures absent at " << adapterd::test::fixtures_dir()                           \
                                   << " (set ADAPTERD_NO_FIXTURES=1 to skip these tests)");   \
      WARN("fixtures absent and ADAPTERD_NO_FIXTURES=1: skipped");                            \
      return;                                                                                 \
    }                                                                                         \
  } while (false)
