// Workload C as a data-parallel fit (distributed.hpp), run under mpirun: C's
// model and images, fit for two epochs in global batches of 64 split across
// the processes, BatchNorm synchronized. The first epoch warms up (buffers get
// their sizes); replica 0 prints both epochs' figures, the second one counts.
//
//   mpirun -np 2 bench/c_distributed --threads 1 [--steps N] [--smoke]
#include "c_model.hpp"
#include "distributed.hpp"

int main(int argc, char** argv) {
  minidl::MpiSession mpi(argc, argv);
  minidl::MpiReplicas replicas;
  const bench::Options options = bench::parse_options(argc, argv);
  minidl::set_num_threads(options.threads);
  namespace C = bench::c;
  const auto data = C::load(options);
  minidl::Sequential<float> model = C::make_minidl_model(bench::synchronized_batchnorm());
  minidl::FitOptions<float> fit;
  fit.batch_size = C::batch;
  fit.epochs = 2;
  fit.verbose = 0;
  fit.seed = 1;
  const bench::DistributedRun run = bench::distributed_fit(
      model, data.train_x, minidl::one_hot<float>(data.train_y, C::classes), fit, replicas);
  if (replicas.rank() != 0) return run.replicas_identical ? 0 : 1;
  const long samples = static_cast<long>(data.train_x.rows());
  bench::distributed_json("C", run, options.threads, replicas.size(), samples, (samples + C::batch - 1) / C::batch)
      .add("max_rss_kib", bench::max_rss_kib())
      .print();
  return run.replicas_identical ? 0 : 1;
}
