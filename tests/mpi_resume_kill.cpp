// BackupAndRestore against a data-parallel job that really dies: mpirun runs
// mpi_resume_worker (mpi_resume_worker.cpp) on 2 processes, one of which
// SIGKILLs itself in the middle of an epoch, so that Open MPI aborts the job;
// mpirun then runs it again from the backup replica 0 wrote, killed once more,
// and once more to the end. The weights, optimizer state and History must be
// an uninterrupted data-parallel run's, bit for bit (the result files are
// compared byte for byte). CTest gives the environment Open MPI needs here
// (root, more processes than cores: mpi_environment in tests/CMakeLists.txt).
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <minidl/io.hpp>
#include <string>
#include <vector>

#include "resume_driver.hpp"
#include "support.hpp"

#if !defined(MINIDL_MPI_RESUME_WORKER) || !defined(MINIDL_MPIEXEC) || !defined(MINIDL_MPIEXEC_NUMPROC_FLAG)
#error "MINIDL_MPI_RESUME_WORKER, MINIDL_MPIEXEC and MINIDL_MPIEXEC_NUMPROC_FLAG must be defined (tests/CMakeLists.txt)"
#endif

namespace {

// mpirun -np 2 mpi_resume_worker <args>, its exit status (mpirun's).
minidl::test::Outcome run_job(const std::vector<std::string>& args) {
  std::vector<std::string> all{"--oversubscribe", MINIDL_MPIEXEC_NUMPROC_FLAG, "2", MINIDL_MPI_RESUME_WORKER};
  all.insert(all.end(), args.begin(), args.end());
  return minidl::test::run_program(MINIDL_MPIEXEC, all, {}, "", std::chrono::seconds(90));
}

}  // namespace

TEST_CASE("a data-parallel fit killed with SIGKILL resumes from replica 0's backup and ends as an uninterrupted one") {
  using minidl::test::backup_epoch;
  using minidl::test::check_same_result;
  using minidl::test::contents;
  minidl::test::TempDir dir;
  const std::string reference = dir.file("reference"), resumed = dir.file("resumed");
  const std::string backup_dir = dir.file("backup");
  const std::string backup = backup_dir + "/backup.safetensors";
  REQUIRE(run_job({dir.file("reference_backup"), reference}).status == 0);
  CHECK_FALSE(std::filesystem::exists(dir.file("reference_backup")));  // deleted at the normal end

  const minidl::test::Outcome first = run_job({backup_dir, resumed, "--kill-at-epoch", "2"});
  CHECK(first.status > 0);
  REQUIRE(std::filesystem::exists(backup));
  CHECK(backup_epoch(backup) == 2);  // epoch 1's backup: epoch 2 died after 3 of its 5 batches
  // The restart resumes at epoch 2, and dies again in epoch 4, the last, before its backup.
  const minidl::test::Outcome second = run_job({backup_dir, resumed, "--kill-at-epoch", "4"});
  CHECK(second.status > 0);
  CHECK(backup_epoch(backup) == 4);
  CHECK_FALSE(std::filesystem::exists(resumed + ".safetensors"));  // no killed run got to the end

  REQUIRE(run_job({backup_dir, resumed}).status == 0);
  CHECK_FALSE(std::filesystem::exists(backup));
  check_same_result(resumed, reference);
  // Where each run started: a run from epoch 0 would end the same, so the comparisons above do not show it.
  CHECK(contents(reference + ".starts") == "0\n");
  CHECK(contents(resumed + ".starts") == "0\n2\n4\n");
}
