// The data-parallel training program that mpi_resume_kill.cpp runs under
// mpirun, kills with SIGKILL and runs again:
//   mpirun -np 2 mpi_resume_worker <backup_dir> <result_prefix> [--kill-at-epoch K]
// Every process is a replica fitting resume_model on resume_data
// (resume_model.hpp) with BackupAndRestore(backup_dir), a directory all of
// them read: replica 0 writes the backups, every replica restores them. With
// --kill-at-epoch K the last replica raises SIGKILL on itself after batch 2
// (of 5) of epoch K (0-based): Open MPI then aborts the whole job (mpirun
// exits non-zero). Replica 0 cannot get past the next batch's sum, which
// needs every replica, so the backup it leaves is epoch K - 1's, whole. A
// fit that ends has replica 0 write <result_prefix>.safetensors and
// <result_prefix>.history (write_resume_result). Every run has replica 0
// append the epoch it starts at to <result_prefix>.starts: a run from epoch 0
// would end as the resumed one does, so only this shows that it resumed.
// Exit status: 0 done, 1 an error (its message on stderr), 2 wrong arguments.
#include <exception>
#include <fstream>
#include <iostream>
#include <memory>
#include <minidl/distributed.hpp>
#include <string>
#include <utility>

#include "resume_model.hpp"

int main(int argc, char** argv) {
  minidl::MpiSession mpi(argc, argv);
  const bool kill = argc == 5 && std::string(argv[3]) == "--kill-at-epoch";
  if (argc != 3 && !kill) {
    std::cerr << "usage: mpirun -np N mpi_resume_worker <backup_dir> <result_prefix> [--kill-at-epoch K]\n";
    return 2;
  }
  using Scalar = double;
  try {
    const auto replicas = std::make_shared<minidl::MpiReplicas>();
    const auto [x, y] = minidl::test::resume_data<Scalar>();
    minidl::Sequential<Scalar> model = minidl::test::resume_model<Scalar>();
    minidl::FitOptions<Scalar> options = minidl::test::resume_options<Scalar>();
    options.replicas = replicas;
    options.callbacks.push_back(std::make_shared<minidl::BackupAndRestore<Scalar>>(argv[1]));
    auto starts = std::make_shared<minidl::LambdaCallback<Scalar>>();
    starts->epoch_begin = [&, first = true](minidl::Sequential<Scalar>&, int epoch) mutable {
      // Written and closed at once: a SIGKILL later in the run would lose a buffered line.
      if (std::exchange(first, false) && replicas->rank() == 0)
        std::ofstream(std::string(argv[2]) + ".starts", std::ios::app) << epoch << "\n";
    };
    options.callbacks.push_back(starts);
    if (kill && replicas->rank() == replicas->size() - 1)
      options.callbacks.push_back(std::make_shared<minidl::test::KillAt<Scalar>>(std::stoi(argv[4]), 2));
    const minidl::History history = model.fit(x, y, options);
    if (replicas->rank() == 0 && !minidl::test::write_resume_result(model, history, argv[2])) return 1;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "mpi_resume_worker: " << e.what() << "\n";
    return 1;
  }
}
