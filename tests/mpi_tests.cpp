// Data-parallel fit on MPI (distributed.hpp, model/replicated_fit.hpp), run by
// CTest through mpirun on 2 and 3 processes, and on 2 over TCP alone. Every
// process runs every case in the same order; each case also fits a copy of
// the model on one process (no replicas) as the reference:
//   - synchronized BatchNorm: R replicas x global batch B == one process x
//     batch B (History, weights), a Dense-BN-Dropout and a conv model, float
//     and double, with uneven shards; replicas bitwise equal after every epoch;
//   - local BatchNorm: one step equals the average of the shards' steps taken
//     alone, and the moving statistics are replica 0's shard's (DDP);
//   - only replica 0 prints and writes files; a stop asked by one replica stops all;
//   - an error on one replica (bad data, a throwing callback, different data)
//     gives every replica the same DistributedError, and changes no model;
//   - a layer of the user's whose draws depend on its shard's size is an error naming it;
//   - BackupAndRestore resumes an interrupted data-parallel fit exactly;
//   - a steady-state data-parallel step allocates nothing (counting_allocations.hpp).
#define DOCTEST_CONFIG_IMPLEMENT
#include "counting_allocations.hpp"  // first: it replaces operator new and sets up Eigen's allocation hook

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <minidl/distributed.hpp>
#include <minidl/io.hpp>
#include <minidl/minidl.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "../examples/scaled_noise.hpp"
#include "support.hpp"

using namespace minidl;

namespace {

std::shared_ptr<MpiReplicas> world_replicas;

MpiReplicas& world() { return *world_replicas; }
int rank() { return world().rank(); }

/// n one-hot rows of `classes` classes, the class a function of the row's features (learnable).
template <class Scalar>
Matrix<Scalar> labels_for(const Matrix<Scalar>& x, Index classes) {
  Matrix<Scalar> y = Matrix<Scalar>::Zero(x.rows(), classes);
  for (Index i = 0; i < x.rows(); ++i) {
    const double s = static_cast<double>(x.row(i).sum());
    y(i, static_cast<Index>(std::abs(static_cast<long>(std::floor(s * 2))) % classes)) = 1;
  }
  return y;
}

// The layers before a BatchNorm have no bias (use_bias = false, as Keras users write them): BatchNorm removes
// its effect, so its gradient is rounding noise, which Adam scales up to steps of the learning rate's order;
// such a bias and the moving mean that follows it would differ between any two summation orders.
template <class Scalar>
Sequential<Scalar> dense_model(bool synchronized) {
  BatchNormOptions bn;
  bn.synchronized = synchronized;
  bn.momentum = 0.9;
  DenseOptions no_bias;
  no_bias.use_bias = false;
  Sequential<Scalar> model(7);
  model.add(Dense<Scalar>(16, 32, Activation::linear, no_bias));
  model.add(BatchNorm<Scalar>(bn));
  model.add(ReLU<Scalar>());
  model.add(Dropout<Scalar>(0.3));
  model.add(Dense<Scalar>(32, 4, Activation::softmax));
  return model;
}

template <class Scalar>
Sequential<Scalar> conv_model(bool synchronized) {
  BatchNormOptions bn;
  bn.synchronized = synchronized;
  Conv2DOptions same;
  same.padding = Padding::same;
  same.use_bias = false;
  Sequential<Scalar> model(11);
  model.add(Conv2D<Scalar>(Shape{8, 8, 1}, 4, 3, same));
  model.add(BatchNorm<Scalar>(bn));
  model.add(ReLU<Scalar>());
  model.add(MaxPooling2D<Scalar>());
  model.add(Flatten<Scalar>());
  model.add(Dropout<Scalar>(0.2));
  model.add(Dense<Scalar>(4, Activation::softmax));
  return model;
}

template <class Scalar>
void compile(Sequential<Scalar>& model) {
  model.compile(CategoricalCrossentropy{}, Adam<Scalar>(Scalar(0.01)), {Metric::accuracy});
}

/// Largest difference between two models' tensors, relative to max(1, |value|) (test::max_error): a tensor
/// whose gradient is rounding noise (a bias before BatchNorm) is compared by its absolute error.
template <class Scalar>
double weights_error(const Sequential<Scalar>& a, const Sequential<Scalar>& b) {
  const auto wa = a.get_weights(), wb = b.get_weights();
  REQUIRE(wa.size() == wb.size());
  double worst = 0;
  for (std::size_t i = 0; i < wa.size(); ++i) worst = std::max(worst, test::max_error(wa[i], wb[i]));
  return worst;
}

double history_error(const History& a, const History& b) {
  REQUIRE(a.names() == b.names());
  double worst = 0;
  for (const auto& name : a.names()) {
    REQUIRE(a[name].size() == b[name].size());
    for (std::size_t e = 0; e < a[name].size(); ++e)
      worst = std::max(worst, std::abs(a[name][e] - b[name][e]) / std::max(1e-30, std::abs(b[name][e])));
  }
  return worst;
}

/// A callback that checks, after every epoch, that the replicas hold bitwise the same model.
template <class Scalar>
struct CheckReplicas : Callback<Scalar> {
  int checked = 0, identical = 0;
  void on_epoch_end(Sequential<Scalar>& model, int, const Logs&) override {
    ++checked;
    identical += replicas_identical(model, world());
  }
};

/// Fits `model` (compiled by compile() unless it is already) on R replicas and a copy of it on one process with
/// the same options; checks the History, the weights and, after every epoch, that the replicas are bitwise equal.
template <class Scalar>
void check_equals_one_process(Sequential<Scalar> model, const Matrix<Scalar>& x, const Matrix<Scalar>& y,
                              int epochs, Index batch_size) {
  if (!model.compiled()) compile(model);
  Sequential<Scalar> alone = model.clone();
  FitOptions<Scalar> options = test::quiet<Scalar>(epochs, batch_size);
  options.seed = 5;
  options.validation_data.emplace(x.topRows(40), y.topRows(40));
  const History expected = alone.fit(x, y, options);
  auto check = std::make_shared<CheckReplicas<Scalar>>();
  options.callbacks = {check};
  options.replicas = world_replicas;
  const History got = model.fit(x, y, options);
  const double tolerance = test::tolerance<Scalar>(1e-5, 1e-12);
  MESSAGE("replicas ", world().size(), ": History within ", history_error(got, expected),
          " (relative), weights within ", weights_error(model, alone), " (test::max_error)");
  CHECK(history_error(got, expected) <= tolerance);
  CHECK(weights_error(model, alone) <= tolerance);
  CHECK(check->checked == epochs);
  CHECK(check->identical == epochs);
  CHECK(replicas_identical(model, world()));
}

}  // namespace

TEST_CASE_TEMPLATE("synchronized BatchNorm on R replicas equals one process: Dense-BN-Dropout", Scalar, float,
                   double) {
  // 203 rows in batches of 64: the last batch has 11 rows, and no batch divides evenly over 2 or 3 replicas.
  const Matrix<Scalar> x = test::uniform<Scalar>(203, 16, 3);
  check_equals_one_process(dense_model<Scalar>(true), x, labels_for(x, 4), 4, 64);
}

TEST_CASE_TEMPLATE("synchronized BatchNorm on R replicas equals one process: conv model", Scalar, float, double) {
  const Matrix<Scalar> x = test::uniform<Scalar>(101, 64, 4);
  check_equals_one_process(conv_model<Scalar>(true), x, labels_for(x, 4), 3, 32);
}

TEST_CASE_TEMPLATE("a gradient summed in place (a large kernel) and the packed ones equal one process", Scalar,
                   float, double) {
  const Index inputs = 256, units = 256;
  REQUIRE(inputs * units >= detail::ReplicaFit<Scalar>::in_place_values);  // the kernel's sum is its own
  Sequential<Scalar> model(6);
  model.add(Dense<Scalar>(inputs, units, Activation::tanh));
  model.add(Dense<Scalar>(units, 4, Activation::softmax));
  // SGD: Adam would turn the float rounding of the many near-zero gradients into steps of the learning rate's
  // order (measured: weights within 4.4e-6 on 3 replicas after 2 epochs); the sums are what this tests.
  model.compile(CategoricalCrossentropy{}, SGD<Scalar>(Scalar(0.1)), {Metric::accuracy});
  const Matrix<Scalar> x = test::uniform<Scalar>(90, inputs, 9);
  check_equals_one_process(std::move(model), x, labels_for(x, 4), 2, 32);
}

TEST_CASE_TEMPLATE("a data-parallel step allocates nothing after the first epoch, BatchNorm local and synchronized",
                   Scalar, float, double) {
  for (const bool synchronized : {false, true}) {
    CAPTURE(synchronized);
    Sequential<Scalar> model = dense_model<Scalar>(synchronized);
    compile(model);
    const Matrix<Scalar> x = test::uniform<Scalar>(8 * 24, 16, 12);  // 8 batches of 24: shards 12/12, 8/8/8
    FitOptions<Scalar> options = test::quiet<Scalar>(3, 24);
    options.validation_data.emplace(x.topRows(48), labels_for(x, 4).topRows(48));
    options.replicas = world_replicas;
    counting::check_steady_state_fit(model, x, labels_for(x, 4), options);
  }
}

TEST_CASE_TEMPLATE("a model without BatchNorm on R replicas equals one process, sample weights too", Scalar, float,
                   double) {
  Sequential<Scalar> model(3);
  model.add(Dense<Scalar>(16, 24, Activation::tanh));
  model.add(Dropout<Scalar>(0.5));
  model.add(Dense<Scalar>(24, 4, Activation::softmax));
  compile(model);
  Sequential<Scalar> alone = model.clone();
  const Matrix<Scalar> x = test::uniform<Scalar>(150, 16, 8);
  const Matrix<Scalar> y = labels_for(x, 4);
  FitOptions<Scalar> options = test::quiet<Scalar>(3, 50);
  options.sample_weight = Vector<Scalar>::LinSpaced(150, Scalar(0.5), Scalar(2));
  const History expected = alone.fit(x, y, options);
  options.replicas = world_replicas;
  const History got = model.fit(x, y, options);
  CHECK(history_error(got, expected) <= test::tolerance<Scalar>());
  CHECK(weights_error(model, alone) <= test::tolerance<Scalar>());
}

TEST_CASE("local BatchNorm: a step is the rows-weighted mean of the shards' steps; statistics are replica 0's") {
  // One SGD step without momentum on a global batch of n rows: each replica's gradient is its shard's with
  // the shard's own batch statistics (what PyTorch DDP computes), so the new weights are Σ_r (n_r/n)·w_r,
  // w_r being the weights one step on shard r alone gives; the moving statistics are replica 0's shard's.
  using Scalar = double;
  BatchNormOptions bn;
  bn.momentum = 0.5;
  Sequential<Scalar> model(5);
  model.add(Dense<Scalar>(6, 8));
  model.add(BatchNorm<Scalar>(bn));
  model.add(ReLU<Scalar>());
  model.add(Dense<Scalar>(8, 1));
  model.compile(MeanSquaredError{}, SGD<Scalar>(0.1));
  const Index n = 37;
  const Matrix<Scalar> x = test::uniform<Scalar>(n, 6, 12);
  const Matrix<Scalar> y = test::uniform<Scalar>(n, 1, 13);
  std::vector<Vector<Scalar>> expected;
  std::vector<Vector<Scalar>> replica0_statistics;
  for (int r = 0; r < world().size(); ++r) {
    const auto [first, last] = detail::shard_bounds(n, r, world().size());
    Sequential<Scalar> alone = model.clone();
    alone.compile(MeanSquaredError{}, SGD<Scalar>(0.1));
    alone.train_on_batch(x.middleRows(first, last - first), y.middleRows(first, last - first));
    const auto w = alone.get_weights();
    if (expected.empty())
      for (const auto& t : w) expected.push_back(Vector<Scalar>::Zero(t.size()));
    for (std::size_t i = 0; i < w.size(); ++i) expected[i] += static_cast<Scalar>(last - first) / n * w[i];
    if (r == 0) replica0_statistics = w;
  }
  FitOptions<Scalar> options = test::quiet<Scalar>(1, n);
  options.shuffle = false;
  options.replicas = world_replicas;
  model.fit(x, y, options);
  const auto got = model.get_weights();
  // get_weights order: kernel, bias, gamma, beta, moving_mean, moving_variance, kernel, bias.
  for (std::size_t i : {0, 1, 2, 3, 6, 7}) CHECK(test::max_error(got[i], expected[i]) <= 1e-12);
  for (std::size_t i : {4, 5}) CHECK(test::max_error(got[i], replica0_statistics[i]) == 0);
  CHECK(replicas_identical(model, world()));
}

TEST_CASE("local BatchNorm on 2 replicas matches PyTorch DistributedDataParallel (gloo, broadcast_buffers)") {
  // tests/data/ddp_torch.txt, from scripts/make_ddp_fixture.py: 2 DDP processes, BatchNorm1d with each
  // process's own statistics, SGD; the final weights and process 0's running statistics.
  if (world().size() != 2) {
    MESSAGE("the DDP fixture has 2 processes; skipped on ", world().size());
    return;
  }
  std::ifstream in(std::string(MINIDL_TEST_DATA_DIR) + "/ddp_torch.txt");
  REQUIRE(in);
  std::map<std::string, Matrix<double>> fixture;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string key;
    fields >> key;
    fixture[key] = test::read_fixture_matrix(fields, key);
  }
  const auto flat = [&](const std::string& key) {
    const Matrix<double>& m = fixture.at(key);
    return Vector<double>(Eigen::Map<const Vector<double>>(m.data(), m.size()));
  };
  const char* keys[] = {"kernel1", "gamma", "beta", "running_mean", "running_var", "kernel2", "bias2"};
  DenseOptions no_bias;
  no_bias.use_bias = false;
  Sequential<double> model;
  model.add(Dense<double>(6, 8, Activation::linear, no_bias));
  model.add(BatchNorm<double>(BatchNormOptions::pytorch()));
  model.add(ReLU<double>());
  model.add(Dense<double>(8, 1));
  std::vector<Vector<double>> initial;
  for (const char* key : keys) initial.push_back(flat(key));
  model.set_weights(initial);
  model.compile(MeanSquaredError{}, SGD<double>(0.1));
  FitOptions<double> options = test::quiet<double>(2, 32);
  options.shuffle = false;
  options.replicas = world_replicas;
  const History history = model.fit(fixture.at("x"), fixture.at("y"), options);
  const auto got = model.get_weights();
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO(keys[i]);
    CHECK(test::max_error(got[i], flat(std::string("final.") + keys[i])) <= 1e-12);
  }
  // Process 1's running statistics in DDP differ (its own shards'); minidl's replicas all hold process 0's.
  CHECK(test::max_error(got[3], flat("final1.running_mean")) > 1e-3);
  // The epoch losses are the means of DDP's step losses (each the mean over the processes).
  const Matrix<double>& steps = fixture.at("loss");
  for (int epoch = 0; epoch < 2; ++epoch)
    CHECK(history.loss()[epoch] == doctest::Approx(steps.block(0, 3 * epoch, 1, 3).mean()).epsilon(1e-12));
}

TEST_CASE("only replica 0 prints and writes files; one replica's stop stops every replica") {
  using Scalar = float;
  Sequential<Scalar> model = dense_model<Scalar>(true);
  compile(model);
  const Matrix<Scalar> x = test::uniform<Scalar>(96, 16, 21);
  const Matrix<Scalar> y = labels_for(x, 4);
  std::ostringstream out;
  const std::string csv = "/tmp/minidl_mpi_test_" + std::to_string(rank()) + ".csv";
  std::filesystem::remove(csv);
  FitOptions<Scalar> options = test::quiet<Scalar>(5, 16);
  options.verbose = 2;
  options.out = &out;
  options.replicas = world_replicas;
  auto stop = std::make_shared<LambdaCallback<Scalar>>();
  const int stopper = world().size() - 1;  // the last replica alone asks, in epoch 2's third batch
  stop->batch_end = [&](Sequential<Scalar>& m, Index batch, const Logs&) {
    if (rank() == stopper && batch == 2 && m.optimizer().iterations() > 6) m.stop_training = true;
  };
  options.callbacks = {std::make_shared<CSVLogger<Scalar>>(csv), stop};
  const History history = model.fit(x, y, options);
  CHECK(history.epochs() == 2);
  CHECK(model.optimizer().iterations() == 6 + 3);
  CHECK(replicas_identical(model, world()));
  if (rank() == 0) {
    CHECK(out.str().find("Epoch 1/5") != std::string::npos);
    CHECK(std::filesystem::exists(csv));
  } else {
    CHECK(out.str().empty());
    CHECK_FALSE(std::filesystem::exists(csv));
  }
  std::filesystem::remove(csv);
}

TEST_CASE("an error on one replica stops every replica with the same error, and changes no model") {
  using Scalar = float;
  const Matrix<Scalar> x = test::uniform<Scalar>(64, 16, 31);
  const Matrix<Scalar> y = labels_for(x, 4);
  const auto expect_failure = [&](Sequential<Scalar>& model, const Matrix<Scalar>& data,
                                  const FitOptions<Scalar>& options, int failed, const std::string& words) {
    const auto before = model.get_weights();
    std::string what;
    int failed_rank = -1;
    try {
      model.fit(data, y, options);
    } catch (const DistributedError& e) {
      what = e.what();
      failed_rank = e.failed_rank();
    }
    INFO(what);
    CHECK(failed_rank == failed);
    CHECK(what.find(words) != std::string::npos);
    CHECK(what.find("replica " + std::to_string(failed)) != std::string::npos);
    // Every replica has the same message: replica 0's length and fingerprint.
    std::uint64_t h = detail::fingerprint(0, what.data(), what.size()), h0 = h;
    world().broadcast(&h0, sizeof h0, 0);
    CHECK(world().max(h != h0) == 0);
    return before;
  };
  const int last = world().size() - 1;
  FitOptions<Scalar> options = test::quiet<Scalar>(3, 16);
  options.replicas = world_replicas;

  SUBCASE("a NaN in one replica's data") {
    Sequential<Scalar> model = dense_model<Scalar>(true);
    compile(model);
    Matrix<Scalar> bad = x;
    if (rank() == last) bad(5, 3) = std::numeric_limits<Scalar>::quiet_NaN();
    const auto before = expect_failure(model, bad, options, last, "NaN");
    CHECK(test::bitwise_equal(model.get_weights(), before));
  }
  SUBCASE("other data on one replica") {
    Sequential<Scalar> model = dense_model<Scalar>(true);
    compile(model);
    Matrix<Scalar> other = x;
    if (rank() == last) other(0, 0) += 1;
    const auto before = expect_failure(model, other, options, last, "training data");
    CHECK(test::bitwise_equal(model.get_weights(), before));
  }
  SUBCASE("a callback that throws on replica 0 in epoch 2") {
    Sequential<Scalar> model = dense_model<Scalar>(true);
    compile(model);
    auto thrower = std::make_shared<LambdaCallback<Scalar>>();
    thrower->epoch_end = [](Sequential<Scalar>&, int epoch, const Logs&) {
      if (rank() == 0 && epoch == 1) throw IOError("disk full");
    };
    options.callbacks = {thrower};
    expect_failure(model, x, options, 0, "disk full");
    CHECK(replicas_identical(model, world()));  // the replicas still agree, after 2 epochs
  }
  SUBCASE("a batch too small to split") {
    Sequential<Scalar> model = dense_model<Scalar>(true);
    compile(model);
    options.batch_size = 63;  // 64 rows: the last batch has one row
    const auto before = expect_failure(model, x, options, 0, "cannot be split");
    CHECK(test::bitwise_equal(model.get_weights(), before));
  }
}

TEST_CASE("a layer whose draws depend on its shard's size is refused at the end of the epoch") {
  // examples/scaled_noise.hpp draws one number per value of its batch, so replicas with shards of different
  // sizes leave its generator in different states: fit says which layer, rather than train different models.
  using Scalar = double;
  Sequential<Scalar> model(3);
  model.add(Dense<Scalar>(16, 8));
  model.add(ScaledNoise<Scalar>(0.1, 5));
  model.add(Dense<Scalar>(4, Activation::softmax));
  compile(model);
  const Matrix<Scalar> x = test::uniform<Scalar>(65, 16, 51);
  FitOptions<Scalar> options = test::quiet<Scalar>(2, 35);  // batches of 35 and 30: uneven shards on 2 and 3
  options.replicas = world_replicas;
  std::string what;
  try {
    model.fit(x, labels_for(x, 4), options);
  } catch (const DistributedError& e) {
    what = e.what();
    CHECK(e.failed_rank() > 0);
  }
  INFO(what);
  CHECK(what.find("ScaledNoise") != std::string::npos);
  CHECK(what.find("random generator") != std::string::npos);
}

TEST_CASE("BackupAndRestore resumes an interrupted data-parallel fit where the uninterrupted one would be") {
  using Scalar = double;
  const Matrix<Scalar> x = test::uniform<Scalar>(90, 16, 41);
  const Matrix<Scalar> y = labels_for(x, 4);
  const auto make = [] {
    Sequential<Scalar> model = dense_model<Scalar>(true);
    compile(model);
    return model;
  };
  FitOptions<Scalar> options = test::quiet<Scalar>(4, 30);
  options.replicas = world_replicas;
  Sequential<Scalar> uninterrupted = make();
  const History expected = uninterrupted.fit(x, y, options);

  // One directory for all replicas (they share this machine's file system): replica 0 writes, all read.
  std::string dir = "/tmp/minidl_mpi_backup_XXXXXX";
  if (rank() == 0 && !mkdtemp(dir.data())) FAIL("mkdtemp");
  world().broadcast(dir.data(), dir.size(), 0);
  Sequential<Scalar> model = make();
  auto backup = std::make_shared<BackupAndRestore<Scalar>>(dir);
  auto interrupt = std::make_shared<LambdaCallback<Scalar>>();
  interrupt->epoch_begin = [](Sequential<Scalar>&, int epoch) {
    if (epoch == 2) throw ValueError("interrupted");
  };
  options.callbacks = {backup, interrupt};
  CHECK_THROWS_AS(model.fit(x, y, options), DistributedError);
  Sequential<Scalar> resumed = make();
  options.callbacks = {backup};
  const History got = resumed.fit(x, y, options);
  CHECK(history_error(got, expected) == 0);
  CHECK(test::bitwise_equal(resumed.get_weights(), uninterrupted.get_weights()));
  world().max(0);  // replica 0 removes the directory once every replica is done with it
  if (rank() == 0) std::filesystem::remove_all(dir);
}

int main(int argc, char** argv) {
  MpiSession mpi(argc, argv);
  world_replicas = std::make_shared<MpiReplicas>();
  doctest::Context context(argc, argv);
  const int failures = context.run();
  // Every process's result: a failure on any fails the test.
  const bool failed = world_replicas->max(failures != 0 ? 1 : 0) != 0;
  world_replicas.reset();
  return failed ? 1 : 0;
}
