// distributed_fit — the same Sequential and fit on several processes (MPI),
// on real Fashion-MNIST: a Dense-BatchNorm-ReLU-Dropout classifier, each
// global batch of 128 images split across the processes, BatchNorm's
// statistics synchronized over the replicas (BatchNormOptions::synchronized).
//
//   mpirun -np 2 build/examples/distributed_fit [FASHION_MNIST_DIR] [--local]
//   mpirun -np 2 --mca btl tcp,self build/examples/distributed_fit   (TCP only, no shared memory)
//   mpirun -np 4 --hostfile hosts build/examples/distributed_fit     (several machines)
//
// Replica 0 prints the run (the others print nothing), then fits the same
// model on one process and compares: with synchronized BatchNorm the
// data-parallel History equals the one-process History up to float rounding;
// with --local (each replica normalizes with its own shard's statistics, what
// PyTorch DDP and Horovod do) it does not, and the example says by how much.
// Exits non-zero if the replicas end with different weights, or if the
// synchronized run is not the one-process run.
#include <minidl/distributed.hpp>
#include <minidl/fashion_mnist.hpp>
#include <minidl/minidl.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

using namespace minidl;

namespace {

Sequential<float> make_model(bool synchronized) {
  BatchNormOptions bn;
  bn.synchronized = synchronized;
  Sequential<float> model(42);
  model.add(Dense<float>(784, 256));
  model.add(BatchNorm<float>(bn));
  model.add(ReLU<float>());
  model.add(Dropout<float>(0.2));
  model.add(Dense<float>(10, Activation::softmax));
  model.compile(CategoricalCrossentropy{}, Adam<float>(1e-3f), {Metric::accuracy});
  return model;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// The largest relative difference between two Histories' values.
double history_difference(const History& a, const History& b) {
  double worst = 0;
  for (const auto& name : a.names())
    for (std::size_t e = 0; e < a[name].size(); ++e)
      worst = std::max(worst, std::abs(a[name][e] - b[name][e]) / std::abs(b[name][e]));
  return worst;
}

}  // namespace

int main(int argc, char** argv) {
  MpiSession mpi(argc, argv);
  auto replicas = std::make_shared<MpiReplicas>();
  const bool main_replica = replicas->rank() == 0;
  std::string dir = default_fashion_mnist_dir();
  bool synchronized = true;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--local") == 0) synchronized = false;
    else dir = argv[i];
  }
  try {
    // Every process loads the whole data: each global batch is drawn from all of it, in the same order.
    const FashionMnist<float> data = load_fashion_mnist<float>(dir, 12000);
    const Matrix<float> y = one_hot<float>(data.train_y, 10);
    const Matrix<float> y_test = one_hot<float>(data.test_y, 10);
    FitOptions<float> options;
    options.epochs = 3;
    options.batch_size = 128;
    options.seed = 1;
    options.verbose = 2;
    options.validation_data.emplace(data.test_x.topRows(2000), y_test.topRows(2000));
    options.replicas = replicas;

    if (main_replica)
      std::printf("Data-parallel fit on %d processes: %d training images, global batch %d (%s BatchNorm)\n",
                  replicas->size(), static_cast<int>(data.train_x.rows()), static_cast<int>(options.batch_size),
                  synchronized ? "synchronized" : "local");
    Sequential<float> model = make_model(synchronized);
    const auto start = std::chrono::steady_clock::now();
    const History history = model.fit(data.train_x, y, options);
    const double fit_seconds = seconds_since(start);
    const CommunicationStats stats = replicas->stats();
    const bool identical = replicas_identical(model, *replicas);
    if (!main_replica) return identical ? 0 : 1;

    const Index rows = data.train_x.rows();
    const double steps = static_cast<double>(options.epochs * ((rows + options.batch_size - 1) / options.batch_size));
    std::printf("\nfit: %.2f s; MPI: %llu calls, %.1f MiB sent per process (%.1f KiB per step), %.2f s in MPI\n",
                fit_seconds, static_cast<unsigned long long>(stats.calls), stats.bytes / 1048576.0,
                stats.bytes / 1024.0 / steps, stats.seconds);
    std::printf("replicas hold bitwise the same weights, statistics and generators: %s\n", identical ? "yes" : "NO");

    std::printf("\nThe same fit on this process alone:\n");
    Sequential<float> alone = make_model(synchronized);
    options.replicas = nullptr;
    const History one = alone.fit(data.train_x, y, options);
    const double difference = history_difference(history, one);
    std::printf("\nlargest relative difference between the two Histories: %.2g\n", difference);
    bool ok = identical;
    if (synchronized) {
      const bool equal = difference < 1e-4;
      std::printf("synchronized BatchNorm: %d processes x batch %d %s one process x batch %d\n", replicas->size(),
                  static_cast<int>(options.batch_size), equal ? "trains as" : "does NOT train as",
                  static_cast<int>(options.batch_size));
      ok &= equal;
    } else {
      std::printf("local BatchNorm: each replica normalized its shard of %d rows with that shard's statistics, "
                  "so the run differs from one process's\n",
                  static_cast<int>(options.batch_size) / replicas->size());
    }
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "distributed_fit (process %d): %s\n", replicas->rank(), e.what());
    return 1;
  }
}
