#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <catch2/catch.hpp>

#include "actors/core/path_policy.hpp"

namespace fs = std::filesystem;
using adapterd::actors::resolve_under_roots;

TEST_CASE("paths are accepted only inside the roots", "[policy]") {
  auto base = fs::temp_directory_path() / ("adapterd-roots-" + std::to_string(::getpid()));
  fs::remove_all(base);
  fs::create_directories(base / "root" / "adapter");
  fs::create_directories(base / "outside");
  fs::create_symlink(base / "outside", base / "root" / "link");
  std::vector<std::string> roots{(base / "root").string()};

  CHECK(resolve_under_roots((base / "root" / "adapter").string(), roots)
        == fs::weakly_canonical(base / "root" / "adapter").string());
  CHECK(resolve_under_roots("adapter", roots) == fs::weakly_canonical(base / "root" / "adapter").string());
  CHECK_FALSE(resolve_under_roots((base / "outside").string(), roots));
  CHECK_FALSE(resolve_under_roots((base / "root" / ".." / "outside").string(), roots));
  CHECK_FALSE(resolve_under_roots("../outside", roots));
  CHECK_FALSE(resolve_under_roots((base / "root" / "link").string(), roots));  // symlink escape
  CHECK_FALSE(resolve_under_roots("/etc/passwd", roots));
  CHECK_FALSE(resolve_under_roots("", roots));
  CHECK_FALSE(resolve_under_roots((base / "rootx").string(), roots));  // prefix is not inside
  fs::remove_all(base);
}
