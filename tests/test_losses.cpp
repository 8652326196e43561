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
