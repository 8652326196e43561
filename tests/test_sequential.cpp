// Sequential: compile / fit / evaluate / predict semantics, errors, determinism.
#include <doctest/doctest.h>

#include <minidl/minidl.hpp>
#include "support.hpp"
#include <memory>
#include <sstream>

using namespace minidl;

namespace {

using test::bitwise_equal;
using test::quiet;
template <class Scalar>
Matrix<Scalar> random_matrix(Index rows, Index cols, std::uint64_t seed) {
  return test::uniform<Scalar>(rows, cols, seed);
}

// Dense(6, 16, relu) -> BatchNorm -> Dropout(0.25) -> Dense(16, 2)
template <class Scalar>
Sequential<Scalar> small_model(std::uint64_t seed = 1) {
  Sequential<Scalar> model(seed);
  model.add(Dense<Scalar>(6, 16, Activation::relu));
  model.add(BatchNorm<Scalar>());
  model.add(Dropout<Scalar>(0.25));
  model.add(Dense<Scalar>(16, 2));
  model.compile(MeanSquaredError{}, Adam<Scalar>{Scalar(1e-2)}, {Metric::mae});
  return model;
}



}  // namespace

TEST_CASE_TEMPLATE("fit's epoch loss is the batch-size-weighted mean of pre-update batch losses", T, float, double) {
  const auto x = random_matrix<T>(100, 6, 1);  // batches of 32, 32, 32 and 4
  const auto y = random_matrix<T>(100, 2, 2);
  auto model = small_model<T>();
  auto replay = model.clone();

  FitOptions<T> options = quiet<T>();
  options.shuffle = false;
  const History history = model.fit(x, y, options);

  double weighted = 0;
  for (Index begin = 0; begin < 100; begin += 32) {
    const Index n = std::min<Index>(32, 100 - begin);
    weighted += static_cast<double>(replay.train_on_batch(x.middleRows(begin, n), y.middleRows(begin, n))) * n;
  }
  CHECK(history.loss().size() == 1);
  CHECK(history.loss()[0] == weighted / 100);  // same computation, same order: bitwise
  CHECK(bitwise_equal(model.get_weights(), replay.get_weights()));
  // evaluate runs after the updates, in the inference phase: a different number.
  CHECK(model.evaluate(x, y) != doctest::Approx(history.loss()[0]).epsilon(1e-3));
}

TEST_CASE_TEMPLATE("val_loss equals a later evaluate on the same data, bit for bit", T, float, double) {
  const auto x = random_matrix<T>(70, 6, 3);
  const auto y = random_matrix<T>(70, 2, 4);
  auto model = small_model<T>();
  FitOptions<T> options = quiet<T>(3, 16);
  options.validation_data = ValidationData<T>{x, y};
  const History history = model.fit(x, y, options);
  REQUIRE(history.val_loss().size() == 3);
  CHECK(static_cast<T>(history.val_loss().back()) == model.evaluate(x, y, 16));
  CHECK(static_cast<T>(history["val_mae"].back()) == static_cast<T>(model.evaluate_all(x, y, 16)["mae"]));
  CHECK(history.names() == std::vector<std::string>{"loss", "mae", "val_loss", "val_mae"});
}

TEST_CASE_TEMPLATE("evaluate and predict have no side effects", T, float, double) {
  const auto x = random_matrix<T>(40, 6, 5);
  const auto y = random_matrix<T>(40, 2, 6);
  auto model = small_model<T>();
  model.fit(x, y, quiet<T>());
  const auto before = model.get_weights();
  const T first = model.evaluate(x, y);
  const Matrix<T> p1 = model.predict(x);
  CHECK(model.evaluate(x, y) == first);
  CHECK((model.predict(x).array() == p1.array()).all());
  CHECK(bitwise_equal(before, model.get_weights()));
  CHECK(model.test_on_batch(x, y) == doctest::Approx(first));
}

TEST_CASE("an evaluate inside a callback does not change the training run") {
  const auto x = random_matrix<double>(64, 6, 7);
  const auto y = random_matrix<double>(64, 2, 8);
  auto plain = small_model<double>();
  auto observed = plain.clone();
  const History h1 = plain.fit(x, y, quiet<double>(2, 16));

  auto spy = std::make_shared<LambdaCallback<double>>();
  int batches = 0, epochs = 0;
  spy->batch_end = [&](Sequential<double>& m, Index, const Logs&) {
    m.evaluate(x, y, 7);  // other batch size, inference phase
    m.predict(x.topRows(3));
    ++batches;
  };
  spy->epoch_end = [&](Sequential<double>&, int, const Logs& logs) {
    CHECK(logs.contains("loss"));
    ++epochs;
  };
  FitOptions<double> options = quiet<double>(2, 16);
  options.callbacks.push_back(spy);
  const History h2 = observed.fit(x, y, options);
  CHECK(batches == 8);
  CHECK(epochs == 2);
  CHECK(h1.loss() == h2.loss());
  CHECK(bitwise_equal(plain.get_weights(), observed.get_weights()));
}

TEST_CASE("the learning rate can change between epochs") {
  const auto x = random_matrix<float>(32, 6, 9);
  const auto y = random_matrix<float>(32, 2, 10);
  auto model = small_model<float>();
  std::vector<float> seen;
  auto record = std::make_shared<LambdaCallback<float>>();
  record->epoch_end = [&](Sequential<float>& m, int, const Logs&) { seen.push_back(m.optimizer().learning_rate()); };
  FitOptions<float> options = quiet<float>(3);
  options.callbacks = {std::make_shared<LearningRateScheduler<float>>([](int epoch, float lr) {
                         return epoch == 0 ? lr : lr / 2;
                       }),
                       record};
  model.fit(x, y, options);
  CHECK(seen == std::vector<float>{1e-2f, 5e-3f, 2.5e-3f});
}

TEST_CASE("same seeds give bitwise-identical weights and losses, another seed differs") {
  const auto x = random_matrix<float>(90, 6, 11);
  const auto y = random_matrix<float>(90, 2, 12);
  auto run = [&](std::uint64_t model_seed, std::uint64_t shuffle_seed) {
    auto model = small_model<float>(model_seed);
    FitOptions<float> options = quiet<float>(3, 16);
    options.seed = shuffle_seed;
    const History h = model.fit(x, y, options);
    return std::make_pair(model.get_weights(), h.loss());
  };
  const auto a = run(3, 4), b = run(3, 4);
  CHECK(bitwise_equal(a.first, b.first));
  CHECK(a.second == b.second);
  CHECK_FALSE(bitwise_equal(a.first, run(5, 4).first));  // other initial weights and dropout masks
  CHECK(a.second != run(3, 6).second);                   // other shuffling
}

TEST_CASE("frozen layers: weights and statistics bitwise unchanged, gradients still reach layers below") {
  const auto x = random_matrix<double>(64, 6, 13);
  const auto y = random_matrix<double>(64, 2, 14);
  Sequential<double> model(2);
  auto& first = model.add(Dense<double>(6, 8, Activation::tanh));
  auto& frozen_dense = model.add(Dense<double>(8, 8, Activation::tanh));
  auto& frozen_bn = model.add(BatchNorm<double>());
  model.add(Dense<double>(8, 2));
  model.freeze(1, 3);
  model.compile(MeanSquaredError{}, SGD<double>{0.1});
  const Matrix<double> first_kernel = first.kernel();
  const Matrix<double> frozen_kernel = frozen_dense.kernel();
  const Vector<double> mean = frozen_bn.moving_mean(), variance = frozen_bn.moving_variance();
  const Vector<double> gamma = frozen_bn.gamma();

  for (auto policy : {FrozenBatchNormPolicy::moving_statistics, FrozenBatchNormPolicy::batch_statistics}) {
    model.set_frozen_batchnorm_policy(policy);
    model.fit(x, y, quiet<double>(2, 16));
    CHECK((frozen_dense.kernel().array() == frozen_kernel.array()).all());
    CHECK((frozen_bn.moving_mean().array() == mean.array()).all());
    CHECK((frozen_bn.moving_variance().array() == variance.array()).all());
    CHECK((frozen_bn.gamma().array() == gamma.array()).all());
  }
  CHECK((first.kernel() - first_kernel).norm() > 1e-3);  // trained through the frozen layers
  CHECK(model.trainable_parameter_count() == 6 * 8 + 8 + 8 * 2 + 2);
  CHECK(model.parameter_count() == 6 * 8 + 8 + 8 * 8 + 8 + 2 * 8 + 8 * 2 + 2);
}

TEST_CASE("split shares layers: training the top trains the whole model's head") {
  const auto x = random_matrix<double>(48, 6, 15);
  const auto y = random_matrix<double>(48, 2, 16);
  Sequential<double> model(3);
  model.add(Dense<double>(6, 8, Activation::relu));
  model.add(BatchNorm<double>());
  model.add(Dense<double>(8, 2));
  model.compile(MeanSquaredError{}, Adam<double>{});
  auto [base, top] = model.split(2);
  CHECK(base.size() == 2);
  CHECK(top.size() == 1);
  CHECK(&base.layer(0) == &model.layer(0));
  CHECK(&top.layer(0) == &model.layer(2));
  base.freeze();
  CHECK(model.layer(1).frozen());

  const Matrix<double> features = base.predict(x);
  top.compile(MeanSquaredError{}, Adam<double>{1e-2});
  top.fit(features, y, quiet<double>(5, 16));
  CHECK(model.evaluate(x, y) == doctest::Approx(top.evaluate(features, y)).epsilon(1e-12));
  CHECK_THROWS_AS(model.split(0), ValueError);
  CHECK_THROWS_AS(model.split(3), ValueError);
}

TEST_CASE("summary prints layers, output shapes, parameter counts and the frozen column") {
  Sequential<float> model;
  model.add(Dense<float>(100, 1000, Activation::relu));
  model.add(BatchNorm<float>(1000));
  model.add(Dropout<float>(0.2));
  model.add(Dense<float>(1000, 1));
  model.layer(1).set_frozen(true);
  std::ostringstream out;
  model.summary(out);
  const std::string text = out.str();
  CHECK(text.find("dense (Dense)") != std::string::npos);
  CHECK(text.find("batch_normalization (BatchNormalization)") != std::string::npos);
  CHECK(text.find("dense_1 (Dense)") != std::string::npos);
  CHECK(text.find("(None, 1000)") != std::string::npos);
  CHECK(text.find("101,000") != std::string::npos);
  CHECK(text.find("4,000") != std::string::npos);
  CHECK(text.find("Total params: 106,001") != std::string::npos);
  CHECK(text.find("Trainable params: 102,001") != std::string::npos);
  CHECK(text.find("Non-trainable params: 4,000") != std::string::npos);
}

TEST_CASE("progress output: Keras's bar, one finished line per epoch off a terminal") {
  const auto x = random_matrix<float>(64, 6, 17);
  const auto y = random_matrix<float>(64, 2, 18);
  auto model = small_model<float>();
  std::ostringstream out;
  FitOptions<float> options;
  options.epochs = 2;
  options.out = &out;
  options.validation_data = ValidationData<float>{x, y};
  model.fit(x, y, options);
  const std::string text = out.str();
  CHECK(text.find('\r') == std::string::npos);
  CHECK(text.find("Epoch 1/2\n2/2 [==============================] - ") != std::string::npos);
  CHECK(text.find("Epoch 2/2\n") != std::string::npos);
  CHECK(text.find("/step - loss: ") != std::string::npos);
  CHECK(text.find(" - val_loss: ") != std::string::npos);

  std::ostringstream live;
  options.out = &live;
  options.live_progress = true;
  model.fit(x, y, options);
  CHECK(live.str().find('\r') != std::string::npos);

  std::ostringstream silent;
  options.out = &silent;
  options.verbose = 0;
  model.fit(x, y, options);
  CHECK(silent.str().empty());

  // Training stopped after the 3rd of 8 batches: the epoch's line shows how far it got.
  std::ostringstream stopped;
  options.out = &stopped;
  options.verbose = 1;
  options.live_progress = false;
  options.epochs = 1;
  options.batch_size = 8;
  auto stop = std::make_shared<LambdaCallback<float>>();
  stop->batch_end = [](Sequential<float>& m, Index batch, const Logs&) { m.stop_training = batch == 2; };
  options.callbacks = {stop};
  model.fit(x, y, options);
  CHECK(stopped.str().find("\n3/8 [===========>..................] - ") != std::string::npos);

  CHECK(format_metric(2.55712) == "2.5571");
  CHECK(format_metric(0.000123456) == "1.2346e-04");
  // Keras's Progbar rule: %.4f only when |v| > 1e-3, so 1e-3 itself is in e-notation.
  CHECK(format_metric(0.001) == "1.0000e-03");
  CHECK(format_metric(-0.001) == "-1.0000e-03");
  CHECK(format_metric(0.0011) == "0.0011");
  CHECK(format_metric(0.0) == "0.0000e+00");
  // Its verbose-2 line tests v > 1e-3 without abs: negative values in e-notation.
  CHECK(format_metric(-0.5, true) == "-5.0000e-01");
  CHECK(format_metric(0.5, true) == "0.5000");
}

TEST_CASE_TEMPLATE("bad input throws a clear error and leaves the model unchanged", T, float, double) {
  const auto x = random_matrix<T>(20, 6, 19);
  const auto y = random_matrix<T>(20, 2, 20);
  auto model = small_model<T>();
  model.fit(x, y, quiet<T>());
  const auto weights = model.get_weights();
  const auto iterations = model.optimizer().iterations();
  const auto unchanged = [&] {
    return bitwise_equal(weights, model.get_weights()) && model.optimizer().iterations() == iterations;
  };

  CHECK_THROWS_WITH_AS(model.fit(x, y.topRows(19), quiet<T>()),
                       "Sequential::fit: y has 19 rows, expected 20 (one per row of x)", ShapeError);
  CHECK_THROWS_WITH_AS(model.fit(x.leftCols(5), y, quiet<T>()),
                       "Sequential::fit: x has 5 columns, expected 6 (the model's input size)", ShapeError);
  CHECK_THROWS_WITH_AS(model.evaluate(x, y.leftCols(1)),
                       "Sequential::evaluate: y has 1 columns, expected 2 (the model's output size)", ShapeError);
  CHECK_THROWS_WITH_AS(model.fit(x.topRows(0), y.topRows(0), quiet<T>()),
                       "Sequential::fit: x is empty (0 samples)", ValueError);
  Matrix<T> bad_x = x;
  bad_x(3, 2) = std::numeric_limits<T>::quiet_NaN();
  CHECK_THROWS_WITH_AS(model.fit(bad_x, y, quiet<T>()), "Sequential::fit: x contains NaN or Inf (nan at row 3, column 2)",
                       ValueError);
  Matrix<T> bad_y = y;
  bad_y(0, 1) = std::numeric_limits<T>::infinity();
  CHECK_THROWS_WITH_AS(model.train_on_batch(x, bad_y), "Sequential::train_on_batch: y contains NaN or Inf (inf at row 0, column 1)",
                       ValueError);
  CHECK_THROWS_WITH_AS(model.fit(x, y, quiet<T>(1, 0)), "Sequential::fit: batch_size must be > 0, got 0",
                       ValueError);
  CHECK_THROWS_WITH_AS(model.fit(x, y, quiet<T>(-1)), "Sequential::fit: epochs must be >= 0, got -1", ValueError);
  FitOptions<T> bad_validation = quiet<T>();
  bad_validation.validation_data = ValidationData<T>{x, y.leftCols(1)};
  CHECK_THROWS_AS(model.fit(x, y, bad_validation), ShapeError);
  CHECK_THROWS_AS(model.predict(x.leftCols(4)), ShapeError);
  CHECK(unchanged());

  Sequential<T> uncompiled;
  uncompiled.add(Dense<T>(6, 2));
  const auto fresh = uncompiled.get_weights();
  CHECK_THROWS_WITH_AS(uncompiled.fit(x, y, quiet<T>()),
                       "Sequential::fit: the model is not compiled; call compile(loss, optimizer) after adding the "
                       "last layer",
                       StateError);
  CHECK_THROWS_AS(uncompiled.evaluate(x, y), StateError);
  CHECK(bitwise_equal(fresh, uncompiled.get_weights()));
  CHECK_THROWS_AS(Sequential<T>().predict(x), StateError);

  const auto layers = model.size();
  CHECK_THROWS_WITH_AS(model.add(Dense<T>(3, 4)), "Dense 'dense_2': expects input shape (None, 3), got (None, 2)",
                       ShapeError);
  CHECK(model.size() == layers);
  CHECK(model.compiled());

  // A layer added after compile: the message says the model changed, not
  // that it was never compiled; compiling again makes it usable.
  model.add(Dense<T>(2, 2));
  CHECK_FALSE(model.compiled());
  CHECK_THROWS_WITH_AS(model.fit(x, y, quiet<T>()),
                       "Sequential::fit: the model changed after compile (a layer was added); call compile(loss, "
                       "optimizer) again",
                       StateError);
  CHECK_THROWS_WITH_AS(model.evaluate(x, y),
                       "Sequential::evaluate: the model changed after compile (a layer was added); call "
                       "compile(loss, optimizer) again",
                       StateError);
}

TEST_CASE("appending models: shared layers, unique generated names, no self-append") {
  Sequential<float> base(1);
  base.add(Dense<float>(4, 4, Activation::relu));
  base.add(Dense<float>(4, 4));
  Sequential<float> model(2);
  model.add(base);          // shares base's layers
  model.add(base.clone());  // an independent copy, same names
  model.add(Dense<float>(4, 1));
  CHECK(&model.layer(0) == &base.layer(0));
  CHECK(&model.layer(2) != &base.layer(0));
  CHECK(model.layer(4).name() == "dense_2");
  CHECK_THROWS_WITH_AS(model.add(model), "Sequential::add: a model cannot be appended to itself", ValueError);
  Sequential<float> wrong(3);
  wrong.add(Dense<float>(5, 2));
  CHECK_THROWS_AS(model.add(wrong), ShapeError);
  CHECK(model.size() == 5);
}

TEST_CASE("generated layer names follow Keras's snake case") {
  Sequential<float> model;
  model.add(Conv2D<float>(Shape{8, 8, 1}, 2, 3));
  model.add(BatchNorm<float>());
  model.add(ReLU<float>());
  model.add(MaxPooling2D<float>());
  model.add(GlobalAveragePooling2D<float>());
  model.add(Dense<float>(2, 1));
  const std::vector<std::string> expected = {"conv2d",     "batch_normalization",       "re_lu",
                                             "max_pooling2d", "global_average_pooling2d", "dense"};
  for (std::size_t i = 0; i < expected.size(); ++i) CHECK(model.layer(i).name() == expected[i]);
}

TEST_CASE_TEMPLATE("cross-entropy targets outside [0, 1] are a ValueError naming the value, before anything trains", T,
                   float, double) {
  // Class labels 0..9 given to binary_crossentropy: Keras computes a negative
  // loss and trains on it; minidl refuses the data.
  Matrix<T> x = random_matrix<T>(20, 6, 31);
  Matrix<T> labels(20, 1);
  for (Index i = 0; i < 20; ++i) labels(i, 0) = static_cast<T>(i % 10);
  const Matrix<T> confident = Matrix<T>::Constant(20, 1, T(0.9));
  CHECK(BinaryCrossentropy{}(confident, labels) < 0);  // what the loss alone gives

  Sequential<T> model(3);
  model.add(Dense<T>(6, 1, Activation::sigmoid));
  model.compile(BinaryCrossentropy{}, SGD<T>{});
  const auto weights = model.get_weights();
  CHECK_THROWS_WITH_AS(model.fit(x, labels, quiet<T>()),
                       "Sequential::fit: y holds 2 at row 2, column 0, outside [0, 1], the range of "
                       "binary_crossentropy's targets (probabilities; class indices need "
                       "sparse_categorical_crossentropy or one_hot)",
                       ValueError);
  CHECK_THROWS_AS(model.evaluate(x, labels), ValueError);
  CHECK_THROWS_AS(model.train_on_batch(x, labels), ValueError);
  CHECK_THROWS_AS(model.test_on_batch(x, labels), ValueError);
  const Matrix<T> probabilities = Matrix<T>::Constant(20, 1, T(0.5));
  FitOptions<T> with_validation = quiet<T>();
  with_validation.validation_data = ValidationData<T>{x, labels};
  CHECK_THROWS_WITH_AS(model.fit(x, probabilities, with_validation),
                       "Sequential::fit (validation_data): y holds 2 at row 2, column 0, outside [0, 1], the range of "
                       "binary_crossentropy's targets (probabilities; class indices need "
                       "sparse_categorical_crossentropy or one_hot)",
                       ValueError);
  CHECK(bitwise_equal(weights, model.get_weights()));
  CHECK(model.optimizer().iterations() == 0);
  // Soft labels in [0, 1] (label smoothing) are targets too.
  model.fit(x, probabilities, quiet<T>());

  Sequential<T> classifier(4);
  classifier.add(Dense<T>(6, 3, Activation::softmax));
  classifier.compile(CategoricalCrossentropy{}, SGD<T>{});
  Matrix<T> one_hot_y = Matrix<T>::Zero(20, 3);
  one_hot_y(7, 1) = T(-0.5);
  CHECK_THROWS_WITH_AS(classifier.evaluate(x, one_hot_y),
                       "Sequential::evaluate: y holds -0.5 at row 7, column 1, outside [0, 1], the range of "
                       "categorical_crossentropy's targets (probabilities; class indices need "
                       "sparse_categorical_crossentropy or one_hot)",
                       ValueError);
  // Regression losses take any finite target.
  Sequential<T> regression(5);
  regression.add(Dense<T>(6, 1));
  regression.compile(MeanSquaredError{}, SGD<T>{});
  CHECK_NOTHROW(regression.evaluate(x, labels));
}

TEST_CASE_TEMPLATE("sparse labels: fit on class indices equals fit on their one-hot rows, bit for bit", T, float,
                   double) {
  // Keras's sparse_categorical_crossentropy is categorical_crossentropy of
  // one_hot(labels); "accuracy" resolves to sparse categorical accuracy.
  const Matrix<T> x = random_matrix<T>(40, 6, 41);
  Matrix<T> labels(40, 1);
  Matrix<T> one_hot_y = Matrix<T>::Zero(40, 3);
  for (Index i = 0; i < 40; ++i) {
    labels(i, 0) = static_cast<T>((i * 7) % 3);
    one_hot_y(i, (i * 7) % 3) = 1;
  }
  for (bool from_logits : {false, true}) {
    const Activation output = from_logits ? Activation::linear : Activation::softmax;
    Sequential<T> sparse(5), dense(5);
    for (auto* model : {&sparse, &dense}) {
      model->add(Dense<T>(6, 8, Activation::relu));
      model->add(Dense<T>(8, 3, output));
    }
    sparse.compile(SparseCategoricalCrossentropy{from_logits}, Adam<T>{}, {Metric::accuracy});
    dense.compile(CategoricalCrossentropy{from_logits}, Adam<T>{}, {Metric::accuracy});
    FitOptions<T> options = quiet<T>(3, 16);
    options.validation_split = 0.25;
    const History a = sparse.fit(x, labels, options);
    const History b = dense.fit(x, one_hot_y, options);
    CHECK(bitwise_equal(sparse.get_weights(), dense.get_weights()));
    CHECK(a.loss() == b.loss());
    CHECK(a["accuracy"] == b["accuracy"]);
    CHECK(a.val_loss() == b.val_loss());
    CHECK(a["val_accuracy"] == b["val_accuracy"]);
    CHECK(sparse.evaluate(x, labels) == dense.evaluate(x, one_hot_y));
  }
}

TEST_CASE_TEMPLATE("sparse labels: one column of whole numbers from 0 to C - 1, else an error naming the value", T,
                   float, double) {
  const Matrix<T> x = random_matrix<T>(10, 6, 43);
  Sequential<T> model(6);
  model.add(Dense<T>(6, 4, Activation::softmax));
  model.compile(SparseCategoricalCrossentropy{}, SGD<T>{});
  const auto weights = model.get_weights();
  Matrix<T> labels = Matrix<T>::Zero(10, 1);
  labels(3, 0) = 4;
  CHECK_THROWS_WITH_AS(model.fit(x, labels, quiet<T>()),
                       "Sequential::fit: y holds 4 at row 3, column 0, expected a class index (a whole number in "
                       "[0, 3]) for sparse_categorical_crossentropy",
                       ValueError);
  labels(3, 0) = T(1.5);
  CHECK_THROWS_AS(model.train_on_batch(x, labels), ValueError);
  labels(3, 0) = -1;
  CHECK_THROWS_AS(model.evaluate(x, labels), ValueError);
  const Matrix<T> one_hot_y = Matrix<T>::Zero(10, 4);
  CHECK_THROWS_WITH_AS(model.fit(x, one_hot_y, quiet<T>()),
                       "Sequential::fit: y has 4 columns, expected 1 (a class index per sample, for "
                       "sparse_categorical_crossentropy; one-hot rows need categorical_crossentropy)",
                       ShapeError);
  CHECK(bitwise_equal(weights, model.get_weights()));
  CHECK(model.optimizer().iterations() == 0);
}

TEST_CASE("compile warns once when a from_logits loss follows a softmax or sigmoid output, as Keras 3") {
  std::ostringstream warnings;
  set_warning_stream(&warnings);
  const auto compile_with = [&](Activation last, const auto& loss) {
    warnings.str("");
    Sequential<float> model(1);
    model.add(Dense<float>(4, 3, last));
    model.compile(loss, SGD<float>{});
    return warnings.str();
  };
  CHECK(compile_with(Activation::softmax, CategoricalCrossentropy{true}) ==
        "minidl warning: Sequential::compile: categorical_crossentropy has from_logits = true, but the last layer, "
        "Dense 'dense', ends with a softmax activation: its outputs are probabilities, not logits. Was this "
        "intended? (use from_logits = false, or a linear last layer)\n");
  CHECK(compile_with(Activation::sigmoid, BinaryCrossentropy{true}).find("ends with a sigmoid activation") !=
        std::string::npos);
  CHECK(!compile_with(Activation::softmax, SparseCategoricalCrossentropy{true}).empty());
  // No warning: logits into a from_logits loss, probabilities into a probability loss, or an activation
  // the loss does not undo (Keras checks softmax for the categorical losses, sigmoid for the binary one).
  CHECK(compile_with(Activation::linear, CategoricalCrossentropy{true}).empty());
  CHECK(compile_with(Activation::softmax, CategoricalCrossentropy{}).empty());
  CHECK(compile_with(Activation::sigmoid, CategoricalCrossentropy{true}).empty());
  CHECK(compile_with(Activation::softmax, MeanSquaredError{}).empty());
  // A Softmax layer at the end counts too.
  warnings.str("");
  Sequential<float> layered(2);
  layered.add(Dense<float>(4, 3));
  layered.add(Softmax<float>());
  layered.compile(CategoricalCrossentropy{true}, SGD<float>{});
  CHECK(warnings.str().find("the last layer, Softmax 'softmax', ends with a softmax activation") != std::string::npos);
  // Silenced: nothing is written anywhere.
  warnings.str("");
  set_warning_stream(nullptr);
  Sequential<float> silent(3);
  silent.add(Dense<float>(4, 3, Activation::softmax));
  CHECK_NOTHROW(silent.compile(CategoricalCrossentropy{true}, SGD<float>{}));
  set_warning_stream(&std::cerr);
  CHECK(warnings.str().empty());
}
