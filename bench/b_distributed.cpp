// Workload B as a data-parallel fit (distributed.hpp), run under mpirun: each
// global batch of 128 is split across the processes, BatchNorm synchronized
// (so that any number of processes trains as one process does). Replica 0
// prints seconds per epoch, the MPI calls, bytes and seconds per step (its
// own: the bytes it contributed, the time it spent in MPI, waiting included)
// and the test accuracy.
//
//   mpirun -np 2 bench/b_distributed --threads 1 [--epochs N] [--smoke]
#include <memory>
#include <minidl/distributed.hpp>
#include <minidl/minidl.hpp>

#include "b_model.hpp"

int main(int argc, char** argv) {
  minidl::MpiSession mpi(argc, argv);
  auto replicas = std::make_shared<minidl::MpiReplicas>();
  const bench::Options options = bench::parse_options(argc, argv);
  minidl::set_num_threads(options.threads);
  namespace B = bench::b;
  const auto data = B::load(options);
  const minidl::Matrix<float> train_y = minidl::one_hot<float>(data.train_y, B::classes);
  minidl::BatchNormOptions synchronized;
  synchronized.synchronized = true;
  minidl::Sequential<float> model = B::make_minidl_model(synchronized);

  std::vector<double> epoch_seconds, mpi_seconds, mpi_bytes, mpi_calls;
  bench::Stopwatch clock;
  auto timer = std::make_shared<minidl::LambdaCallback<float>>();
  timer->epoch_begin = [&](minidl::Sequential<float>&, int) {
    replicas->reset_stats();
    clock.restart();
  };
  timer->epoch_end = [&](minidl::Sequential<float>&, int, const minidl::Logs&) {
    epoch_seconds.push_back(clock.seconds());
    const minidl::CommunicationStats& stats = replicas->stats();
    mpi_seconds.push_back(stats.seconds);
    mpi_bytes.push_back(static_cast<double>(stats.bytes));
    mpi_calls.push_back(static_cast<double>(stats.calls));
  };
  minidl::FitOptions<float> fit = B::fit_options(options, {timer});
  fit.replicas = replicas;
  const minidl::History history = model.fit(data.train_x, train_y, fit);
  const bool identical = minidl::replicas_identical(model, *replicas);
  if (replicas->rank() != 0) return identical ? 0 : 1;

  const minidl::Matrix<float> outputs = model.predict(data.test_x, B::predict_batch);
  const long steps = (static_cast<long>(data.train_x.rows()) + B::batch - 1) / B::batch;
  bench::JsonLine()
      .add("workload", "E").add("impl", "minidl data-parallel").add("threads", options.threads)
      .add("processes", replicas->size()).add("train_samples", static_cast<long>(data.train_x.rows()))
      .add("steps_per_epoch", steps).add("epoch_s", epoch_seconds).add("mpi_s", mpi_seconds)
      .add("mpi_bytes", mpi_bytes).add("mpi_calls", mpi_calls).add("last_loss", history.loss().back())
      .add("test_accuracy", bench::accuracy(outputs, data.test_y)).add("replicas_identical", identical)
      .add("max_rss_kib", bench::max_rss_kib())
      .print();
  return identical ? 0 : 1;
}
