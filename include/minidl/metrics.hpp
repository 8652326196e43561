// minidl — metrics reported next to the loss by fit and evaluate.
//
// Each metric is the mean over the batch of a per-sample value, named as in a
// Keras History ("accuracy", "mae"; "val_accuracy" on validation data).
#pragma once

#include "losses.hpp"

namespace minidl {

enum class Metric {
  /// Keras's "accuracy" string: binary accuracy for one output column,
  /// categorical accuracy (argmax) for several.
  accuracy,
  /// Mean absolute error, as the loss MeanAbsoluteError.
  mae,
};

/// The History key: "accuracy", "mae".
inline const char* metric_name(Metric metric) {
  switch (metric) {
    case Metric::accuracy: return "accuracy";
    case Metric::mae: return "mae";
  }
  return "unknown";
}

namespace detail {

/// How errors name a metric: "metric 'accuracy'".
inline const char* metric_label(Metric metric) {
  switch (metric) {
    case Metric::accuracy: return "metric 'accuracy'";
    case Metric::mae: return "metric 'mae'";
  }
  return "metric 'unknown'";
}

/// Index of the largest value of row i; ties go to the first index, as numpy's argmax.
template <class Scalar>
Index argmax_row(const Matrix<Scalar>& m, Index i) {
  Index best = 0;
  for (Index j = 1; j < m.cols(); ++j)
    if (m(i, j) > m(i, best)) best = j;
  return best;
}

/// Keras binary_accuracy (one column): the prediction thresholded at 0.5,
/// i.e. 1 if p > 0.5 else 0, compared *exactly* with y_true (a soft label 0.7
/// never matches).
template <class Scalar>
Index binary_hits(const Matrix<Scalar>& y_pred, const Matrix<Scalar>& y_true) {
  return ((y_pred.array() > Scalar(0.5)).template cast<Scalar>() == y_true.array()).count();
}

/// Keras categorical_accuracy: argmax(y_pred) == argmax(y_true), per row.
template <class Scalar>
Index categorical_hits(const Matrix<Scalar>& y_pred, const Matrix<Scalar>& y_true) {
  Index hits = 0;
  for (Index i = 0; i < y_pred.rows(); ++i) hits += argmax_row(y_pred, i) == argmax_row(y_true, i) ? 1 : 0;
  return hits;
}

}  // namespace detail

/// The batch mean of `metric` (y_pred and y_true both N x C).
template <class Scalar>
Scalar metric_value(Metric metric, const Matrix<Scalar>& y_pred, const Matrix<Scalar>& y_true) {
  detail::check_same_shape(detail::metric_label(metric), y_pred, y_true);
  switch (metric) {
    case Metric::accuracy: {
      const Index hits = y_pred.cols() == 1 ? detail::binary_hits(y_pred, y_true)
                                            : detail::categorical_hits(y_pred, y_true);
      return static_cast<Scalar>(static_cast<double>(hits) / static_cast<double>(y_pred.rows()));
    }
    case Metric::mae: return MeanAbsoluteError{}(y_pred, y_true);
  }
  throw ValueError(detail::message("metric_value: unknown metric ", static_cast<int>(metric)));
}

}  // namespace minidl
