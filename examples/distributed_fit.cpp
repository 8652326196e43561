// distributed_fit — the same Sequential and fit on several processes (MPI),
// on real Fashion-MNIST: a Dense-BatchNorm-ReLU-Dropout classifier, each
// global batch of 128 images split across the processes, BatchNorm's
// statistics synchronized over the replicas (BatchNormOptions::synchronized).
//
//   mpirun -np 2 build/examples/distributed_fit [FASHION_MNIST_DIR] [--local] [--float]
//   mpirun -np 2 --mca btl tcp,self build/examples/distributed_fit   (TCP only, no shared memory)
//   mpirun -np 4 --hostfile hosts build/examples/distributed_fit     (several machines)
//
// Replica 0 prints the run (the others print nothing), then fits the same
// model on one process and compares. It trains in double, where the two runs
// differ only by the order of the sums (about 1e-16); exits non-zero if the
// replicas end with different weights or the synchronized run is not the
// one-process run. --float trains in float and shows how the two runs drift
// apart there (after a step they agree to about 1e-7; Adam divides each
// gradient by its running size, so the rounding of gradients that nearly
// cancel grows into differences of about 1e-3 after these 3 epochs, measured).
// --local gives each replica its own shard's statistics (PyTorch DDP and
// Horovod's default): then the run is not one process's.
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

template <class Scalar>
Sequential<Scalar> make_model(bool synchronized) {
  BatchNormOptions bn;
  bn.synchronized = synchronized;
  // No bias before BatchNorm, which cancels it: its gradient would be rounding noise, which Adam turns into
  // steps that differ with the order of any sum (README, "Training on several processes").
  DenseOptions no_bias;
  no_bias.use_bias = false;
  Sequential<Scalar> model(42);
  model.add(Dense<Scalar>(784, 256, Activation::linear, no_bias));
  model.add(BatchNorm<Scalar>(bn));
  model.add(ReLU<Scalar>());
  model.add(Dropout<Scalar>(0.2));
  model.add(Dense<Scalar>(10, Activation::softmax));
  model.compile(CategoricalCrossentropy{}, Adam<Scalar>(Scalar(1e-3)), {Metric::accuracy});
  return model;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// The largest relative difference between two Histories' losses (loss, val_loss): accuracies count whole
/// samples, and one prediction on the edge between two classes moves them by a step.
double loss_difference(const History& a, const History& b) {
  double worst = 0;
  for (const char* name : {"loss", "val_loss"})
    for (std::size_t e = 0; e < a[name].size(); ++e)
      worst = std::max(worst, std::abs(a[name][e] - b[name][e]) / std::abs(b[name][e]));
  return worst;
}

/// The data-parallel fit and the one-process fit in `Scalar`; true if everything that must hold did.
template <class Scalar>
bool run(MpiReplicas& replicas, const std::shared_ptr<MpiReplicas>& shared, const std::string& dir,
         bool synchronized) {
  const bool main_replica = replicas.rank() == 0;
  // Every process loads the whole data: each global batch is drawn from all of it, in the same order.
  const FashionMnist<Scalar> data = load_fashion_mnist<Scalar>(dir, 12000);
  const Matrix<Scalar> y = one_hot<Scalar>(data.train_y, 10);
  const Matrix<Scalar> y_test = one_hot<Scalar>(data.test_y, 10);
  FitOptions<Scalar> options;
  options.epochs = 3;
  options.batch_size = 128;
  options.seed = 1;
  options.verbose = 2;
  options.validation_data.emplace(data.test_x.topRows(2000), y_test.topRows(2000));
  options.replicas = shared;

  if (main_replica)
    std::printf("Data-parallel fit on %d processes: %d training images, global batch %d (%s BatchNorm, %s)\n",
                replicas.size(), static_cast<int>(data.train_x.rows()), static_cast<int>(options.batch_size),
                synchronized ? "synchronized" : "local", sizeof(Scalar) == 4 ? "float" : "double");
  Sequential<Scalar> model = make_model<Scalar>(synchronized);
  const auto start = std::chrono::steady_clock::now();
  const History history = model.fit(data.train_x, y, options);
  const double fit_seconds = seconds_since(start);
  const CommunicationStats stats = replicas.stats();
  const bool identical = replicas_identical(model, replicas);
  if (!main_replica) return identical;

  const Index rows = data.train_x.rows();
  const double steps = static_cast<double>(options.epochs * ((rows + options.batch_size - 1) / options.batch_size));
  std::printf("\nfit: %.2f s; MPI: %llu calls, %.1f MiB sent per process (%.1f KiB per step), %.2f s in MPI\n",
              fit_seconds, static_cast<unsigned long long>(stats.calls), stats.bytes / 1048576.0,
              stats.bytes / 1024.0 / steps, stats.seconds);
  std::printf("replicas hold bitwise the same weights, statistics and generators: %s\n", identical ? "yes" : "NO");

  std::printf("\nThe same fit on this process alone:\n");
  Sequential<Scalar> alone = make_model<Scalar>(synchronized);
  options.replicas = nullptr;
  const History one = alone.fit(data.train_x, y, options);
  const double difference = loss_difference(history, one);
  std::printf("\nlargest relative difference between the two runs' losses: %.2g; final val_accuracy %.4f and "
              "%.4f\n", difference, history["val_accuracy"].back(), one["val_accuracy"].back());
  if (!synchronized) {
    std::printf("local BatchNorm: each replica normalized its shard of %d rows with that shard's statistics, so "
                "the run differs from one process's\n", static_cast<int>(options.batch_size) / replicas.size());
    return identical;
  }
  if (sizeof(Scalar) == 4) {
    std::printf("float: the runs drift apart by rounding (see the top of examples/distributed_fit.cpp)\n");
    return identical;
  }
  const bool equal = difference < 1e-12;
  std::printf("synchronized BatchNorm: %d processes x batch %d %s one process x batch %d\n", replicas.size(),
              static_cast<int>(options.batch_size), equal ? "trains as" : "does NOT train as",
              static_cast<int>(options.batch_size));
  return identical && equal;
}

}  // namespace

int main(int argc, char** argv) {
  MpiSession mpi(argc, argv);
  auto replicas = std::make_shared<MpiReplicas>();
  std::string dir = default_fashion_mnist_dir();
  bool synchronized = true, in_float = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--local") == 0) synchronized = false;
    else if (std::strcmp(argv[i], "--float") == 0) in_float = true;
    else dir = argv[i];
  }
  try {
    const bool ok = in_float ? run<float>(*replicas, replicas, dir, synchronized)
                             : run<double>(*replicas, replicas, dir, synchronized);
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "distributed_fit (process %d): %s\n", replicas->rank(), e.what());
    return 1;
  }
}
