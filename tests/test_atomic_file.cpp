// write_file_atomically (include/minidl/safetensors/atomic_file.hpp): writes and
// overwrites; a failure between the write and the rename, a write that fails
// (a file size limit standing in for a full disk), or a target folder that
// cannot be written leaves the old file byte for byte and no temporary file.
#include <doctest/doctest.h>

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <minidl/safetensors/atomic_file.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "support.hpp"

namespace {

namespace fs = std::filesystem;

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

TEST_CASE("write_file_atomically: writes a new file, then overwrites it, binary bytes kept") {
  const minidl::test::TempDir scratch("minidl_test_atomic_write");
  const fs::path dir = scratch.path;
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

TEST_CASE("write_file_atomically: a crash between write and rename leaves the old file and no temporary file") {
  HookReset reset;
  const minidl::test::TempDir scratch("minidl_test_atomic_crash");
  const fs::path dir = scratch.path;
  const fs::path path = dir / "model.safetensors";
  const std::string old_bytes("old\0contents", 12);
  minidl::write_file_atomically(path.string(), old_bytes);

  std::string seen_tmp, seen_bytes;
  minidl::detail::before_rename_hook = [&](const std::string& tmp) {
    seen_tmp = tmp;
    seen_bytes = contents(tmp);  // the new bytes are complete on disk before the rename
    throw std::runtime_error("simulated crash");
  };
  CHECK_THROWS_WITH_AS(minidl::write_file_atomically(path.string(), "new contents"), "simulated crash",
                       std::runtime_error);
  CHECK(seen_bytes == "new contents");
  CHECK(fs::path(seen_tmp).parent_path() == dir);  // beside the target: the rename stays on one file system
  CHECK(contents(path) == old_bytes);
  CHECK(listing(dir) == std::vector<std::string>{"model.safetensors"});

  // The same with no old file: nothing is left at all.
  CHECK_THROWS_AS(minidl::write_file_atomically((dir / "fresh.bin").string(), "x"), std::runtime_error);
  CHECK(listing(dir) == std::vector<std::string>{"model.safetensors"});

  minidl::detail::before_rename_hook = nullptr;
  minidl::write_file_atomically(path.string(), "new contents");
  CHECK(contents(path) == "new contents");
}

TEST_CASE("write_file_atomically: a target folder that cannot be written gives an IOError naming the path") {
  const minidl::test::TempDir scratch("minidl_test_atomic_unwritable");
  const fs::path dir = scratch.path;
  const auto io_error = [](const std::string& path) {
    try {
      minidl::write_file_atomically(path, "bytes");
    } catch (const minidl::IOError& e) {
      return std::string(e.what());
    }
    FAIL_CHECK("expected minidl::IOError");
    return std::string();
  };
  const auto check_contains = [](const std::string& text, const std::string& part) {
    INFO("message: ", text);
    CHECK(text.find(part) != std::string::npos);
  };

  const std::string missing = (dir / "no-such-folder" / "w.bin").string();
  const std::string m1 = io_error(missing);
  check_contains(m1, "cannot write file '" + missing + "': cannot create the temporary file '" + missing + ".tmp-");
  check_contains(m1, "No such file or directory");
  CHECK(listing(dir).empty());

  std::ofstream(dir / "plain-file") << "not a folder";
  const std::string under_file = (dir / "plain-file" / "w.bin").string();
  check_contains(io_error(under_file), "cannot write file '" + under_file + "'");
  check_contains(io_error(under_file), "Not a directory");
  CHECK(contents(dir / "plain-file") == "not a folder");

  // A folder where the file should be: the rename fails, the folder and its contents stay.
  fs::create_directories(dir / "taken" / "inside");
  const std::string m3 = io_error((dir / "taken").string());
  check_contains(m3, "cannot write file '" + (dir / "taken").string() + "': renaming");
  check_contains(m3, "Is a directory");
  CHECK(fs::is_directory(dir / "taken" / "inside"));
  CHECK(listing(dir) == std::vector<std::string>{"plain-file", "taken"});

  check_contains(io_error((dir / "").string()), "the path names no file");
  check_contains(io_error(""), "cannot write file '': the path names no file");

  // Permissions: a read-only folder holding an old file. (root ignores permission bits.)
  if (::geteuid() == 0) {
    MESSAGE("running as root: the read-only folder case is skipped");
    return;
  }
  const fs::path locked = dir / "locked";
  fs::create_directories(locked);
  minidl::write_file_atomically((locked / "w.bin").string(), "old");
  fs::permissions(locked, fs::perms::owner_read | fs::perms::owner_exec);
  const std::string m4 = io_error((locked / "w.bin").string());
  fs::permissions(locked, fs::perms::owner_all);
  check_contains(m4, "cannot write file '" + (locked / "w.bin").string() + "'");
  check_contains(m4, "Permission denied");
  CHECK(contents(locked / "w.bin") == "old");
  CHECK(listing(locked) == std::vector<std::string>{"w.bin"});
}

TEST_CASE("write_file_atomically: a failed write (file size limit) leaves the old file and no temporary file") {
  const minidl::test::TempDir scratch("minidl_test_atomic_short_write");
  const fs::path dir = scratch.path;
  const fs::path path = dir / "big.bin";
  minidl::write_file_atomically(path.string(), "old");
  // RLIMIT_FSIZE makes write(2) fail with EFBIG past 4096 bytes, as a full disk would with ENOSPC.
  struct rlimit saved {};
  REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
  const auto previous_handler = std::signal(SIGXFSZ, SIG_IGN);  // else the signal ends the process
  struct rlimit small = saved;
  small.rlim_cur = 4096;
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
  std::string message;
  try {
    minidl::write_file_atomically(path.string(), std::string(1 << 20, 'x'));
  } catch (const minidl::IOError& e) {
    message = e.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, previous_handler);
  INFO("message: ", message);
  CHECK(message.find("cannot write file '" + path.string() + "': writing the temporary file '") != std::string::npos);
  CHECK(message.find("File too large") != std::string::npos);
  CHECK(contents(path) == "old");
  CHECK(listing(dir) == std::vector<std::string>{"big.bin"});
}
