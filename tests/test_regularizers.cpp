// L1, L2 and L1L2 regularizers, as Keras 3: the penalties against Keras's
// formulas (regularizers_test.py) and its documented Dense example, their
// gradients against finite differences of the whole model's loss, their
// place in every loss the model reports (fit, train_on_batch, evaluate,
// validation: so they are no part of the fit/evaluate gap), frozen layers'
// constant term, saving, and the errors.
#include <doctest/doctest.h>

#include <cmath>
#include <minidl/io.hpp>
#include <minidl/minidl.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "support.hpp"

using namespace minidl;
using regularizers::L1;
using regularizers::L1L2;
using regularizers::L2;

namespace {

using test::quiet;

/// Dense(tanh, kernel L1L2, bias L2, activity L1L2) -> BatchNorm(γ L2, β L1)
/// -> Dense(kernel L2, activity L2): every kind of penalty, and a layer whose
/// training phase differs from its inference phase.
template <class Scalar>
Sequential<Scalar> regularized_model() {
  Sequential<Scalar> model(5);
  DenseOptions hidden;
  hidden.kernel_regularizer = L1L2(0.01, 0.02);
  hidden.bias_regularizer = L2(0.03);
  hidden.activity_regularizer = L1L2(0.004, 0.005);
  model.add(Dense<Scalar>(3, 4, Activation::tanh, hidden));
  BatchNormOptions bn;
  bn.gamma_regularizer = L2(0.05);
  bn.beta_regularizer = L1(0.06);
  model.add(BatchNorm<Scalar>(bn));
  DenseOptions out;
  out.kernel_regularizer = L2(0.07);
  out.activity_regularizer = L2(0.008);
  model.add(Dense<Scalar>(2, Activation::linear, out));
  model.compile(MeanSquaredError{}, SGD<Scalar>{Scalar(0.05)});
  // Weights away from 0 (the kink of |x|) and from BatchNorm's defaults.
  std::vector<Vector<Scalar>> weights = model.get_weights();
  Rng rng(9);
  for (auto& w : weights)
    for (Index i = 0; i < w.size(); ++i) w[i] += static_cast<Scalar>(rng.uniform(0.1, 0.5));
  model.set_weights(weights);
  return model;
}

double sum_abs(const Matrix<double>& m) { return m.array().abs().sum(); }
double sum_sq(const Matrix<double>& m) { return m.array().square().sum(); }

}  // namespace

TEST_CASE("regularizers compute Keras's penalties: l1·Σ|x|, l2·Σx², both for L1L2 (regularizers_test)") {
  const Matrix<double> x = test::uniform(4, 4, 3, 0, 1);  // np.random.random((4, 4))
  CHECK(L1(0.1).penalty(x) == doctest::Approx(0.1 * sum_abs(x)).epsilon(1e-15));
  CHECK(L2(0.1).penalty(x) == doctest::Approx(0.1 * sum_sq(x)).epsilon(1e-15));
  CHECK(L1L2(0.1, 0.2).penalty(x) == doctest::Approx(0.1 * sum_abs(x) + 0.2 * sum_sq(x)).epsilon(1e-15));
  CHECK(L1(0.1).penalty(Matrix<double>::Zero(4, 4)) == 0.0);  // test_l1_with_zero_weights
  const Matrix<float> xf = x.cast<float>();
  CHECK(L1L2(0.1, 0.2).penalty(xf) == doctest::Approx(0.1 * sum_abs(x) + 0.2 * sum_sq(x)).epsilon(1e-6));
  // Keras's defaults: L1() and L2() are 0.01, L1L2() is 0 and 0.
  CHECK(L1().l1() == 0.01);
  CHECK(L2().l2() == 0.01);
  CHECK((L1L2().l1() == 0 && L1L2().l2() == 0));
  // A factor of 0 leaves its term out, as Keras: 0·inf would be NaN.
  Matrix<double> inf = Matrix<double>::Constant(1, 2, std::numeric_limits<double>::infinity());
  CHECK(std::isinf(L1L2(0.0, 0.1).penalty(inf)));
}

TEST_CASE("regularizer gradients: l1·sign(x) + 2·l2·x, 0 at x = 0 for L1") {
  const Matrix<double> x = test::matrix<double>(1, 4, {-2, -0.5, 0, 3});
  Matrix<double> g = Matrix<double>::Constant(1, 4, 1.0);
  L1L2(0.1, 0.2).add_gradient(x, g, 0.5);
  const Matrix<double> expected =
      test::matrix<double>(1, 4, {1 + 0.5 * (-0.1 - 0.8), 1 + 0.5 * (-0.1 - 0.2), 1, 1 + 0.5 * (0.1 + 1.2)});
  CHECK((g - expected).cwiseAbs().maxCoeff() < 1e-15);
}

TEST_CASE("regularizers reject factors that are negative, NaN or infinite, naming the factor (validate_float_arg)") {
  for (double bad : {-0.1, std::nan(""), std::numeric_limits<double>::infinity()}) {
    CHECK_THROWS_WITH_AS(L1(bad), doctest::Contains("l1 must be a finite number >= 0"), ValueError);
    CHECK_THROWS_WITH_AS(L2(bad), doctest::Contains("l2 must be a finite number >= 0"), ValueError);
    CHECK_THROWS_WITH_AS(L1L2(0.1, bad), doctest::Contains("l2 must be a finite number >= 0"), ValueError);
  }
  CHECK_THROWS_WITH_AS(Regularizer(Regularizer::Kind::L1, 0.1, 0.2), doctest::Contains("use L1L2 for both"),
                       ValueError);
}

TEST_CASE("a regularizer's text reads back as the same regularizer, and other text is an error") {
  for (const Regularizer& r : {L1(0.1), L2(1e-5), L1L2(0.01, 0.3), L1L2(), L2(1.0 / 3)}) {
    CAPTURE(r.str());
    CHECK(Regularizer::parse(r.str()) == r);
  }
  CHECK(L1L2(0.01, 0.3).str() == "L1L2(l1=0.01, l2=0.3)");
  CHECK(L2(0.01).str() == "L2(l2=0.01)");
  for (const char* bad : {"", "L2", "L2(0.01)", "L2(l2=0.01", "L2(l2=0.01) ", "L3(l3=1)", "L1(l1=-1)", "L2(l2=x)"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(Regularizer::parse(bad), ValueError);
  }
}

TEST_CASE_TEMPLATE("Keras's documented example: kernel L1(0.01) adds 0.25, activity L2(0.01) adds 5.0 (÷ batch 5)", T,
                   float, double) {
  // keras.Regularizer's docstring: Dense(5, kernel_initializer='ones', kernel_regularizer=L1(0.01),
  // activity_regularizer=L2(0.01)) on ones((5, 5)) * 2 gives sum(layer.losses) = 5.25.
  Sequential<T> model;
  DenseOptions options;
  options.kernel_regularizer = L1(0.01);
  options.activity_regularizer = L2(0.01);
  auto& dense = model.add(Dense<T>(5, 5, Activation::linear, options));
  dense.set_kernel(Matrix<T>::Ones(5, 5));
  model.compile(MeanSquaredError{}, SGD<T>{T(0.01)});
  const Matrix<T> x = Matrix<T>::Constant(5, 5, T(2));
  const Matrix<T> y = Matrix<T>::Constant(5, 5, T(10));  // the outputs: the data loss is 0
  CHECK(model.regularization_loss() == doctest::Approx(0.25).epsilon(1e-6));
  CHECK(model.evaluate(x, y) == doctest::Approx(5.25).epsilon(1e-6));
  CHECK(model.test_on_batch(x, y) == doctest::Approx(5.25).epsilon(1e-6));
  CHECK(model.train_on_batch(x, y) == doctest::Approx(5.25).epsilon(1e-6));  // before the update
  // The update followed the penalties' gradient alone (the data loss was 0 with gradient 0):
  // dK = l1·sign(K) + Σ_rows xᵀ·(2·l2·y/5) = 0.01 + 5·2·(0.02·10/5) = 0.41 per entry.
  CHECK(dense.kernel()(0, 0) == doctest::Approx(1 - 0.01 * 0.41).epsilon(1e-6));
  CHECK(dense.bias()(0) == doctest::Approx(-0.01 * 5 * (0.02 * 10 / 5)).epsilon(1e-5));
}

TEST_CASE("the gradient of every penalty matches finite differences of the model's whole loss (double)") {
  Sequential<double> model = regularized_model<double>();
  const Matrix<double> x = test::uniform(6, 3, 11);
  const Matrix<double> y = test::uniform(6, 2, 12);
  const std::vector<Phase> training(model.size(), Phase::training);

  // Analytic: one SGD step on a copy leaves each layer's gradient (data loss + penalties) in its buffers.
  Sequential<double> probe = model.clone();
  probe.train_on_batch(x, y);
  std::vector<Vector<double>> analytic;
  for (std::size_t i = 0; i < probe.size(); ++i)
    for (const auto& p : probe.layer(i).parameters()) analytic.emplace_back(p.gradient());

  // Numeric: the training-phase loss (with every penalty) at weights ± ε, on fresh copies.
  const std::vector<Vector<double>> weights = model.get_weights();
  const auto loss_at = [&](std::size_t tensor, Index k, double delta) {
    Sequential<double> copy = model.clone();
    std::vector<Vector<double>> w = weights;
    w[tensor][k] += delta;
    copy.set_weights(w);
    return static_cast<double>(copy.loss_in_phases(x, y, training, 6));
  };
  // get_weights order: kernel, bias | gamma, beta, moving_mean, moving_variance | kernel, bias.
  const std::vector<std::size_t> trainable{0, 1, 2, 3, 6, 7};
  REQUIRE(analytic.size() == trainable.size());
  const double eps = 1e-6;
  double worst = 0;
  for (std::size_t t = 0; t < trainable.size(); ++t)
    for (Index k = 0; k < weights[trainable[t]].size(); ++k) {
      const double numeric = (loss_at(trainable[t], k, eps) - loss_at(trainable[t], k, -eps)) / (2 * eps);
      worst = std::max(worst, std::abs(numeric - analytic[t][k]) / std::max(1.0, std::abs(numeric)));
    }
  CHECK(worst < 1e-7);

  // The penalties' own share of the gradient is not negligible: without them it differs.
  Sequential<double> plain(5);
  plain.add(Dense<double>(3, 4, Activation::tanh));
  plain.add(BatchNorm<double>());
  plain.add(Dense<double>(2));
  plain.compile(MeanSquaredError{}, SGD<double>{0.05});
  plain.set_weights(weights);
  plain.train_on_batch(x, y);
  const Vector<double> plain_kernel = plain.layer(0).parameters()[0].gradient();
  CHECK((plain_kernel - analytic[0]).cwiseAbs().maxCoeff() > 1e-3);
}

TEST_CASE_TEMPLATE("every loss the model reports holds the same penalties: fit's, train_on_batch's, evaluate's, "
                   "val_loss", T, float, double) {
  // Without Dropout or batch statistics (BatchNorm frozen with the moving-statistics policy) the two phases
  // compute the same function: a full-batch fit's loss then equals evaluate before the step, and val_loss
  // equals evaluate after it. The regularizers add no gap.
  Sequential<T> model = regularized_model<T>();
  model.layer(1).set_frozen(true);
  model.compile(MeanSquaredError{}, SGD<T>{T(0.05)});
  const Matrix<T> x = test::uniform<T>(8, 3, 21);
  const Matrix<T> y = test::uniform<T>(8, 2, 22);
  const T before = model.evaluate(x, y, 8);
  FitOptions<T> options = quiet<T>();
  options.epochs = 1;
  options.batch_size = 8;
  options.shuffle = false;
  options.validation_data = ValidationData<T>(x, y);
  options.validation_batch_size = 8;
  const History history = model.fit(x, y, options);
  CHECK(history.loss().back() == doctest::Approx(static_cast<double>(before)).epsilon(1e-6));
  CHECK(history.val_loss().back() == static_cast<double>(model.evaluate(x, y, 8)));
  // And the penalties are in it: the same weights without regularizers give a smaller evaluate.
  Sequential<T> plain(5);
  plain.add(Dense<T>(3, 4, Activation::tanh));
  plain.add(BatchNorm<T>());
  plain.add(Dense<T>(2));
  plain.layer(1).set_frozen(true);
  plain.compile(MeanSquaredError{}, SGD<T>{T(0.05)});
  plain.set_weights(model.get_weights());
  const T penalties = model.evaluate(x, y, 8) - plain.evaluate(x, y, 8);
  CHECK(penalties > model.regularization_loss());  // the weights' and the activity penalties
}

TEST_CASE_TEMPLATE("a frozen layer's penalty stays in the loss, constant, its weights do not move", T, float,
                   double) {
  Sequential<T> model = regularized_model<T>();
  model.layer(0).set_frozen(true);
  model.compile(MeanSquaredError{}, SGD<T>{T(0.05)});
  const Matrix<T> kernel = static_cast<Dense<T>&>(model.layer(0)).kernel();
  const T frozen_penalty = L1L2(0.01, 0.02).penalty(kernel) +
                           L2(0.03).penalty(static_cast<Dense<T>&>(model.layer(0)).bias());
  const Matrix<T> x = test::uniform<T>(16, 3, 31);
  const Matrix<T> y = test::uniform<T>(16, 2, 32);
  FitOptions<T> options = quiet<T>();
  options.epochs = 3;
  options.batch_size = 4;
  model.fit(x, y, options);
  CHECK((static_cast<Dense<T>&>(model.layer(0)).kernel().array() == kernel.array()).all());
  // regularization_loss() = the frozen layer's constant term + the trained layers' terms.
  auto& bn = static_cast<BatchNorm<T>&>(model.layer(1));
  auto& top = static_cast<Dense<T>&>(model.layer(2));
  const T trained = L2(0.05).penalty(bn.gamma()) + L1(0.06).penalty(bn.beta()) + L2(0.07).penalty(top.kernel());
  CHECK(model.regularization_loss() == doctest::Approx(static_cast<double>(frozen_penalty + trained)).epsilon(1e-6));
}

TEST_CASE("regularizers are saved with the model, on every layer type, and load back") {
  test::TempDir dir;
  Sequential<double> model = regularized_model<double>();
  model.layer(1).set_activity_regularizer(L1(0.002));  // any layer can have one
  save_model(model, dir.path + "/model.safetensors");
  Sequential<double> loaded = load_model<double>(dir.path + "/model.safetensors");
  loaded.compile(MeanSquaredError{}, SGD<double>{0.05});
  for (std::size_t i = 0; i < model.size(); ++i) {
    CAPTURE(i);
    CHECK(loaded.layer(i).activity_regularizer() == model.layer(i).activity_regularizer());
    for (const char* tensor : {"kernel", "bias", "gamma", "beta"}) {
      const Regularizer* a = model.layer(i).weight_regularizer(tensor);
      const Regularizer* b = loaded.layer(i).weight_regularizer(tensor);
      CHECK((a == nullptr) == (b == nullptr));
      if (a && b) CHECK(*a == *b);
    }
  }
  const Matrix<double> x = test::uniform(5, 3, 41), y = test::uniform(5, 2, 42);
  CHECK(loaded.evaluate(x, y) == model.evaluate(x, y));
}

TEST_CASE("a layer's config holds its regularizers, a config without them (an older file) means none") {
  DenseOptions options;
  options.kernel_regularizer = L2(0.5);
  const LayerConfig config = Dense<float>(3, 2, Activation::relu, options).config();
  CHECK(config.string("kernel_regularizer") == "L2(l2=0.5)");
  CHECK(std::holds_alternative<std::nullptr_t>(config.at("bias_regularizer")));
  LayerConfig old;
  for (const auto& [key, value] : config.fields())
    if (key.find("regularizer") == std::string::npos) old.set(key, value);
  const Dense<float> from_old = Dense<float>::from_config(old);
  CHECK(from_old.weight_regularizer("kernel") == nullptr);
  LayerConfig bad = config;
  bad.set("kernel_regularizer", "L2(0.5)");
  CHECK_THROWS_WITH_AS(Dense<float>::from_config(bad), doctest::Contains("field 'kernel_regularizer'"), ValueError);
}

TEST_CASE("a bias regularizer without a bias is an error naming the layer type") {
  DenseOptions options;
  options.use_bias = false;
  options.bias_regularizer = L2(0.1);
  CHECK_THROWS_WITH_AS(Dense<float>(3, 2, Activation::linear, options),
                       doctest::Contains("Dense: bias_regularizer L2(l2=0.1) given, but use_bias is false"),
                       ValueError);
  Conv2DOptions conv;
  conv.use_bias = false;
  conv.bias_regularizer = L1(0.1);
  CHECK_THROWS_WITH_AS(Conv2D<float>(2, 3, conv), doctest::Contains("Conv2D: bias_regularizer"), ValueError);
}

TEST_CASE("Conv2D's kernel regularizer: the penalty of its (kh, kw, C, F) kernel is in the loss") {
  Sequential<double> model(3);
  Conv2DOptions conv;
  conv.kernel_regularizer = L2(0.1);
  conv.activity_regularizer = L1(0.01);
  auto& layer = model.add(Conv2D<double>(Shape{5, 5, 2}, 3, 3, conv));
  model.add(Flatten<double>());
  model.compile(MeanSquaredError{}, SGD<double>{0.01});
  CHECK(model.regularization_loss() == doctest::Approx(0.1 * sum_sq(layer.kernel())).epsilon(1e-14));
  const Matrix<double> x = test::uniform(4, 50, 51);
  const Matrix<double> y = model.predict(x);  // data loss 0: the loss is the penalties
  CHECK(model.evaluate(x, y) == doctest::Approx(0.1 * sum_sq(layer.kernel()) + 0.01 * sum_abs(y) / 4).epsilon(1e-12));
}
