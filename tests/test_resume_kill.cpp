// BackupAndRestore against real crashes: resume_worker (resume_worker.cpp) is
// killed with SIGKILL in the middle of an epoch, or while it writes a backup,
// then run again with the same arguments until it ends; its weights, optimizer
// state (step count and slots) and History must be an uninterrupted run's,
// bit for bit (the result files are compared byte for byte).
#include <doctest/doctest.h>

#include <filesystem>
#include <minidl/io.hpp>
#include <string>
#include <type_traits>
#include <vector>

#include "resume_driver.hpp"
#include "support.hpp"

#ifndef MINIDL_RESUME_WORKER
#error "MINIDL_RESUME_WORKER must name the resume_worker program (tests/CMakeLists.txt defines it)"
#endif

namespace {

using minidl::test::backup_epoch;
using minidl::test::check_same_result;
using minidl::test::contents;
using minidl::test::Outcome;

// Runs resume_worker with `args`, its environment this process's plus `env`
// ("NAME=value"), its stderr into `errors` if given.
Outcome run_worker(const std::vector<std::string>& args, const std::vector<std::string>& env = {},
                   const std::string& errors = "") {
  return minidl::test::run_program(MINIDL_RESUME_WORKER, args, env, errors);
}

}  // namespace

TEST_CASE_TEMPLATE("a fit killed with SIGKILL and run again ends bit for bit as an uninterrupted one", Scalar, float,
                   double) {
  {
    const std::string scalar = std::is_same_v<Scalar, float> ? "float" : "double";  // the worker's argument
    minidl::test::TempDir dir;
    const std::string reference = dir.file("reference"), resumed = dir.file("resumed");
    const std::string backup_dir = dir.file("backup");
    const std::string backup = backup_dir + "/backup.safetensors";
    REQUIRE(run_worker({scalar, dir.file("reference_backup"), reference}).status == 0);
    CHECK_FALSE(std::filesystem::exists(dir.file("reference_backup")));  // deleted at the normal end

    SUBCASE("killed in the middle of epochs") {
      const Outcome first = run_worker({scalar, backup_dir, resumed}, {"MINIDL_RESUME_KILL=1,2"});
      CHECK(first.killed);
      CHECK(backup_epoch(backup) == 1);  // epoch 0's backup; epoch 1 died after 3 of its 5 batches
      // The restart resumes at epoch 1, and dies again in the last batch of epoch 3, before its backup.
      const Outcome second = run_worker({scalar, backup_dir, resumed}, {"MINIDL_RESUME_KILL=3,4"});
      CHECK(second.killed);
      CHECK(backup_epoch(backup) == 3);
    }
    SUBCASE("killed while writing a backup") {
      // The third write (after epoch 2) dies between its temporary file and the rename.
      const Outcome first = run_worker({scalar, backup_dir, resumed}, {"MINIDL_RESUME_KILL_AT_WRITE=3"});
      CHECK(first.killed);
      CHECK(backup_epoch(backup) == 2);  // the previous backup, whole
      std::size_t stray = 0;
      for (const auto& entry : std::filesystem::directory_iterator(backup_dir))
        stray += entry.path().filename().string().rfind("backup.safetensors.tmp-", 0) == 0;
      CHECK(stray == 1);  // what the killed write left behind
    }
    CHECK_FALSE(std::filesystem::exists(resumed + ".safetensors"));  // no killed run got to the end

    REQUIRE(run_worker({scalar, backup_dir, resumed}).status == 0);
    CHECK_FALSE(std::filesystem::exists(backup));
    check_same_result(resumed, reference);
  }
}

TEST_CASE("a restarted program whose model changed refuses the backup, which stays") {
  minidl::test::TempDir dir;
  const std::string backup_dir = dir.file("backup");
  CHECK(run_worker({"double", backup_dir, dir.file("r")}, {"MINIDL_RESUME_KILL=1,0"}).killed);
  const std::string errors = dir.file("stderr");
  const Outcome other = run_worker({"double", backup_dir, dir.file("r")}, {"MINIDL_RESUME_HIDDEN=9"}, errors);
  CHECK(other.status == 1);
  const std::string message = contents(errors);
  CHECK_MESSAGE(message.find(backup_dir + "/backup.safetensors: the backup is of another model: layer 0 (Dense "
                             "'dense') config 'units' is 8 in the backup, 9 in the model") != std::string::npos,
                message);
  CHECK(backup_epoch(backup_dir + "/backup.safetensors") == 1);
  CHECK_FALSE(std::filesystem::exists(dir.file("r.safetensors")));
}
