// minidl — metrics reported next to the loss by fit and evaluate.
//
// Each metric is the mean over the batch of a per-sample value, named as in a
// Keras History ("accuracy", "mae"; "val_accuracy" on validation data); fit
// and evaluate weigh each batch's mean by its size, so an epoch's value is the
// mean over its samples, as Keras's Mean metrics.
//
//   model.compile(loss, optimizer, {Metric::accuracy, Metric::mse, Metric::top_k_categorical_accuracy(3),
//                                   Metric::custom("max_error", [](const auto& y_true, const auto& y_pred) {
//                                     return (y_true - y_pred).cwiseAbs().rowwise().maxCoeff();
//                                   })});
//
// Keras's per-sample definitions:
//   accuracy          binary (y_pred > 0.5 equals y_true) when y_pred has one column,
//                     sparse categorical when y_true has one column and y_pred several,
//                     else categorical (argmax equals argmax; ties go to the first index)
//   top_k             the true class is among the k largest predictions: fewer than k
//                     predictions are strictly larger than its own (ties count as in, as
//                     Keras's in_top_k; a NaN prediction of the true class never is)
//   mae, mse          mean over the row of |p − t| and (p − t)²
// A custom metric is Keras's metric function: fn(y_true, y_pred) — Keras's
// argument order, the reverse of the losses' — returning one value per row
// (an Eigen expression or vector of N values); fit averages them. It is
// stored for float and double models alike when it accepts both (a generic
// lambda does); compiling a model of a scalar type it does not accept is a
// ValueError.
#pragma once

#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "losses.hpp"

namespace minidl {

namespace detail {

// Whether a metric function takes Matrix<Scalar> arguments. std::is_invocable
// alone cannot tell: Matrix<float> converts implicitly from Matrix<double>
// (with a compile error inside Eigen), so a function whose first parameter has
// a fixed type accepts exactly that type; a generic one accepts what it can
// be called with.
template <class Signature>
struct first_parameter {};
template <class R, class A, class... Rest>
struct first_parameter<R (*)(A, Rest...)> {
  using type = std::decay_t<A>;
};
template <class R, class C, class A, class... Rest>
struct first_parameter<R (C::*)(A, Rest...) const> {
  using type = std::decay_t<A>;
};
template <class R, class C, class A, class... Rest>
struct first_parameter<R (C::*)(A, Rest...)> {
  using type = std::decay_t<A>;
};
template <class Fn, class = void>
struct fixed_first_parameter {};  // generic (a template operator()) or not callable
template <class Fn>
struct fixed_first_parameter<Fn, std::void_t<decltype(&Fn::operator())>>
    : first_parameter<decltype(&Fn::operator())> {};
template <class R, class... Args>
struct fixed_first_parameter<R (*)(Args...)> : first_parameter<R (*)(Args...)> {};

template <class Fn, class Scalar, class = void>
struct accepts_matrices
    : std::bool_constant<std::is_invocable_v<const Fn&, const Matrix<Scalar>&, const Matrix<Scalar>&>> {};
template <class Fn, class Scalar>
struct accepts_matrices<Fn, Scalar, std::void_t<typename fixed_first_parameter<Fn>::type>>
    : std::is_same<typename fixed_first_parameter<Fn>::type, Matrix<Scalar>> {};

}  // namespace detail

/// Whether a larger value of a metric is better (EarlyStopping's automatic mode).
enum class MetricDirection { up, down, unknown };

class Metric {
 public:
  enum class Kind { accuracy, binary_accuracy, categorical_accuracy, sparse_categorical_accuracy, top_k, sparse_top_k,
                    mae, mse, custom };

  static const Metric accuracy, binary_accuracy, categorical_accuracy, sparse_categorical_accuracy, mae, mse;
  /// Keras's top_k_categorical_accuracy (k = 5 by default), one-hot targets.
  static Metric top_k_categorical_accuracy(int k = 5) { return top_k(Kind::top_k, "top_k_categorical_accuracy", k); }
  /// The same with class-index targets (N x 1), Keras's sparse_top_k_categorical_accuracy.
  static Metric sparse_top_k_categorical_accuracy(int k = 5) {
    return top_k(Kind::sparse_top_k, "sparse_top_k_categorical_accuracy", k);
  }
  /// A user's metric: `fn(y_true, y_pred)` returns N per-sample values. Its
  /// direction is unknown: EarlyStopping on it needs an explicit mode (as Keras).
  template <class Fn>
  static Metric custom(std::string name, Fn fn);

  Kind kind() const { return kind_; }
  /// The History key ("accuracy", "mae", a custom metric's name).
  const std::string& name() const { return name_; }
  MetricDirection direction() const { return direction_; }
  int k() const { return k_; }

  /// The batch mean of the metric (y_pred N x C; y_true N x C, or N x 1 for sparse targets).
  template <class Scalar>
  Scalar operator()(const Matrix<Scalar>& y_pred, const Matrix<Scalar>& y_true) const {
    return static_cast<Scalar>(sum(y_pred, y_true, nullptr) / static_cast<double>(y_pred.rows()));
  }
  /// Σ_i w_i·m_i over the batch's per-sample values m_i (w_i = 1 when
  /// sample_weight is null), in double: a weighted mean over batches, as
  /// Keras's Mean metrics, divides the sum of these by the sum of the weights.
  template <class Scalar>
  double sum(const Matrix<Scalar>& y_pred, const std::common_type_t<Matrix<Scalar>>& y_true,
             const std::common_type_t<Vector<Scalar>>* sample_weight) const;

  /// Throws ValueError, naming `call`, unless the metric can run in a model of Scalar.
  template <class Scalar>
  void check_scalar(const char* call) const {
    if (kind_ == Kind::custom && !custom_->get<Scalar>())
      throw ValueError(detail::message(call, ": metric '", name_, "' has no ", sizeof(Scalar) == 4 ? "float" : "double",
                                       " version: its function does not accept Matrix<",
                                       sizeof(Scalar) == 4 ? "float" : "double", "> arguments"));
  }

 private:
  // The custom function for each scalar type, as sum(); empty for a type the
  // user's function does not accept.
  template <class Scalar>
  using CustomSum = std::function<double(const Matrix<Scalar>&, const Matrix<Scalar>&, const Vector<Scalar>*)>;
  struct Custom {
    CustomSum<float> in_float;
    CustomSum<double> in_double;
    template <class Scalar>
    const auto& get() const {
      if constexpr (std::is_same_v<Scalar, float>) return in_float;
      else return in_double;
    }
  };

  Metric(Kind kind, std::string name, MetricDirection direction)
      : kind_(kind), name_(std::move(name)), direction_(direction) {}
  static Metric top_k(Kind kind, const char* name, int k) {
    if (k < 1) throw ValueError(detail::message("Metric::", name, ": k must be >= 1, got ", k));
    Metric metric(kind, name, MetricDirection::up);
    metric.k_ = k;
    return metric;
  }
  template <class Scalar, class Fn>
  static CustomSum<Scalar> custom_sum(const std::string& name, Fn fn);
  /// m_i of a built-in metric of kind `kind` (accuracy already resolved).
  template <class Scalar>
  double row_value(Kind kind, const Matrix<Scalar>& y_pred, const Matrix<Scalar>& y_true, Index i) const;

  Kind kind_;
  std::string name_;
  MetricDirection direction_;
  int k_ = 0;
  std::shared_ptr<const Custom> custom_;  // immutable: copies of a Metric may share it
};

inline const Metric Metric::accuracy{Kind::accuracy, "accuracy", MetricDirection::up};
inline const Metric Metric::binary_accuracy{Kind::binary_accuracy, "binary_accuracy", MetricDirection::up};
inline const Metric Metric::categorical_accuracy{Kind::categorical_accuracy, "categorical_accuracy",
                                                 MetricDirection::up};
inline const Metric Metric::sparse_categorical_accuracy{Kind::sparse_categorical_accuracy,
                                                        "sparse_categorical_accuracy", MetricDirection::up};
inline const Metric Metric::mae{Kind::mae, "mae", MetricDirection::down};
inline const Metric Metric::mse{Kind::mse, "mse", MetricDirection::down};

/// The History key: "accuracy", "mae", ...
inline const std::string& metric_name(const Metric& metric) { return metric.name(); }

/// The direction of the built-in metric named `name` (up for the accuracies,
/// down for the errors); unknown for any other name.
inline MetricDirection builtin_metric_direction(const std::string& name) {
  for (const Metric& m : {Metric::accuracy, Metric::binary_accuracy, Metric::categorical_accuracy,
                          Metric::sparse_categorical_accuracy, Metric::mae, Metric::mse,
                          Metric::top_k_categorical_accuracy(), Metric::sparse_top_k_categorical_accuracy()})
    if (m.name() == name) return m.direction();
  return MetricDirection::unknown;
}

/// The batch mean of `metric`.
template <class Scalar>
Scalar metric_value(const Metric& metric, const Matrix<Scalar>& y_pred, const Matrix<Scalar>& y_true) {
  return metric(y_pred, y_true);
}

namespace detail {

/// Index of the largest value of row i; ties go to the first index, as numpy's argmax.
template <class Scalar>
Index argmax_row(const Matrix<Scalar>& m, Index i) {
  Index best = 0;
  for (Index j = 1; j < m.cols(); ++j)
    if (m(i, j) > m(i, best)) best = j;
  return best;
}

/// The true class of row i: argmax of a one-hot row, or the index a sparse
/// target holds (−1 if it is not a class index, which then never matches).
template <class Scalar>
Index true_class(const Matrix<Scalar>& y_true, Index i, bool sparse, Index classes) {
  if (!sparse) return argmax_row(y_true, i);
  const double label = static_cast<double>(y_true(i, 0));
  return label >= 0 && label < static_cast<double>(classes) && label == std::floor(label) ? static_cast<Index>(label)
                                                                                          : -1;
}

/// Whether row i's prediction matches its true class: k = 0, the argmax (ties
/// to the first index, Keras's categorical accuracy); k >= 1, among the k
/// largest by Keras's in_top_k (fewer than k predictions strictly larger; a
/// NaN prediction of the true class never is).
template <class Scalar>
bool class_hit(const Matrix<Scalar>& y_pred, const Matrix<Scalar>& y_true, Index i, bool sparse, int k) {
  const Index label = true_class(y_true, i, sparse, y_pred.cols());
  if (label < 0) return false;
  if (k == 0) return argmax_row(y_pred, i) == label;
  const Scalar own = y_pred(i, label);
  return !std::isnan(own) && (y_pred.row(i).array() > own).count() < k;
}

/// Throws unless y_true is N x `columns` for y_pred N x C and the batch is
/// not empty: ShapeError or ValueError naming "metric '<name>'". The message is
/// formatted only on failure (fit calls this every batch, without allocating).
template <class Scalar>
void check_metric_shapes(const std::string& name, const Matrix<Scalar>& y_pred, const Matrix<Scalar>& y_true,
                         Index columns) {
  if (y_true.rows() != y_pred.rows() || y_true.cols() != columns)
    throw ShapeError(message("metric '", name, "': y_true is ", y_true.rows(), " x ", y_true.cols(), ", expected ",
                             y_pred.rows(), " x ", columns,
                             columns == 1 && y_pred.cols() != 1 ? " (a class index per row of y_pred)"
                                                                : " (the shape of y_pred)"));
  if (y_pred.size() == 0)
    throw ValueError(message("metric '", name, "': got an empty batch (", y_pred.rows(), " x ", y_pred.cols(), ")"));
}

}  // namespace detail

template <class Scalar>
double Metric::row_value(Kind kind, const Matrix<Scalar>& y_pred, const Matrix<Scalar>& y_true, Index i) const {
  const auto columns = static_cast<Scalar>(y_pred.cols());
  switch (kind) {
    // Keras binary_accuracy: the prediction thresholded at 0.5 (1 if p > 0.5)
    // compared *exactly* with y_true (a soft label 0.7 never matches), averaged over the row.
    case Kind::binary_accuracy:
      return static_cast<double>(((y_pred.row(i).array() > Scalar(0.5)).template cast<Scalar>() ==
                                  y_true.row(i).array()).count()) / static_cast<double>(y_pred.cols());
    case Kind::categorical_accuracy: return detail::class_hit(y_pred, y_true, i, false, 0) ? 1 : 0;
    case Kind::sparse_categorical_accuracy: return detail::class_hit(y_pred, y_true, i, true, 0) ? 1 : 0;
    case Kind::top_k: return detail::class_hit(y_pred, y_true, i, false, k_) ? 1 : 0;
    case Kind::sparse_top_k: return detail::class_hit(y_pred, y_true, i, true, k_) ? 1 : 0;
    // As the losses MeanAbsoluteError and MeanSquaredError compute a row, in Scalar.
    case Kind::mae: return static_cast<double>((y_pred.row(i) - y_true.row(i)).cwiseAbs().sum() / columns);
    case Kind::mse: return static_cast<double>((y_pred.row(i) - y_true.row(i)).squaredNorm() / columns);
    case Kind::accuracy:
    case Kind::custom: break;
  }
  throw ValueError(detail::message("metric '", name_, "': no per-row value for kind ", static_cast<int>(kind)));
}

template <class Scalar>
double Metric::sum(const Matrix<Scalar>& y_pred, const std::common_type_t<Matrix<Scalar>>& y_true,
                   const std::common_type_t<Vector<Scalar>>* sample_weight) const {
  if (sample_weight && (sample_weight->size() != y_pred.rows() || !(sample_weight->array() >= 0).all() ||
                        !sample_weight->allFinite()))  // the message (which allocates) only on failure
    detail::check_sample_weight(("metric '" + name_ + "'").c_str(), *sample_weight, y_pred.rows());
  if (kind_ == Kind::custom) {
    check_scalar<Scalar>("Metric");
    return custom_->get<Scalar>()(y_pred, y_true, sample_weight);
  }
  Kind kind = kind_;
  if (kind == Kind::accuracy)  // Keras's resolution of "accuracy" from the shapes
    kind = y_pred.cols() == 1                        ? Kind::binary_accuracy
           : y_true.cols() == 1 && y_pred.cols() > 1 ? Kind::sparse_categorical_accuracy
                                                     : Kind::categorical_accuracy;
  const bool sparse = kind == Kind::sparse_categorical_accuracy || kind == Kind::sparse_top_k;
  detail::check_metric_shapes(name_, y_pred, y_true, sparse ? 1 : y_pred.cols());
  double total = 0;
  for (Index i = 0; i < y_pred.rows(); ++i)
    total += row_value(kind, y_pred, y_true, i) * (sample_weight ? static_cast<double>((*sample_weight)(i)) : 1.0);
  return total;
}

template <class Scalar, class Fn>
Metric::CustomSum<Scalar> Metric::custom_sum(const std::string& name, Fn fn) {
  return [name, fn](const Matrix<Scalar>& y_pred, const Matrix<Scalar>& y_true,
                    const Vector<Scalar>* sample_weight) -> double {
    if (y_pred.rows() == 0) throw ValueError(detail::message("metric '", name, "': got an empty batch"));
    if (y_true.rows() != y_pred.rows())
      throw ShapeError(detail::message("metric '", name, "': y_true has ", y_true.rows(), " rows, expected ",
                                       y_pred.rows()));
    const auto& values = fn(y_true, y_pred);  // Keras's order: (y_true, y_pred)
    const auto n = static_cast<double>(y_pred.rows());
    if constexpr (std::is_arithmetic_v<std::decay_t<decltype(values)>>) {
      // The function returned the batch mean itself: it cannot be weighted per sample.
      if (sample_weight)
        throw ValueError(detail::message("metric '", name, "' returns one value per batch; sample weights need one "
                                         "value per sample"));
      return static_cast<double>(values) * n;
    } else {
      if (values.size() != y_pred.rows())
        throw ShapeError(detail::message("metric '", name, "': returned ", values.size(), " values, expected ",
                                         y_pred.rows(), " (one per sample)"));
      if (!sample_weight) return values.template cast<double>().sum();
      return (values.template cast<double>().array() * sample_weight->template cast<double>().array()).sum();
    }
  };
}

template <class Fn>
Metric Metric::custom(std::string name, Fn fn) {
  if (name.empty()) throw ValueError("Metric::custom: the name must not be empty (it is the History key)");
  Metric metric(Kind::custom, std::move(name), MetricDirection::unknown);
  auto functions = std::make_shared<Custom>();
  if constexpr (detail::accepts_matrices<Fn, float>::value) functions->in_float = custom_sum<float>(metric.name_, fn);
  if constexpr (detail::accepts_matrices<Fn, double>::value)
    functions->in_double = custom_sum<double>(metric.name_, fn);
  metric.custom_ = std::move(functions);
  return metric;
}

}  // namespace minidl
