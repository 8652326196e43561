#include <doctest/doctest.h>

#include "support.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <minidl/losses.hpp>
#include <minidl/random.hpp>
#include <string>

using minidl::Index;
using minidl::Matrix;

namespace {

using minidl::test::matrix;

using minidl::test::uniform;

// Central differences of loss(p) with respect to every element of p.
using LossFn = std::function<double(const Matrix<double>&)>;
Matrix<double> numeric_gradient(const LossFn& loss, Matrix<double> p, double eps = 1e-6) {
  Matrix<double> g(p.rows(), p.cols());
  for (Index i = 0; i < p.size(); ++i) {
    const double saved = p.data()[i];
    p.data()[i] = saved + eps;
    const double up = loss(p);
    p.data()[i] = saved - eps;
    const double down = loss(p);
    p.data()[i] = saved;
    g.data()[i] = (up - down) / (2 * eps);
  }
  return g;
}

// Largest |analytic − numeric| / max(1, |analytic|, |numeric|).
double gradient_error(const Matrix<double>& analytic, const Matrix<double>& numeric) {
  double worst = 0;
  for (Index i = 0; i < analytic.size(); ++i) {
    const double a = analytic.data()[i], n = numeric.data()[i];
    worst = std::max(worst, std::abs(a - n) / std::max({1.0, std::abs(a), std::abs(n)}));
  }
  return worst;
}

template <class Loss>
double check_gradient(const Loss& loss, const Matrix<double>& p, const Matrix<double>& t) {
  Matrix<double> analytic(p.rows(), p.cols());
  loss(p, t, &analytic);
  const auto numeric = numeric_gradient([&](const Matrix<double>& q) { return loss(q, t); }, p);
  return gradient_error(analytic, numeric);
}

template <class Scalar>
double tol() {
  return sizeof(Scalar) == sizeof(float) ? 1e-6 : 1e-12;
}

template <class Scalar>
void check_matrix(const Matrix<Scalar>& actual, const Matrix<double>& expected) {
  REQUIRE(actual.rows() == expected.rows());
  REQUIRE(actual.cols() == expected.cols());
  for (Index i = 0; i < actual.size(); ++i)
    CHECK(static_cast<double>(actual.data()[i]) == doctest::Approx(expected.data()[i]).epsilon(tol<Scalar>() * 10));
}

double sigmoid(double z) { return 1 / (1 + std::exp(-z)); }

}  // namespace

TEST_CASE_TEMPLATE("mean squared and mean absolute error on a hand-computed batch", Scalar, float, double) {
  // errors p − t = [[1, 0], [−2, 3]]
  const auto p = matrix<Scalar>(2, 2, {1, 2, 3, 4});
  const auto t = matrix<Scalar>(2, 2, {0, 2, 5, 1});
  Matrix<Scalar> grad(2, 2);

  // squares [[1, 0], [4, 9]]: row means 0.5 and 6.5, batch mean 3.5; dL/dp = 2e/4
  CHECK(static_cast<double>(minidl::MeanSquaredError{}(p, t, &grad)) == doctest::Approx(3.5).epsilon(tol<Scalar>()));
  check_matrix(grad, matrix<double>(2, 2, {0.5, 0, -1, 1.5}));

  // |e| = [[1, 0], [2, 3]]: row means 0.5 and 2.5, batch mean 1.5; dL/dp = sign(e)/4, 0 at e = 0
  CHECK(static_cast<double>(minidl::MeanAbsoluteError{}(p, t, &grad)) == doctest::Approx(1.5).epsilon(tol<Scalar>()));
  check_matrix(grad, matrix<double>(2, 2, {0.25, 0, -0.25, 0.25}));

  CHECK(std::string(minidl::MeanSquaredError{}.name()) == "mean_squared_error");
  CHECK(std::string(minidl::MeanAbsoluteError{}.name()) == "mean_absolute_error");
}

TEST_CASE_TEMPLATE("binary cross-entropy from probabilities and from logits, hand-computed", Scalar, float, double) {
  Matrix<Scalar> grad(2, 2);
  {
    // two samples, two outputs: mean over the outputs, then over the samples
    const auto p = matrix<Scalar>(2, 2, {0.9, 0.3, 0.2, 0.6});
    const auto t = matrix<Scalar>(2, 2, {1, 0, 0, 1});
    const double expected = ((-std::log(0.9) - std::log(0.7)) / 2 + (-std::log(0.8) - std::log(0.6)) / 2) / 2;
    CHECK(static_cast<double>(minidl::BinaryCrossentropy{}(p, t, &grad)) ==
          doctest::Approx(expected).epsilon(tol<Scalar>()));
    // dL/dp = (−t/p + (1 − t)/(1 − p)) / (N·C), N·C = 4
    check_matrix(grad, matrix<double>(2, 2, {-1 / 0.9 / 4, 1 / 0.7 / 4, 1 / 0.8 / 4, -1 / 0.6 / 4}));
  }
  {
    const auto z = matrix<Scalar>(2, 2, {2, -1, 0.5, -3});
    const auto t = matrix<Scalar>(2, 2, {1, 0, 0, 0.25});
    // naive −[t log σ(z) + (1 − t) log(1 − σ(z))], safe for these small logits
    auto naive = [](double zz, double tt) {
      return -(tt * std::log(sigmoid(zz)) + (1 - tt) * std::log(1 - sigmoid(zz)));
    };
    const double expected = (naive(2, 1) + naive(-1, 0) + naive(0.5, 0) + naive(-3, 0.25)) / 4;
    CHECK(static_cast<double>(minidl::BinaryCrossentropy{true}(z, t, &grad)) ==
          doctest::Approx(expected).epsilon(tol<Scalar>()));
    // dL/dz = (σ(z) − t) / (N·C)
    check_matrix(grad, matrix<double>(2, 2, {(sigmoid(2) - 1) / 4, sigmoid(-1) / 4,  //
                                             sigmoid(0.5) / 4, (sigmoid(-3) - 0.25) / 4}));
  }
  CHECK(std::string(minidl::BinaryCrossentropy{}.name()) == "binary_crossentropy");
}

TEST_CASE_TEMPLATE("categorical cross-entropy from probabilities and from logits, hand-computed", Scalar, float,
                   double) {
  Matrix<Scalar> grad(2, 3);
  {
    // row 1 sums to 1; row 2 sums to 4 and is renormalized to [0.25, 0.25, 0.5] as in Keras
    const auto p = matrix<Scalar>(2, 3, {0.2, 0.3, 0.5, 1, 1, 2});
    const auto t = matrix<Scalar>(2, 3, {0, 0, 1, 0, 1, 0});
    const double expected = (-std::log(0.5) - std::log(0.25)) / 2;
    CHECK(static_cast<double>(minidl::CategoricalCrossentropy{}(p, t, &grad)) ==
          doctest::Approx(expected).epsilon(tol<Scalar>()));
    // dℓ/dp_k = −t_k/p_k + Σt/S, then / N (N = 2)
    check_matrix(grad, matrix<double>(2, 3, {1.0 / 2, 1.0 / 2, (-1 / 0.5 + 1) / 2,  //
                                             1.0 / 4 / 2, (-1.0 + 1.0 / 4) / 2, 1.0 / 4 / 2}));
  }
  {
    const auto z = matrix<Scalar>(2, 3, {1, 2, 3, 0, 0, 0});
    const auto t = matrix<Scalar>(2, 3, {0, 0, 1, 0.5, 0.5, 0});
    const double s = std::exp(1) + std::exp(2) + std::exp(3);
    const double expected = (-std::log(std::exp(3) / s) - std::log(1.0 / 3)) / 2;
    CHECK(static_cast<double>(minidl::CategoricalCrossentropy{true}(z, t, &grad)) ==
          doctest::Approx(expected).epsilon(tol<Scalar>()));
    // dℓ/dz = softmax(z) − t, then / N
    check_matrix(grad, matrix<double>(2, 3, {std::exp(1) / s / 2, std::exp(2) / s / 2, (std::exp(3) / s - 1) / 2,
                                             (1.0 / 3 - 0.5) / 2, (1.0 / 3 - 0.5) / 2, 1.0 / 3 / 2}));
  }
  CHECK(std::string(minidl::CategoricalCrossentropy{}.name()) == "categorical_crossentropy");
}

TEST_CASE("every loss's gradient matches central differences (double)") {
  const auto pred = uniform(4, 3, 1, -2, 2);
  const auto prob = uniform(4, 3, 2, 0.05, 0.95);  // well inside the clipping bounds
  const auto soft = uniform(4, 3, 3, 0, 1);        // soft labels, rows not normalized
  Matrix<double> one_hot = Matrix<double>::Zero(4, 3);
  for (Index i = 0; i < 4; ++i) one_hot(i, (i * 2) % 3) = 1;

  CHECK(check_gradient(minidl::MeanSquaredError{}, pred, soft) < 1e-8);
  CHECK(check_gradient(minidl::MeanAbsoluteError{}, pred, soft) < 1e-8);
  CHECK(check_gradient(minidl::BinaryCrossentropy{}, prob, soft) < 1e-8);
  CHECK(check_gradient(minidl::BinaryCrossentropy{true}, pred, soft) < 1e-8);
  CHECK(check_gradient(minidl::CategoricalCrossentropy{}, prob, one_hot) < 1e-8);
  CHECK(check_gradient(minidl::CategoricalCrossentropy{}, prob, soft) < 1e-8);
  CHECK(check_gradient(minidl::CategoricalCrossentropy{true}, pred, one_hot) < 1e-8);
  CHECK(check_gradient(minidl::CategoricalCrossentropy{true}, pred, soft) < 1e-8);

  // Categorical from probabilities with one clipped column (q = 1e-9/S < ε): its
  // log term is constant, so p(1,2) acts only through the row sum S, which
  // rescales the unclipped q_j: dℓ/dp = (t_0 + t_1)/S, then / N.
  auto clipped = prob;
  clipped(1, 2) = 1e-9;
  Matrix<double> analytic(4, 3);
  minidl::CategoricalCrossentropy{}(clipped, soft, &analytic);
  const double row_sum = clipped.row(1).sum();
  CHECK(analytic(1, 2) == doctest::Approx((soft(1, 0) + soft(1, 1)) / row_sum / 4).epsilon(1e-12));
  analytic(1, 2) = 0;
  auto numeric = numeric_gradient([&](const Matrix<double>& q) { return minidl::CategoricalCrossentropy{}(q, soft); },
                                  clipped);
  numeric(1, 2) = 0;  // a step of 1e-6 from 1e-9 leaves the clipped region; compare the rest
  CHECK(gradient_error(analytic, numeric) < 1e-8);
}

TEST_CASE_TEMPLATE("losses stay finite for extreme logits and clipped probabilities", Scalar, float, double) {
  {
    // per element max(z,0) − z·t + log1p(exp(−|z|)): 0, 0, 1000, 1000
    const auto z = matrix<Scalar>(1, 4, {1000, -1000, 1000, -1000});
    const auto t = matrix<Scalar>(1, 4, {1, 0, 0, 1});
    Matrix<Scalar> grad(1, 4);
    CHECK(static_cast<double>(minidl::BinaryCrossentropy{true}(z, t, &grad)) == doctest::Approx(500));
    check_matrix(grad, matrix<double>(1, 4, {0, 0, 0.25, -0.25}));
  }
  {
    const auto z = matrix<Scalar>(2, 3, {1000, -1000, 0, 1000, -1000, 0});
    const auto t = matrix<Scalar>(2, 3, {0, 1, 0, 1, 0, 0});
    Matrix<Scalar> grad(2, 3);
    // row 1: lse ≈ 1000, true logit −1000 → 2000; row 2: the true class dominates → 0
    CHECK(static_cast<double>(minidl::CategoricalCrossentropy{true}(z, t, &grad)) == doctest::Approx(1000));
    check_matrix(grad, matrix<double>(2, 3, {0.5, -0.5, 0, 0, 0, 0}));
  }
  const double clipped_loss = -std::log(1e-7);  // ≈ 16.118
  {
    const auto p = matrix<Scalar>(1, 2, {0, 1});
    const auto t = matrix<Scalar>(1, 2, {1, 0});
    Matrix<Scalar> grad(1, 2);
    // q = [0, 1] is clipped to [ε, 1 − ε]: −log ε, and no gradient through either column
    CHECK(static_cast<double>(minidl::CategoricalCrossentropy{}(p, t, &grad)) ==
          doctest::Approx(clipped_loss).epsilon(1e-6));
    CHECK(grad(0, 0) == 0);
    CHECK(grad(0, 1) == 0);
  }
  {
    const auto p = matrix<Scalar>(1, 2, {0, 1});
    const auto t = matrix<Scalar>(1, 2, {1, 0});
    Matrix<Scalar> grad(1, 2);
    // −log ε for the first column; the second, −log(1 − (1 − ε)), rounds near −log ε in float
    const double loss = static_cast<double>(minidl::BinaryCrossentropy{}(p, t, &grad));
    CHECK(std::isfinite(loss));
    CHECK(loss > 15.9);
    CHECK(loss < 16.2);
    CHECK(grad(0, 0) == 0);
    CHECK(grad(0, 1) == 0);
    const auto only_first = matrix<Scalar>(1, 1, {0});
    const auto label = matrix<Scalar>(1, 1, {1});
    CHECK(static_cast<double>(minidl::BinaryCrossentropy{}(only_first, label)) ==
          doctest::Approx(clipped_loss).epsilon(1e-6));
  }
}

TEST_CASE_TEMPLATE("a loss sizes an empty gradient buffer itself", Scalar, float, double) {
  const auto p = matrix<Scalar>(1, 2, {1, 3});
  const auto t = matrix<Scalar>(1, 2, {0, 0});
  Matrix<Scalar> grad;
  minidl::MeanSquaredError{}(p, t, &grad);
  check_matrix(grad, matrix<double>(1, 2, {1, 3}));  // 2e/(N·C) = e
}

TEST_CASE("shape mismatches and empty batches are errors naming the loss") {
  const Matrix<double> p = Matrix<double>::Zero(3, 4);
  const Matrix<double> t = Matrix<double>::Zero(3, 2);
  Matrix<double> grad = Matrix<double>::Constant(3, 4, 7);
  CHECK_THROWS_WITH_AS(minidl::MeanSquaredError{}(p, t, &grad),
                       "MeanSquaredError: y_true is 3 x 2, expected 3 x 4 (the shape of y_pred)", minidl::ShapeError);
  CHECK((grad.array() == 7).all());  // a failed call leaves the gradient buffer untouched
  CHECK_THROWS_WITH_AS(minidl::MeanAbsoluteError{}(p, t),
                       "MeanAbsoluteError: y_true is 3 x 2, expected 3 x 4 (the shape of y_pred)", minidl::ShapeError);
  CHECK_THROWS_WITH_AS(minidl::BinaryCrossentropy{}(t, p),
                       "BinaryCrossentropy: y_true is 3 x 4, expected 3 x 2 (the shape of y_pred)", minidl::ShapeError);
  const Matrix<double> fewer = Matrix<double>::Zero(2, 4);
  CHECK_THROWS_WITH_AS(minidl::CategoricalCrossentropy{true}(p, fewer),
                       "CategoricalCrossentropy: y_true is 2 x 4, expected 3 x 4 (the shape of y_pred)",
                       minidl::ShapeError);
  const Matrix<double> empty(0, 4);
  CHECK_THROWS_WITH_AS(minidl::MeanSquaredError{}(empty, empty), "MeanSquaredError: got an empty batch (0 x 4)",
                       minidl::ValueError);
}

// ---- Huber, label smoothing, sparse labels (Keras 3's losses_test.py values) ----

TEST_CASE_TEMPLATE("Huber: Keras's docstring and test values, and the linear part beyond delta", Scalar, float,
                   double) {
  // keras.losses.huber docstring: 0.155.
  const auto t = matrix<Scalar>(2, 2, {0, 1, 0, 0});
  const auto p = matrix<Scalar>(2, 2, {0.6, 0.4, 0.4, 0.6});
  CHECK(static_cast<double>(minidl::Huber{}(p, t)) == doctest::Approx(0.155).epsilon(tol<Scalar>()));
  // HuberLossTest: every |e| <= 1, so Σ e²/2 over 6 values, / 6 = 0.625 / 6.
  const auto y_pred = matrix<Scalar>(2, 3, {0.9, 0.2, 0.2, 0.8, 0.4, 0.6});
  const auto y_true = matrix<Scalar>(2, 3, {1, 0, 1, 1, 0, 0});
  CHECK(static_cast<double>(minidl::Huber{}(y_pred, y_true)) == doctest::Approx(0.625 / 6).epsilon(tol<Scalar>()));
  // δ = 0.5: |e| = 0.8 and 0.6 are linear, δ|e| − δ²/2 = 0.275 and 0.175; the rest
  // quadratic, 0.125 in all.
  Matrix<Scalar> grad;
  CHECK(static_cast<double>(minidl::Huber{0.5}(y_pred, y_true, &grad)) ==
        doctest::Approx(0.575 / 6).epsilon(tol<Scalar>()));
  // dL/dp = clip(e, −δ, δ)/(N·C): e = −0.8 is clipped to −0.5.
  check_matrix(grad, matrix<double>(2, 3, {-0.1 / 6, 0.2 / 6, -0.5 / 6, -0.2 / 6, 0.4 / 6, 0.5 / 6}));
  CHECK(std::string(minidl::Huber{}.name()) == "huber_loss");
  CHECK_THROWS_WITH_AS(minidl::Huber{0.0}, "Huber: delta must be a finite number > 0, got 0", minidl::ValueError);
}

TEST_CASE_TEMPLATE("label smoothing: Keras's test values for binary and categorical cross-entropy", Scalar, float,
                   double) {
  // BinaryCrossentropyTest.test_label_smoothing: (10 + 5 s) / 3, to Keras's 3
  // places; exactly, each element adds log1p(e^−10) as well.
  const auto logits = matrix<Scalar>(1, 3, {10, -10, -10});
  const auto t = matrix<Scalar>(1, 3, {1, 0, 1});
  const double smoothed = static_cast<double>(minidl::BinaryCrossentropy{true, 0.1}(logits, t));
  CHECK(smoothed == doctest::Approx((10.0 + 5.0 * 0.1) / 3.0).epsilon(1e-3));
  CHECK(smoothed == doctest::Approx((10.0 + 5.0 * 0.1) / 3.0 + std::log1p(std::exp(-10.0))).epsilon(tol<Scalar>()));
  // CategoricalCrossentropyTest.test_label_smoothing: 400 s / 3.
  const auto big = matrix<Scalar>(1, 3, {100, -100, -100});
  const auto one_hot = matrix<Scalar>(1, 3, {1, 0, 0});
  CHECK(static_cast<double>(minidl::CategoricalCrossentropy{true, 0.1}(big, one_hot)) ==
        doctest::Approx(400.0 * 0.1 / 3.0).epsilon(tol<Scalar>()));
  // From probabilities: the smoothed target t' = t(1 − s) + s/2 (binary), by the formula.
  const auto p = matrix<Scalar>(1, 2, {0.8, 0.3});
  const auto bt = matrix<Scalar>(1, 2, {1, 0});
  // s = 0.1: the targets 1 and 0 become 0.95 and 0.05.
  const double expected =
      -((0.95 * std::log(0.8) + 0.05 * std::log(0.2)) + (0.05 * std::log(0.3) + 0.95 * std::log(0.7))) / 2;
  CHECK(static_cast<double>(minidl::BinaryCrossentropy{false, 0.1}(p, bt)) ==
        doctest::Approx(expected).epsilon(tol<Scalar>() * 10));
  // s = 0 is exactly the unsmoothed loss, bit for bit.
  CHECK(minidl::CategoricalCrossentropy{false, 0.0}(p, bt) == minidl::CategoricalCrossentropy{}(p, bt));
  CHECK_THROWS_WITH_AS(minidl::BinaryCrossentropy(false, 1.5),
                       "BinaryCrossentropy: label_smoothing must be in [0, 1], got 1.5", minidl::ValueError);
  CHECK_THROWS_WITH_AS(minidl::CategoricalCrossentropy(false, -0.1),
                       "CategoricalCrossentropy: label_smoothing must be in [0, 1], got -0.1", minidl::ValueError);
}

TEST_CASE_TEMPLATE("sparse categorical cross-entropy: Keras's test values, and equal to categorical on one-hot rows",
                   Scalar, float, double) {
  // SparseCategoricalCrossentropyTest.test_unweighted: 0.3239 and 0.0573 (to 3 places there).
  const auto labels = matrix<Scalar>(3, 1, {0, 1, 2});
  const auto probs = matrix<Scalar>(3, 3, {0.9, 0.05, 0.05, 0.5, 0.89, 0.6, 0.05, 0.01, 0.94});
  const double by_formula = -(std::log(0.9) + std::log(0.89 / 1.99) + std::log(0.94)) / 3;  // rows renormalized
  CHECK(static_cast<double>(minidl::SparseCategoricalCrossentropy{}(probs, labels)) ==
        doctest::Approx(by_formula).epsilon(tol<Scalar>() * 10));
  CHECK(static_cast<double>(minidl::SparseCategoricalCrossentropy{}(probs, labels)) ==
        doctest::Approx(0.3239).epsilon(1e-3));
  const auto logits = matrix<Scalar>(3, 3, {8, 1, 1, 0, 9, 1, 2, 3, 5});
  CHECK(static_cast<double>(minidl::SparseCategoricalCrossentropy{true}(logits, labels)) ==
        doctest::Approx(0.0573).epsilon(1e-3));
  // Row for row the categorical loss of e_k, value and gradient, bit for bit.
  const auto one_hot = matrix<Scalar>(3, 3, {1, 0, 0, 0, 1, 0, 0, 0, 1});
  for (bool from_logits : {false, true}) {
    const auto& p = from_logits ? logits : probs;
    Matrix<Scalar> sparse_grad, dense_grad;
    const Scalar sparse = minidl::SparseCategoricalCrossentropy{from_logits}(p, labels, &sparse_grad);
    const Scalar dense = minidl::CategoricalCrossentropy{from_logits}(p, one_hot, &dense_grad);
    CHECK(sparse == dense);
    CHECK((sparse_grad.array() == dense_grad.array()).all());
  }
}

TEST_CASE("sparse categorical cross-entropy: gradient by central differences, bad labels and shapes are errors") {
  const auto pred = uniform(4, 3, 1, -2, 2);
  const auto prob = uniform(4, 3, 2, 0.05, 0.95);
  const auto labels = matrix<double>(4, 1, {2, 0, 1, 2});
  CHECK(check_gradient(minidl::SparseCategoricalCrossentropy{}, prob, labels) < 1e-8);
  CHECK(check_gradient(minidl::SparseCategoricalCrossentropy{true}, pred, labels) < 1e-8);
  CHECK(check_gradient(minidl::Huber{0.7}, pred, uniform(4, 3, 5, -2, 2)) < 1e-8);
  CHECK(check_gradient(minidl::BinaryCrossentropy{false, 0.2}, prob, uniform(4, 3, 3, 0, 1)) < 1e-8);
  CHECK(check_gradient(minidl::BinaryCrossentropy{true, 0.2}, pred, uniform(4, 3, 3, 0, 1)) < 1e-8);
  CHECK(check_gradient(minidl::CategoricalCrossentropy{false, 0.2}, prob, uniform(4, 3, 3, 0, 1)) < 1e-8);
  CHECK(check_gradient(minidl::CategoricalCrossentropy{true, 0.2}, pred, uniform(4, 3, 3, 0, 1)) < 1e-8);

  const minidl::SparseCategoricalCrossentropy loss;
  CHECK_THROWS_WITH_AS(loss(prob, matrix<double>(4, 1, {2, 0, 3, 2})),
                       "SparseCategoricalCrossentropy: y_true holds 3 at row 2, expected a class index (a whole "
                       "number in [0, 2])",
                       minidl::ValueError);
  CHECK_THROWS_WITH_AS(loss(prob, matrix<double>(4, 1, {2, 0.5, 1, 2})),
                       "SparseCategoricalCrossentropy: y_true holds 0.5 at row 1, expected a class index (a whole "
                       "number in [0, 2])",
                       minidl::ValueError);
  CHECK_THROWS_AS(loss(prob, matrix<double>(4, 1, {2, -1, 1, 2})), minidl::ValueError);
  CHECK_THROWS_WITH_AS(loss(prob, prob),
                       "SparseCategoricalCrossentropy: y_true is 4 x 3, expected 4 x 1 (a class index per row of "
                       "y_pred)",
                       minidl::ShapeError);
}

// ---- sample weights: Keras's "sum_over_batch_size", Σ w_i ℓ_i / N ----

TEST_CASE_TEMPLATE("sample weights: Keras's weighted values, divided by N (not by the sum of the weights)", Scalar,
                   float, double) {
  // MeanSquaredErrorTest.test_sample_weighted: 767.8 / 6.
  const auto y_true = matrix<Scalar>(2, 3, {1, 9, 2, -5, -2, 6});
  const auto y_pred = matrix<Scalar>(2, 3, {4, 8, 12, 8, 1, 3});
  minidl::Vector<Scalar> w(2);
  w << Scalar(1.2), Scalar(3.4);
  CHECK(static_cast<double>(minidl::MeanSquaredError{}(y_pred, y_true, nullptr, &w)) ==
        doctest::Approx(767.8 / 6).epsilon(tol<Scalar>() * 10));
  // MeanAbsoluteErrorTest.test_sample_weighted: 81.4 / 6.
  CHECK(static_cast<double>(minidl::MeanAbsoluteError{}(y_pred, y_true, nullptr, &w)) ==
        doctest::Approx(81.4 / 6).epsilon(tol<Scalar>() * 10));
  // Weights of 1 are the unweighted loss, value and gradient bit for bit.
  const minidl::Vector<Scalar> ones = minidl::Vector<Scalar>::Ones(2);
  Matrix<Scalar> g1, g2;
  CHECK(minidl::Huber{}(y_pred, y_true, &g1, &ones) == minidl::Huber{}(y_pred, y_true, &g2));
  CHECK((g1.array() == g2.array()).all());
}

TEST_CASE("sample weights: every loss's weighted gradient matches central differences, bad weights are errors") {
  const auto pred = uniform(4, 3, 1, -2, 2);
  const auto prob = uniform(4, 3, 2, 0.05, 0.95);
  const auto soft = uniform(4, 3, 3, 0, 1);
  const auto labels = matrix<double>(4, 1, {2, 0, 1, 2});
  minidl::Vector<double> w(4);
  w << 0.5, 2.0, 0.0, 1.25;
  const auto weighted = [&](const auto& loss, const Matrix<double>& p, const Matrix<double>& t) {
    Matrix<double> analytic;
    loss(p, t, &analytic, &w);
    return gradient_error(analytic, numeric_gradient([&](const Matrix<double>& q) { return loss(q, t, nullptr, &w); },
                                                     p));
  };
  CHECK(weighted(minidl::MeanSquaredError{}, pred, soft) < 1e-8);
  CHECK(weighted(minidl::MeanAbsoluteError{}, pred, soft) < 1e-8);
  CHECK(weighted(minidl::Huber{0.5}, pred, soft) < 1e-8);
  CHECK(weighted(minidl::BinaryCrossentropy{false, 0.1}, prob, soft) < 1e-8);
  CHECK(weighted(minidl::BinaryCrossentropy{true}, pred, soft) < 1e-8);
  CHECK(weighted(minidl::CategoricalCrossentropy{}, prob, soft) < 1e-8);
  CHECK(weighted(minidl::CategoricalCrossentropy{true, 0.2}, pred, soft) < 1e-8);
  CHECK(weighted(minidl::SparseCategoricalCrossentropy{}, prob, labels) < 1e-8);
  CHECK(weighted(minidl::SparseCategoricalCrossentropy{true}, pred, labels) < 1e-8);

  const minidl::MeanSquaredError mse;
  minidl::Vector<double> short_w = minidl::Vector<double>::Ones(3);
  CHECK_THROWS_WITH_AS(mse(pred, soft, nullptr, &short_w),
                       "MeanSquaredError: sample_weight has 3 values, expected 4 (one per sample)",
                       minidl::ShapeError);
  minidl::Vector<double> negative = w;
  negative(1) = -1;
  CHECK_THROWS_WITH_AS(mse(pred, soft, nullptr, &negative),
                       "MeanSquaredError: sample_weight holds -1 at index 1, expected a finite weight >= 0",
                       minidl::ValueError);
  negative(1) = std::nan("");
  CHECK_THROWS_AS(mse(pred, soft, nullptr, &negative), minidl::ValueError);
}
