// minidl — type erasure for losses. Losses are plain structs with a templated
// call operator (so users write MeanSquaredError{} without a scalar type);
// Sequential<Scalar> keeps one behind this interface.
#pragma once

#include <memory>
#include <string_view>
#include <type_traits>
#include <utility>

#include "../error.hpp"
#include "../tensor.hpp"
#include "data_checks.hpp"

namespace minidl::detail {

template <class Scalar>
class LossFunctionBase {
 public:
  virtual ~LossFunctionBase() = default;
  /// Batch-mean loss (each sample weighted by sample_weight, if not null);
  /// writes dLoss/dy_pred into *grad (sized like y_pred) if not null.
  virtual Scalar value(const Matrix<Scalar>& y_pred, const Matrix<Scalar>& y_true, Matrix<Scalar>* grad,
                       const Vector<Scalar>* sample_weight = nullptr) const = 0;
  virtual const char* name() const = 0;
  virtual std::unique_ptr<LossFunctionBase> clone() const = 0;
  /// Throws unless y (the targets given to Sequential::`call` for a model
  /// with `outputs` outputs) suits the loss: samples, finite values, a column
  /// per output (sparse labels: one column), and values in the loss's range
  /// (cross-entropies: [0, 1]; sparse labels: class indices), naming the first
  /// bad value's row and column. No allocation: train_on_batch calls it.
  virtual void check_targets(const char* call, ConstMatrixRef<Scalar> y, Index outputs) const = 0;
  /// True for a loss of logits (from_logits) whose probabilities come from
  /// `activation` ("softmax" for the categorical cross-entropies, "sigmoid"
  /// for the binary one): given probabilities, it would squash them again.
  virtual bool expects_logits_not(const char* activation) const = 0;
};

template <class Loss, class = void>
struct has_target_range : std::false_type {};
template <class Loss>
struct has_target_range<Loss, std::void_t<decltype(std::declval<const Loss&>().target_range())>> : std::true_type {};

template <class Loss, class = void>
struct has_probability_activation : std::false_type {};
template <class Loss>
struct has_probability_activation<Loss, std::void_t<decltype(Loss::probability_activation())>> : std::true_type {};

template <class Loss, class = void>
struct has_sparse_labels : std::false_type {};
template <class Loss>
struct has_sparse_labels<Loss, std::enable_if_t<Loss::sparse_labels>> : std::true_type {};

template <class Scalar, class Loss>
class LossFunction final : public LossFunctionBase<Scalar> {
 public:
  explicit LossFunction(Loss loss) : loss_(std::move(loss)) {}
  Scalar value(const Matrix<Scalar>& y_pred, const Matrix<Scalar>& y_true, Matrix<Scalar>* grad,
               const Vector<Scalar>* sample_weight = nullptr) const override {
    return loss_(y_pred, y_true, grad, sample_weight);
  }
  const char* name() const override { return loss_.name(); }
  std::unique_ptr<LossFunctionBase<Scalar>> clone() const override { return std::make_unique<LossFunction>(loss_); }
  bool expects_logits_not(const char* activation) const override {
    if constexpr (has_probability_activation<Loss>::value)
      return loss_.from_logits && std::string_view(activation) == Loss::probability_activation();
    (void)activation;
    return false;
  }
  void check_targets(const char* call, ConstMatrixRef<Scalar> y, Index outputs) const override {
    if constexpr (has_sparse_labels<Loss>::value) {
      if (y.cols() != 1)
        throw ShapeError(message("Sequential::", call, ": y has ", y.cols(), " columns, expected 1 (a class index per "
                                 "sample, for ", loss_.name(), "; one-hot rows need categorical_crossentropy)"));
      check_data_matrix(call, "y", y, 1);
      if (const Index row = Loss::first_bad_label(y.col(0), outputs); row >= 0)
        throw ValueError(message("Sequential::", call, ": y holds ", y(row, 0), " at row ", row,
                                 ", column 0, expected a class index (a whole number in [0, ", outputs - 1, "]) for ",
                                 loss_.name()));
      return;
    }
    check_data_matrix(call, "y", y, outputs);
    if constexpr (has_target_range<Loss>::value) {
      const auto [lo, hi] = loss_.target_range();
      const auto low = static_cast<Scalar>(lo), high = static_cast<Scalar>(hi);
      if (!((y.array() < low) || (y.array() > high)).any()) return;
      for (Index i = 0; i < y.rows(); ++i)  // the slow search, only to name the first bad target
        for (Index j = 0; j < y.cols(); ++j)
          if (y(i, j) < low || y(i, j) > high)
            throw ValueError(message("Sequential::", call, ": y holds ", y(i, j), " at row ", i, ", column ", j,
                                     ", outside [", lo, ", ", hi, "], the range of ", loss_.name(),
                                     "'s targets (probabilities; class indices need "
                                     "sparse_categorical_crossentropy or one_hot)"));
    }
  }

 private:
  Loss loss_;
};

}  // namespace minidl::detail
