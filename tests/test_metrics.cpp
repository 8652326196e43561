#include <doctest/doctest.h>

#include "support.hpp"

#include <minidl/metrics.hpp>
#include <string>

using minidl::Index;
using minidl::Matrix;
using minidl::Metric;

namespace {

using minidl::test::matrix;

}  // namespace

TEST_CASE("metric names are the Keras History keys") {
  CHECK(std::string(minidl::metric_name(Metric::accuracy)) == "accuracy");
  CHECK(std::string(minidl::metric_name(Metric::mae)) == "mae");
}

TEST_CASE_TEMPLATE("accuracy with one output column is Keras binary accuracy", Scalar, float, double) {
  // thresholded at 0.5 (strictly greater): [1, 0, 0, 1, 1]
  const auto p = matrix<Scalar>(5, 1, {0.7, 0.5, 0.2, 0.9, 0.9});
  // matches:                    yes, no, yes, no, no (a soft label 0.7 never equals 0 or 1)
  const auto t = matrix<Scalar>(5, 1, {1, 1, 0, 0, 0.7});
  CHECK(minidl::metric_value(Metric::accuracy, p, t) == doctest::Approx(2.0 / 5));
  const auto all_right = matrix<Scalar>(5, 1, {1, 0, 0, 1, 1});
  CHECK(minidl::metric_value(Metric::accuracy, p, all_right) == Scalar(1));
}

TEST_CASE_TEMPLATE("accuracy with several columns compares argmaxes, ties to the first index", Scalar, float, double) {
  const auto p = matrix<Scalar>(4, 3, {0.1, 0.6, 0.3,    // argmax 1
                                       0.4, 0.4, 0.2,    // tie: argmax 0
                                       0.2, 0.3, 0.5,    // argmax 2
                                       0.5, 0.2, 0.5});  // tie: argmax 0
  const auto t = matrix<Scalar>(4, 3, {0, 1, 0,   // 1: match
                                       1, 0, 0,   // 0: match (a last-index tie rule would say 1)
                                       1, 0, 0,   // 0: no match
                                       1, 0, 0}); // 0: match (a last-index tie rule would say 2)
  CHECK(minidl::metric_value(Metric::accuracy, p, t) == doctest::Approx(3.0 / 4));
  // ties in y_true go to the first index as well
  const auto tied_labels = matrix<Scalar>(4, 3, {0, 1, 1, 0.5, 0.5, 0, 1, 1, 1, 0, 0, 0});
  // argmax t: 1, 0, 0, 0 against argmax p: 1, 0, 2, 0
  CHECK(minidl::metric_value(Metric::accuracy, p, tied_labels) == doctest::Approx(3.0 / 4));
}

TEST_CASE_TEMPLATE("mae is the mean absolute error over outputs and samples", Scalar, float, double) {
  // |p − t| = [[1, 0], [2, 3]]: (0.5 + 2.5) / 2
  const auto p = matrix<Scalar>(2, 2, {1, 2, 3, 4});
  const auto t = matrix<Scalar>(2, 2, {0, 2, 5, 1});
  CHECK(minidl::metric_value(Metric::mae, p, t) == doctest::Approx(1.5));
}

TEST_CASE("metric shape mismatches name the metric") {
  const Matrix<double> p = Matrix<double>::Zero(3, 2);
  const Matrix<double> t = Matrix<double>::Zero(3, 1);
  const Matrix<double> wide = Matrix<double>::Zero(3, 3);
  CHECK_THROWS_WITH_AS(minidl::metric_value(Metric::accuracy, p, wide),
                       "metric 'accuracy': y_true is 3 x 3, expected 3 x 2 (the shape of y_pred)", minidl::ShapeError);
  CHECK_THROWS_WITH_AS(minidl::metric_value(Metric::sparse_categorical_accuracy, p, wide),
                       "metric 'sparse_categorical_accuracy': y_true is 3 x 3, expected 3 x 1 (a class index per row "
                       "of y_pred)",
                       minidl::ShapeError);
  CHECK_THROWS_WITH_AS(minidl::metric_value(Metric::mae, t, p),
                       "metric 'mae': y_true is 3 x 2, expected 3 x 1 (the shape of y_pred)", minidl::ShapeError);
  const Matrix<double> empty(0, 2);
  CHECK_THROWS_AS(minidl::metric_value(Metric::accuracy, empty, empty), minidl::ValueError);
}

// ---- sparse, top-k, mse, custom (values from Keras 3's accuracy_metrics_test.py) ----

TEST_CASE_TEMPLATE("sparse categorical accuracy, and accuracy resolving to it for one label column", Scalar, float,
                   double) {
  // SparseCategoricalAccuracyTest.test_unweighted: 0.5.
  const auto labels = matrix<Scalar>(2, 1, {2, 1});
  const auto p = matrix<Scalar>(2, 3, {0.1, 0.6, 0.3, 0.05, 0.95, 0});
  CHECK(minidl::metric_value(Metric::sparse_categorical_accuracy, p, labels) == Scalar(0.5));
  CHECK(minidl::metric_value(Metric::accuracy, p, labels) == Scalar(0.5));  // Keras's "accuracy" resolution
  // A label that is not a class index never matches (the loss rejects it in fit).
  CHECK(minidl::metric_value(Metric::sparse_categorical_accuracy, p, matrix<Scalar>(2, 1, {7, 1})) == Scalar(0.5));
}

TEST_CASE_TEMPLATE("top-k categorical accuracy: Keras's test values and its in_top_k tie rule", Scalar, float,
                   double) {
  // TopKCategoricalAccuracyTest / SparseTopKCategoricalAccuracyTest.test_unweighted, k = 1: 0.5.
  const auto t = matrix<Scalar>(2, 3, {0, 0, 1, 0, 1, 0});
  const auto labels = matrix<Scalar>(2, 1, {2, 1});
  const auto p = matrix<Scalar>(2, 3, {0.1, 0.9, 0.8, 0.05, 0.95, 0});
  CHECK(minidl::metric_value(Metric::top_k_categorical_accuracy(1), p, t) == Scalar(0.5));
  CHECK(minidl::metric_value(Metric::sparse_top_k_categorical_accuracy(1), p, labels) == Scalar(0.5));
  // k = 2: class 2 (0.8) is second: both rows hit.
  CHECK(minidl::metric_value(Metric::top_k_categorical_accuracy(2), p, t) == Scalar(1));
  // Ties at the boundary count as in (rank = 1 + number strictly larger), unlike argmax accuracy.
  const auto tied = matrix<Scalar>(1, 3, {0.4, 0.4, 0.2});
  const auto second = matrix<Scalar>(1, 3, {0, 1, 0});
  CHECK(minidl::metric_value(Metric::top_k_categorical_accuracy(1), tied, second) == Scalar(1));
  CHECK(minidl::metric_value(Metric::categorical_accuracy, tied, second) == Scalar(0));
  // A NaN prediction of the true class is never in the top k (Keras's in_top_k).
  const auto nan = matrix<Scalar>(1, 3, {0.4, std::nan(""), 0.2});
  CHECK(minidl::metric_value(Metric::top_k_categorical_accuracy(3), nan, second) == Scalar(0));
  CHECK(metric_name(Metric::top_k_categorical_accuracy()) == "top_k_categorical_accuracy");
  CHECK(Metric::top_k_categorical_accuracy().k() == 5);  // Keras's default
  CHECK_THROWS_WITH_AS(Metric::top_k_categorical_accuracy(0),
                       "Metric::top_k_categorical_accuracy: k must be >= 1, got 0",
                       minidl::ValueError);
}

TEST_CASE_TEMPLATE("mse is the mean squared error over outputs and samples", Scalar, float, double) {
  // (p − t)² = [[1, 0], [4, 9]]: (0.5 + 6.5) / 2
  const auto p = matrix<Scalar>(2, 2, {1, 2, 3, 4});
  const auto t = matrix<Scalar>(2, 2, {0, 2, 5, 1});
  CHECK(minidl::metric_value(Metric::mse, p, t) == doctest::Approx(3.5));
  CHECK(metric_name(Metric::mse) == "mse");
}

TEST_CASE_TEMPLATE("a custom metric: fn(y_true, y_pred) per sample, averaged, Keras's argument order", Scalar, float,
                   double) {
  // The largest error of each row: [1, 3] → mean 2. Signed, to tell the argument order apart: y_true − y_pred.
  const Metric worst = Metric::custom("worst", [](const auto& y_true, const auto& y_pred) {
    return (y_true - y_pred).rowwise().maxCoeff();
  });
  const auto p = matrix<Scalar>(2, 2, {1, 2, 3, 4});
  const auto t = matrix<Scalar>(2, 2, {2, 2, 6, 1});  // y_true − y_pred = [[1, 0], [3, −3]]
  CHECK(minidl::metric_value(worst, p, t) == doctest::Approx(2.0));
  CHECK(metric_name(worst) == "worst");
  CHECK(worst.direction() == minidl::MetricDirection::unknown);
  // A function returning the batch mean itself is taken as it is.
  const Metric mean_error = Metric::custom("mean_error", [](const auto& y_true, const auto& y_pred) {
    return static_cast<double>((y_true - y_pred).mean());
  });
  CHECK(minidl::metric_value(mean_error, p, t) == doctest::Approx(0.25));
  // One value per sample, or a ShapeError naming the metric.
  const Metric wrong = Metric::custom("wrong", [](const auto& y_true, const auto&) { return y_true.col(0).head(1); });
  CHECK_THROWS_WITH_AS(minidl::metric_value(wrong, p, t),
                       "metric 'wrong': returned 1 values, expected 2 (one per sample)",
                       minidl::ShapeError);
}

TEST_CASE("a custom metric for one scalar type only cannot run in a model of the other") {
  const Metric float_only = Metric::custom("f", [](const Matrix<float>& t, const Matrix<float>& p) {
    return (t - p).cwiseAbs().rowwise().sum();
  });
  CHECK_NOTHROW(float_only.check_scalar<float>("Sequential::compile"));
  CHECK_THROWS_WITH_AS(float_only.check_scalar<double>("Sequential::compile"),
                       "Sequential::compile: metric 'f' has no double version: its function does not accept "
                       "Matrix<double> arguments",
                       minidl::ValueError);
  CHECK_THROWS_AS(Metric::custom("", [](const auto& t, const auto&) { return t.col(0); }), minidl::ValueError);
}

// ---- sample weights: Σ w_i m_i / Σ w_i, as Keras's weighted Mean metrics ----

template <class Scalar>
double weighted_mean(const Metric& metric, const Matrix<Scalar>& p, const Matrix<Scalar>& t,
                     std::initializer_list<double> weights) {
  minidl::Vector<Scalar> w(static_cast<Index>(weights.size()));
  Index i = 0;
  for (double v : weights) w(i++) = static_cast<Scalar>(v);
  return metric.sum(p, t, &w) / static_cast<double>(w.template cast<double>().sum());
}

TEST_CASE_TEMPLATE("weighted metrics: Keras's test_weighted values", Scalar, float, double) {
  // BinaryAccuracyTest.test_weighted: 0.5.
  const auto bp = matrix<Scalar>(4, 1, {0.98, 1, 0, 0.6});
  const auto bt = matrix<Scalar>(4, 1, {1, 1, 0, 0});
  CHECK(weighted_mean(Metric::binary_accuracy, bp, bt, {1, 0, 0, 1}) == doctest::Approx(0.5));
  // CategoricalAccuracyTest and TopKCategoricalAccuracyTest (k = 1).test_weighted: 0.3.
  const auto p = matrix<Scalar>(2, 3, {0.1, 0.9, 0.8, 0.05, 0.95, 0});
  const auto t = matrix<Scalar>(2, 3, {0, 0, 1, 0, 1, 0});
  CHECK(weighted_mean(Metric::categorical_accuracy, p, t, {0.7, 0.3}) == doctest::Approx(0.3));
  CHECK(weighted_mean(Metric::top_k_categorical_accuracy(1), p, t, {0.7, 0.3}) == doctest::Approx(0.3));
  // SparseCategoricalAccuracyTest.test_weighted: 0.3.
  const auto sp = matrix<Scalar>(2, 3, {0.1, 0.6, 0.3, 0.05, 0.95, 0});
  const auto labels = matrix<Scalar>(2, 1, {2, 1});
  CHECK(weighted_mean(Metric::sparse_categorical_accuracy, sp, labels, {0.7, 0.3}) == doctest::Approx(0.3));
  // mae with weights: rows |e| means 0.5 and 2.5, weights 3 and 1: (1.5 + 2.5) / 4.
  const auto mp = matrix<Scalar>(2, 2, {1, 2, 3, 4});
  const auto mt = matrix<Scalar>(2, 2, {0, 2, 5, 1});
  CHECK(weighted_mean(Metric::mae, mp, mt, {3, 1}) == doctest::Approx(1.0));
  // The unweighted sum over the batch is n times the batch mean.
  CHECK(Metric::mae.sum(mp, mt, nullptr) == doctest::Approx(3.0));
}

TEST_CASE("weighted custom metrics need per-sample values, bad weights are errors naming the metric") {
  const auto p = matrix<double>(2, 2, {1, 2, 3, 4});
  const auto t = matrix<double>(2, 2, {2, 2, 6, 1});
  const Metric per_sample = Metric::custom("abs_sum", [](const auto& y_true, const auto& y_pred) {
    return (y_true - y_pred).cwiseAbs().rowwise().sum();  // [1, 6]
  });
  CHECK(weighted_mean(per_sample, p, t, {1, 3}) == doctest::Approx((1 + 18) / 4.0));
  const Metric batch_mean = Metric::custom("batch_mean", [](const auto& y_true, const auto& y_pred) {
    return static_cast<double>((y_true - y_pred).mean());
  });
  CHECK_THROWS_WITH_AS(weighted_mean(batch_mean, p, t, {1, 1}),
                       "metric 'batch_mean' returns one value per batch; sample weights need one value per sample",
                       minidl::ValueError);
  CHECK_THROWS_WITH_AS(weighted_mean(Metric::mae, p, t, {1, -2}),
                       "metric 'mae': sample_weight holds -2 at index 1, expected a finite weight >= 0",
                       minidl::ValueError);
  CHECK_THROWS_AS(weighted_mean(Metric::mae, p, t, {1}), minidl::ShapeError);
}
