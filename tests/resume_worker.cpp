// The training program that test_resume_kill.cpp runs as a child process,
// kills with SIGKILL and runs again with the same arguments:
//   resume_worker <float|double> <backup_dir> <result_prefix>
// It fits resume_model on resume_data (resume_model.hpp) with
// BackupAndRestore(backup_dir). Where it dies is set by the environment, so
// that a restart with the same arguments does not die at the same place:
//   MINIDL_RESUME_KILL=<epoch>,<batch>  SIGKILL right after that batch (both 0-based);
//   MINIDL_RESUME_KILL_AT_WRITE=<n>     SIGKILL during the n-th backup write, once
//                                       its temporary file is written, before the rename;
//   MINIDL_RESUME_HIDDEN=<n>            n hidden units instead of 8: a changed program.
// A raised SIGKILL is the same death at the same point on every run, and no
// handler or destructor softens it. A fit that ends writes
// <result_prefix>.safetensors and <result_prefix>.history
// (write_resume_result). Exit status: 0 done, 1 an error (its message on
// stderr), 2 wrong arguments.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <memory>
#include <string>

#include "resume_model.hpp"

namespace {

template <class Scalar>
int run(const std::string& backup_dir, const std::string& prefix) {
  const auto [x, y] = minidl::test::resume_data<Scalar>();
  const char* hidden = std::getenv("MINIDL_RESUME_HIDDEN");  // another model, whose backup this is not
  minidl::Sequential<Scalar> model = minidl::test::resume_model<Scalar>(hidden ? std::atoi(hidden) : 8);
  minidl::FitOptions<Scalar> options = minidl::test::resume_options<Scalar>();
  options.callbacks.push_back(std::make_shared<minidl::BackupAndRestore<Scalar>>(backup_dir));
  if (const char* kill = std::getenv("MINIDL_RESUME_KILL")) {
    int epoch = -1;
    long batch = -1;
    if (std::sscanf(kill, "%d,%ld", &epoch, &batch) != 2)
      throw minidl::ValueError(std::string("MINIDL_RESUME_KILL must be <epoch>,<batch>, got '") + kill + "'");
    options.callbacks.push_back(std::make_shared<minidl::test::KillAt<Scalar>>(epoch, batch));
  }
  if (const char* at_write = std::getenv("MINIDL_RESUME_KILL_AT_WRITE")) {
    const int n = std::atoi(at_write);
    minidl::detail::before_rename_hook = [n, writes = 0](const std::string&) mutable {
      if (++writes == n) std::raise(SIGKILL);
    };
  }
  const minidl::History history = model.fit(x, y, options);
  return minidl::test::write_resume_result(model, history, prefix) ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: resume_worker <float|double> <backup_dir> <result_prefix>\n";
    return 2;
  }
  const std::string scalar = argv[1];
  try {
    if (scalar == "float") return run<float>(argv[2], argv[3]);
    if (scalar == "double") return run<double>(argv[2], argv[3]);
  } catch (const std::exception& e) {
    std::cerr << "resume_worker: " << e.what() << "\n";
    return 1;
  }
  std::cerr << "resume_worker: the scalar type must be float or double, got '" << scalar << "'\n";
  return 2;
}
