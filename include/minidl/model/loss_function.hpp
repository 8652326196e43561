// minidl — type erasure for losses. Losses are plain structs with a templated
// call operator (so users write MeanSquaredError{} without a scalar type);
// Sequential<Scalar> keeps one behind this interface.
#pragma once

#include <memory>
#include <type_traits>
#include <utility>

#include "../error.hpp"
#include "../tensor.hpp"

namespace minidl::detail {

template <class Scalar>
class LossFunctionBase {
 public:
  virtual ~LossFunctionBase() = default;
  /// Batch-mean loss; writes dLoss/dy_pred into *grad (sized like y_pred) if not null.
  virtual Scalar value(const Matrix<Scalar>& y_pred, const Matrix<Scalar>& y_true, Matrix<Scalar>* grad) const = 0;
  virtual const char* name() const = 0;
  virtual std::unique_ptr<LossFunctionBase> clone() const = 0;
  /// Throws ValueError, naming Sequential::`call`, the first target's row,
  /// column and value, unless every target is in the loss's target_range()
  /// (no check for a loss without one). No allocation: train_on_batch calls it.
  virtual void check_targets(const char* call, ConstMatrixRef<Scalar> y) const = 0;
};

template <class Loss, class = void>
struct has_target_range : std::false_type {};
template <class Loss>
struct has_target_range<Loss, std::void_t<decltype(std::declval<const Loss&>().target_range())>> : std::true_type {};

template <class Scalar, class Loss>
class LossFunction final : public LossFunctionBase<Scalar> {
 public:
  explicit LossFunction(Loss loss) : loss_(std::move(loss)) {}
  Scalar value(const Matrix<Scalar>& y_pred, const Matrix<Scalar>& y_true, Matrix<Scalar>* grad) const override {
    return loss_(y_pred, y_true, grad);
  }
  const char* name() const override { return loss_.name(); }
  std::unique_ptr<LossFunctionBase<Scalar>> clone() const override { return std::make_unique<LossFunction>(loss_); }
  void check_targets(const char* call, ConstMatrixRef<Scalar> y) const override {
    if constexpr (has_target_range<Loss>::value) {
      const auto [lo, hi] = loss_.target_range();
      const auto low = static_cast<Scalar>(lo), high = static_cast<Scalar>(hi);
      if (!((y.array() < low) || (y.array() > high)).any()) return;
      for (Index i = 0; i < y.rows(); ++i)  // the slow search, only to name the first bad target
        for (Index j = 0; j < y.cols(); ++j)
          if (y(i, j) < low || y(i, j) > high)
            throw ValueError(message("Sequential::", call, ": y holds ", y(i, j), " at row ", i, ", column ", j,
                                     ", outside [", lo, ", ", hi, "], the range of ", loss_.name(),
                                     "'s targets (probabilities; class labels need one_hot)"));
    } else {
      (void)call, (void)y;
    }
  }

 private:
  Loss loss_;
};

}  // namespace minidl::detail
