// Calls made in the wrong place or with extreme arguments: during training,
// with a layer used twice, with a batch some layer rejects, with sizes that
// overflow. Each gets a minidl::Error and leaves the model (weights,
// statistics, generators) as it was.
#include <doctest/doctest.h>

#include <limits>
#include <minidl/io.hpp>
#include <string>

#include "support.hpp"

using namespace minidl;
using test::bitwise_equal;

namespace {

// Unshuffled: the batches are the rows in order.
FitOptions<float> in_order(int epochs, Index batch_size) {
  FitOptions<float> options = test::quiet<float>(epochs, batch_size);
  options.shuffle = false;
  return options;
}

Sequential<float> regression(std::uint64_t seed) {
  Sequential<float> m(seed);
  m.add(Dense<float>(3, 6, Activation::tanh));
  m.add(Dense<float>(6, 1));
  m.compile(MeanSquaredError{}, Adam<float>{1e-2f});
  return m;
}

/// A model whose every layer has state a failed call could change: a Keras
/// BatchNorm's moving statistics, a Dropout's generator, and last a
/// pytorch-convention BatchNorm that refuses to train on one sample.
Sequential<float> stateful(std::uint64_t seed) {
  Sequential<float> m(seed);
  m.add(Dense<float>(3, 4));
  m.add(BatchNorm<float>());
  m.add(Dropout<float>(0.5));
  m.add(Dense<float>(4, 4));
  m.add(BatchNorm<float>(BatchNormOptions::pytorch()));
  m.add(Dense<float>(4, 1));
  m.compile(MeanSquaredError{}, SGD<float>{0.05f});
  return m;
}

/// True if `a` and `b` hold the same weights and draw the same Dropout masks
/// from here on: one more training step on each gives bitwise equal weights.
bool same_state(Sequential<float>& a, Sequential<float>& b) {
  if (!bitwise_equal(a.get_weights(), b.get_weights())) return false;
  const auto x = test::uniform<float>(8, 3, 77), y = test::uniform<float>(8, 1, 78);
  a.train_on_batch(x, y);
  b.train_on_batch(x, y);
  return bitwise_equal(a.get_weights(), b.get_weights());
}

}  // namespace

TEST_CASE("during fit, a callback cannot change the model's structure or train it again") {
  const auto x = test::uniform<float>(40, 3, 1), y = test::uniform<float>(40, 1, 2);
  auto model = regression(5);
  const auto run_with = [&](std::function<void(Sequential<float>&)> act) -> std::string {
    auto spy = std::make_shared<LambdaCallback<float>>();
    spy->batch_end = [&](Sequential<float>& m, Index, const Logs&) {
      CHECK(m.training());
      act(m);
    };
    FitOptions<float> options = in_order(2, 16);
    options.callbacks = {spy};
    try {
      model.fit(x, y, options);
    } catch (const StateError& e) {
      return e.what();
    }
    return "no error";
  };
  CHECK(run_with([](Sequential<float>& m) { m.add(Dense<float>(1, 1)); }) ==
        "Sequential::add: the model is training (fit or train_on_batch is running, e.g. this is a callback); add is "
        "refused until it returns");
  CHECK(model.size() == 2);
  CHECK(run_with([&](Sequential<float>& m) { m.fit(x, y, in_order(1, 8)); }) ==
        "Sequential::fit: the model is training (fit or train_on_batch is running, e.g. this is a callback); fit is "
        "refused until it returns");
  CHECK(run_with([&](Sequential<float>& m) { m.train_on_batch(x, y); }).find("train_on_batch is refused") !=
        std::string::npos);
  CHECK(run_with([](Sequential<float>& m) { m.compile(MeanSquaredError{}, SGD<float>{}); })
            .find("compile is refused") != std::string::npos);
  Sequential<float> other(1);
  other.add(Dense<float>(1, 1));
  CHECK(run_with([&](Sequential<float>& m) { m.add(other); }).find("add is refused") != std::string::npos);
  CHECK(run_with([&](Sequential<float>& m) { m.loss_in_phases(x, y, {Phase::training, Phase::training}); })
            .find("loss_in_phases is refused") != std::string::npos);
  // What a callback may do: evaluate, predict, read and set weights, stop training.
  CHECK(run_with([&](Sequential<float>& m) {
          m.evaluate(x, y);
          m.set_weights(m.get_weights());
          m.stop_training = true;
        }) == "no error");
  // A fit that a callback's exception ended leaves a usable model.
  CHECK_FALSE(model.training());
  model.add(Dense<float>(1, 1));
  model.compile(MeanSquaredError{}, SGD<float>{});
  CHECK(std::isfinite(model.fit(x, y, in_order(1, 16)).loss().back()));
}

TEST_CASE("a layer can be used only once in a model") {
  Sequential<float> base(1);
  base.add(Dense<float>(3, 3));
  base.add(ReLU<float>());
  Sequential<float> model(2);
  model.add(base);
  CHECK_THROWS_WITH_AS(model.add(base),
                       "Sequential::add: Dense 'dense' is already in this model; a layer can be used once per model "
                       "(add(other.clone()) appends a copy)",
                       ValueError);
  CHECK(model.size() == 2);
  const auto [first, second] = model.split(1);
  CHECK_THROWS_AS(model.add(second), ValueError);
  model.add(base.clone());  // a copy is another layer
  CHECK(model.size() == 4);
  // Two models may share a layer (that is what split() does).
  Sequential<float> again(3);
  again.add(base);
  CHECK(again.size() == 2);
}

TEST_CASE("validate, then commit: a batch some layer rejects changes no layer") {
  const auto x = test::uniform<float>(33, 3, 3), y = test::uniform<float>(33, 1, 4);
  SUBCASE("train_on_batch with one sample: the pytorch BatchNorm at the end refuses it before any layer runs") {
    auto model = stateful(7);
    auto copy = model.clone();
    CHECK_THROWS_WITH_AS(model.train_on_batch(x.topRows(1), y.topRows(1)),
                         "BatchNormalization 'batch_normalization_1': training with the pytorch convention expects "
                         "more than 1 value per channel (as PyTorch), got 1 (a batch of 1 x (None, 4))",
                         ValueError);
    CHECK(model.optimizer().iterations() == 0);
    CHECK(same_state(model, copy));  // the Keras BatchNorm's statistics and the Dropout's generator too
  }
  SUBCASE("fit on 33 samples at batch size 32 fails before its first step") {
    auto model = stateful(7);
    auto copy = model.clone();
    CHECK_THROWS_AS(model.fit(x, y, in_order(3, 32)), ValueError);
    CHECK(model.optimizer().iterations() == 0);
    CHECK(same_state(model, copy));
    CHECK(model.fit(x, y, in_order(2, 11)).epochs() == 2);  // 33 = 3 x 11
  }
  SUBCASE("loss_in_phases checks its last batch before its first") {
    auto model = stateful(7);
    auto copy = model.clone();
    std::vector<Phase> phases(model.size(), Phase::training);
    CHECK_THROWS_AS(model.loss_in_phases(x, y, phases, 16), ValueError);  // 33 = 16 + 16 + 1
    CHECK(same_state(model, copy));
  }
  SUBCASE("inference has no such requirement") {
    auto model = stateful(7);
    CHECK(model.predict(x.topRows(1)).rows() == 1);
    CHECK(std::isfinite(model.evaluate(x, y, 32)));
  }
}

TEST_CASE("extreme arguments: huge batch sizes, many layers, bad indices, tiny epsilons") {
  const auto x = test::uniform<float>(20, 3, 5), y = test::uniform<float>(20, 1, 6);
  SUBCASE("a batch size of 2^63 - 1 is one batch of all samples") {
    auto model = regression(3);
    const Index huge = std::numeric_limits<Index>::max();
    const History h = model.fit(x, y, in_order(2, huge));
    CHECK(model.optimizer().iterations() == 2);
    CHECK(h.loss().size() == 2);
    CHECK(model.evaluate(x, y, huge) == doctest::Approx(model.evaluate(x, y, 20)));
    CHECK(model.predict(x, huge).rows() == 20);
  }
  SUBCASE("layer(i) past the end is a ValueError") {
    auto model = regression(3);
    CHECK_THROWS_WITH_AS(model.layer(99), "Sequential::layer: index 99 is out of range: the model has 2 layers",
                         ValueError);
  }
  SUBCASE("two thousand unnamed layers get Keras's names") {
    Sequential<float> model(1);
    model.add(Dense<float>(3, 2));
    for (int i = 0; i < 2000; ++i) model.add(ReLU<float>());
    CHECK(model.layer(1).name() == "re_lu");
    CHECK(model.layer(2000).name() == "re_lu_1999");
  }
  SUBCASE("an epsilon that is 0 in the model's scalar type is refused") {
    BatchNormOptions tiny;
    tiny.epsilon = 1e-50;
    CHECK_THROWS_WITH_AS(BatchNorm<float>(3, tiny),
                         "BatchNormalization: epsilon 1e-50 becomes 0 in the model's scalar type (float); it must stay "
                         "a finite number > 0",
                         ValueError);
    CHECK(BatchNorm<double>(3, tiny).options().epsilon == 1e-50);
    tiny.epsilon = 1e300;
    CHECK_THROWS_AS(BatchNorm<float>(3, tiny), ValueError);
  }
  SUBCASE("explain_gap with more layers that differ between phases than bits in a mask") {
    Sequential<float> model(4);
    model.add(Dense<float>(3, 8));
    for (int i = 0; i < 70; ++i) model.add(Dropout<float>(0.01));
    model.add(Dense<float>(8, 1));
    model.compile(MeanSquaredError{}, SGD<float>{});
    const GapReport report = explain_gap(model, x, y);
    REQUIRE(report.layers.size() == 70);
    double sum = 0;
    for (const auto& share : report.layers) sum += share.share;
    CHECK(sum == doctest::Approx(report.phase_gap()).epsilon(1e-9));
    CHECK(report.inference_loss == doctest::Approx(model.evaluate(x, y)).epsilon(1e-6));
  }
}

TEST_CASE("ModelCheckpoint: a path it cannot save to fails when fit starts, not after an epoch") {
  test::TempDir dir;
  const std::string file = dir.file("plain");
  write_file_atomically(file, "not a directory");
  const auto x = test::uniform<float>(20, 3, 5), y = test::uniform<float>(20, 1, 6);
  auto model = regression(3);
  const auto before = model.get_weights();
  FitOptions<float> options = in_order(1, 10);
  options.callbacks = {std::make_shared<ModelCheckpoint<float>>(file + "/ckpt-{epoch}.safetensors")};
  CHECK_THROWS_WITH_AS(model.fit(x, y, options),
                       ("ModelCheckpoint: cannot save to '" + file + "/ckpt-{epoch}.safetensors': '" + file +
                        "' is not a directory")
                           .c_str(),
                       IOError);
  CHECK(model.optimizer().iterations() == 0);
  CHECK(bitwise_equal(before, model.get_weights()));
  // A folder that does not exist yet is created at the first save.
  options.callbacks = {std::make_shared<ModelCheckpoint<float>>(dir.file("new/run/ckpt-{epoch}.safetensors"))};
  model.fit(x, y, options);
  CHECK(std::filesystem::exists(dir.file("new/run/ckpt-1.safetensors")));
}

TEST_CASE("a file name of 250 bytes can be saved: the temporary name is shortened, not the target's") {
  test::TempDir dir;
  auto model = regression(3);
  const std::string path = dir.file(std::string(245, 'w') + ".safe");
  REQUIRE(std::filesystem::path(path).filename().string().size() == 250);
  save_weights(model, path);
  auto copy = regression(4);
  load_weights(copy, path);
  CHECK(bitwise_equal(model.get_weights(), copy.get_weights()));
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path)) files += entry.is_regular_file();
  CHECK(files == 1);  // no temporary file left
}

TEST_CASE("weights are set through checked setters: a wrong shape or value throws and changes nothing") {
  // A mutable kernel() would let `dense.kernel() = Matrix::Zero(40, 30)` replace
  // the buffer that the compiled optimizer points into: the next training step
  // wrote past it. The setter keeps the storage and refuses another shape.
  auto model = regression(4);
  const Matrix<float> x = test::uniform<float>(8, 3, 1), y = test::uniform<float>(8, 1, 2);
  model.train_on_batch(x, y);
  auto& dense = dynamic_cast<Dense<float>&>(model.layer(0));
  const float* storage = dense.kernel().data();
  const auto before = model.get_weights();
  CHECK_THROWS_WITH_AS(dense.set_kernel(Matrix<float>::Zero(40, 30)),
                       "Dense 'dense': kernel: expected 3 x 6, got 40 x 30", ShapeError);
  CHECK_THROWS_WITH_AS(dense.set_bias(Vector<float>::Zero(5)), "Dense 'dense': bias: expected 6 values, got 5 values",
                       ShapeError);
  Matrix<float> nan_kernel = Matrix<float>::Ones(3, 6);
  nan_kernel(1, 2) = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH_AS(dense.set_kernel(nan_kernel), "Dense 'dense': kernel: value 8 is nan, expected a finite number",
                       ValueError);
  CHECK(bitwise_equal(model.get_weights(), before));

  // A good value is written in place: training goes on with it.
  dense.set_kernel(Matrix<float>::Ones(3, 6));
  CHECK(dense.kernel().data() == storage);
  CHECK(dense.kernel() == Matrix<float>::Ones(3, 6));
  model.train_on_batch(x, y);
  CHECK(dense.kernel() != Matrix<float>::Ones(3, 6));

  // Conv2D and BatchNorm have the same doors.
  Conv2D<float> conv(Shape{4, 4, 2}, 3, 2, Conv2DOptions{});
  CHECK_THROWS_WITH_AS(conv.set_kernel(Matrix<float>::Zero(8, 2)), "Conv2D '': kernel: expected 8 x 3, got 8 x 2",
                       ShapeError);
  conv.set_bias(Vector<float>::Constant(3, 0.5f));
  CHECK(conv.bias() == Vector<float>::Constant(3, 0.5f));
  BatchNorm<float> bn(Shape{3});
  CHECK_THROWS_WITH_AS(bn.set_moving_variance(Vector<float>::Constant(3, -1)),
                       "BatchNormalization '': moving_variance: value 0 is -1, expected >= 0 (a variance)",
                       ValueError);
  CHECK_THROWS_AS(bn.set_gamma(Vector<float>::Ones(4)), ShapeError);
  CHECK_THROWS_AS(bn.set_num_batches_tracked(-1), ValueError);
  bn.set_gamma(Vector<float>::Constant(3, 2));
  bn.set_beta(Vector<float>::Constant(3, 1));
  bn.set_moving_mean(Vector<float>::Constant(3, 4));
  bn.set_moving_variance(Vector<float>::Constant(3, 9));
  bn.set_num_batches_tracked(7);
  CHECK(bn.num_batches_tracked() == 7);
  // Inference: (x - 4) / sqrt(9 + eps) * 2 + 1, with x = 4: 1.
  CHECK(bn.forward(Matrix<float>::Constant(1, 3, 4), Phase::inference) == Matrix<float>::Ones(1, 3));
}
