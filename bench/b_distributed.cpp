// Workload B as a data-parallel fit (distributed.hpp), run under mpirun: each
// global batch of 128 is split across the processes, BatchNorm synchronized
// (so that any number of processes trains as one process does). Replica 0
// prints seconds per epoch, the MPI calls, bytes and seconds per step (its
// own: the bytes it contributed, the time it spent in MPI, waiting included)
// and the test accuracy.
//
//   mpirun -np 2 bench/b_distributed --threads 1 [--epochs N] [--smoke]
#include "b_model.hpp"
#include "distributed.hpp"

int main(int argc, char** argv) {
  minidl::MpiSession mpi(argc, argv);
  minidl::MpiReplicas replicas;
  const bench::Options options = bench::parse_options(argc, argv);
  minidl::set_num_threads(options.threads);
  namespace B = bench::b;
  const auto data = B::load(options);
  minidl::Sequential<float> model = B::make_minidl_model(bench::synchronized_batchnorm());
  const bench::DistributedRun run = bench::distributed_fit(
      model, data.train_x, minidl::one_hot<float>(data.train_y, B::classes), B::fit_options(options, {}), replicas);
  if (replicas.rank() != 0) return run.replicas_identical ? 0 : 1;

  const minidl::Matrix<float> outputs = model.predict(data.test_x, B::predict_batch);
  const long samples = static_cast<long>(data.train_x.rows());
  bench::distributed_json("B", run, options.threads, replicas.size(), samples, (samples + B::batch - 1) / B::batch)
      .add("test_accuracy", bench::accuracy(outputs, data.test_y)).add("max_rss_kib", bench::max_rss_kib())
      .print();
  return run.replicas_identical ? 0 : 1;
}
