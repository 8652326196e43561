// What the tests that kill a training program and run it again share
// (test_resume_kill.cpp, mpi_resume_kill.cpp): running a program as a child
// process with a bounded wait, and reading what it leaves behind.
#pragma once

#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <minidl/io.hpp>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace minidl::test {

struct Outcome {
  bool killed = false;     // by SIGKILL (its own; not the one a timeout sends)
  int status = -1;         // the exit status, if it exited
  bool timed_out = false;  // still running at the time limit, and stopped
};

/// Runs `program` with `args`, its environment this process's plus `env` ("NAME=value"), its stdin
/// /dev/null (mpirun forwards stdin to its rank 0), its stderr into `errors` if given. A child still
/// running after `limit` fails the test case rather than hang it: it gets SIGTERM (on which mpirun stops the
/// processes it started), then SIGKILL every 10 s until it is gone.
inline Outcome run_program(const std::string& program, const std::vector<std::string>& args,
                           const std::vector<std::string>& env = {}, const std::string& errors = "",
                           std::chrono::seconds limit = std::chrono::seconds(120)) {
  std::vector<std::string> all{program};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv, envp;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> environment(env);
  for (char** e = environ; *e; ++e) environment.emplace_back(*e);
  for (auto& e : environment) envp.push_back(e.data());
  envp.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  if (!errors.empty())
    posix_spawn_file_actions_addopen(&actions, 2, errors.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  REQUIRE_MESSAGE(spawned == 0, "cannot start ", program);

  Outcome out;
  auto deadline = std::chrono::steady_clock::now() + limit;
  int stop_signal = SIGTERM;
  int status = 0;
  pid_t done = 0;
  while ((done = waitpid(pid, &status, WNOHANG)) == 0) {
    if (std::chrono::steady_clock::now() >= deadline) {
      out.timed_out = true;
      kill(pid, stop_signal);
      stop_signal = SIGKILL;
      deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  REQUIRE(done == pid);
  CHECK_MESSAGE(!out.timed_out, program, " still ran after ", limit.count(), " s, and was stopped");
  out.killed = !out.timed_out && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  if (WIFEXITED(status)) out.status = WEXITSTATUS(status);
  return out;
}

/// A file's bytes; empty if it cannot be read.
inline std::string contents(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// The epoch a BackupAndRestore backup resumes at, from its metadata.
inline int backup_epoch(const std::string& path) {
  const auto file = read_safetensors(path);
  return nlohmann::json::parse(file.metadata().at("minidl.backup")).at("epoch").get<int>();
}

/// Checks that the result files `resumed` (.safetensors: weights, statistics, optimizer state; .history) of a
/// resumed run of 5 epochs of 5 steps equal the uninterrupted run's, `reference`, byte for byte.
inline void check_same_result(const std::string& resumed, const std::string& reference) {
  const std::string expected = contents(reference + ".safetensors");
  REQUIRE(expected.size() > 1000);
  CHECK(contents(resumed + ".safetensors") == expected);  // weights, statistics, optimizer state
  CHECK(contents(resumed + ".history") == contents(reference + ".history"));
  const auto file = minidl::read_safetensors(resumed + ".safetensors");
  CHECK(nlohmann::json::parse(file.metadata().at("minidl.optimizer")).at("iterations") == 25);  // 5 x 5 steps
  CHECK(contents(resumed + ".history").find("val_loss") != std::string::npos);
}

}  // namespace minidl::test
