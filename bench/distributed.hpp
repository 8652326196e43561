// What the data-parallel programs (b_distributed.cpp, c_distributed.cpp) share:
// a fit over MpiReplicas timed epoch by epoch, replica 0's MPI figures for
// each epoch, and the floor of its communication: the same bytes per step in
// one MPI_Allreduce each, timed alone after the fit.
#pragma once

#include <memory>
#include <minidl/distributed.hpp>
#include <minidl/minidl.hpp>
#include <string>
#include <vector>

#include "common.hpp"

namespace bench {

/// Every BatchNorm of workload E sums its statistics over the processes, so that any number trains as one.
inline minidl::BatchNormOptions synchronized_batchnorm() {
  minidl::BatchNormOptions options;
  options.synchronized = true;
  return options;
}

struct DistributedRun {
  std::vector<double> epoch_s, mpi_s, mpi_bytes, mpi_calls;
  minidl::History history;
  bool replicas_identical = false;
  double allreduce_floor_s = 0;  ///< one epoch's steps, each one MPI_Allreduce of the step's float bytes, alone
};

/// Fits `model` data-parallel with `fit` (its replicas set here), then times the floor.
inline DistributedRun distributed_fit(minidl::Sequential<float>& model, const minidl::Matrix<float>& x,
                                      const minidl::Matrix<float>& y, minidl::FitOptions<float> fit,
                                      minidl::MpiReplicas& replicas) {
  DistributedRun run;
  Stopwatch clock;
  auto timer = std::make_shared<minidl::LambdaCallback<float>>();
  timer->epoch_begin = [&](minidl::Sequential<float>&, int) {
    replicas.reset_stats();
    clock.restart();
  };
  timer->epoch_end = [&](minidl::Sequential<float>&, int, const minidl::Logs&) {
    run.epoch_s.push_back(clock.seconds());
    const minidl::CommunicationStats& stats = replicas.stats();
    run.mpi_s.push_back(stats.seconds);
    run.mpi_bytes.push_back(static_cast<double>(stats.bytes));
    run.mpi_calls.push_back(static_cast<double>(stats.calls));
  };
  fit.callbacks.push_back(timer);
  fit.replicas = std::shared_ptr<minidl::ReplicaGroup>(&replicas, [](minidl::ReplicaGroup*) {});
  run.history = model.fit(x, y, fit);
  run.replicas_identical = minidl::replicas_identical(model, replicas);

  const long steps = (static_cast<long>(x.rows()) + fit.batch_size - 1) / fit.batch_size;
  std::vector<float> payload(static_cast<std::size_t>(run.mpi_bytes.back() / steps / sizeof(float)), 1.0f);
  replicas.sum(payload.data(), payload.size());  // warm-up: the transport's buffers
  clock.restart();
  for (long s = 0; s < steps; ++s) replicas.sum(payload.data(), payload.size());
  run.allreduce_floor_s = clock.seconds();
  return run;
}

/// Workload E's JSON line of `run` (on replica 0), for the caller to complete and print.
inline JsonLine distributed_json(const char* model, const DistributedRun& run, int threads, int processes,
                                 long train_samples, long steps_per_epoch) {
  JsonLine line;
  line.add("workload", "E").add("model", model).add("impl", "minidl data-parallel").add("threads", threads)
      .add("processes", processes).add("train_samples", train_samples).add("steps_per_epoch", steps_per_epoch)
      .add("epoch_s", run.epoch_s).add("mpi_s", run.mpi_s).add("mpi_bytes", run.mpi_bytes)
      .add("mpi_calls", run.mpi_calls).add("allreduce_floor_s", run.allreduce_floor_s)
      .add("last_loss", run.history.loss().back()).add("replicas_identical", run.replicas_identical);
  return line;
}

}  // namespace bench
