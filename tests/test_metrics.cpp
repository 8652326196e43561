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
  CHECK_THROWS_WITH_AS(minidl::metric_value(Metric::accuracy, p, t),
                       "metric 'accuracy': y_true is 3 x 1, expected 3 x 2 (the shape of y_pred)", minidl::ShapeError);
  CHECK_THROWS_WITH_AS(minidl::metric_value(Metric::mae, t, p),
                       "metric 'mae': y_true is 3 x 2, expected 3 x 1 (the shape of y_pred)", minidl::ShapeError);
  const Matrix<double> empty(0, 2);
  CHECK_THROWS_AS(minidl::metric_value(Metric::accuracy, empty, empty), minidl::ValueError);
}
