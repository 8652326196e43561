// minidl — type erasure for losses. Losses are plain structs with a templated
// call operator (so users write MeanSquaredError{} without a scalar type);
// Sequential<Scalar> keeps one behind this interface.
#pragma once

#include <memory>

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
};

template <class Scalar, class Loss>
class LossFunction final : public LossFunctionBase<Scalar> {
 public:
  explicit LossFunction(Loss loss) : loss_(std::move(loss)) {}
  Scalar value(const Matrix<Scalar>& y_pred, const Matrix<Scalar>& y_true, Matrix<Scalar>* grad) const override {
    return loss_(y_pred, y_true, grad);
  }
  const char* name() const override { return loss_.name(); }
  std::unique_ptr<LossFunctionBase<Scalar>> clone() const override { return std::make_unique<LossFunction>(loss_); }

 private:
  Loss loss_;
};

}  // namespace minidl::detail
