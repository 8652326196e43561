// write_file_atomically (include/minidl/io/atomic_file.hpp): writes and
// overwrites; a failure between the write and the rename, or a target folder
// that cannot be written, leaves the old file byte for byte and no temporary
// file behind.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <minidl/io/atomic_file.hpp>
#include <stdexcept>
#include <string>

namespace {

namespace fs = std::filesystem;

// A fresh, empty folder under the system's temporary directory.
fs::path scratch_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("minidl_test_atomic_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string contents(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Names of the entries of `dir`, sorted.
std::vector<std::string> listing(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// Clears the failure-injection hook however the test ends.
struct HookReset {
  ~HookReset() { minidl::detail::before_rename_hook = nullptr; }
};

}  // namespace

TEST_CASE("write_file_atomically: writes a new file, then overwrites it; binary bytes kept") {
  const fs::path dir = scratch_dir("write");
  const fs::path path = dir / "out.bin";
  const std::string first("first\0\xFF\n", 8);
  minidl::write_file_atomically(path.string(), first);
  CHECK(contents(path) == first);
  minidl::write_file_atomically(path.string(), "second, longer contents");
  CHECK(contents(path) == "second, longer contents");
  minidl::write_file_atomically(path.string(), "");
  CHECK(contents(path).empty());
  CHECK(listing(dir) == std::vector<std::string>{"out.bin"});
}
