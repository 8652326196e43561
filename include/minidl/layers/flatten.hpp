// minidl — Flatten: any per-sample shape (H, W, C) -> (H·W·C).
//
// The batch is already flat: a row-major N x (H·W·C) matrix stores each
// sample's values channels last, in exactly the order Keras' Flatten produces
// for channels-last images (PyTorch's nn.Flatten on N x C x H x W orders them
// channels first: (c, h, w)). So Flatten only changes the recorded shape. Its
// forward still copies the batch into its output, and its backward copies the
// gradient: every layer owns the buffer it returns (layer.hpp), and one copy
// of a batch is cheap next to the layers around it.
#pragma once

#include "../layer.hpp"

namespace minidl {

template <class Scalar>
class Flatten : public LayerBase<Flatten<Scalar>, Scalar> {
 public:
  /// Input shape fixed later by build() or Sequential::add.
  Flatten() = default;
  /// Input shape fixed now: any rank (Keras accepts any; rank 1 is the identity).
  explicit Flatten(const Shape& input) { this->build(input); }

  const char* type() const override { return "Flatten"; }

 protected:
  Shape build_impl(const Shape& input) override { return Shape{input.size()}; }

  // Both phases compute the same function: y = x (same values, same order).
  void forward_training(const Matrix<Scalar>& x, Matrix<Scalar>& y) override { y = x; }
  void forward_inference(const Matrix<Scalar>& x, Matrix<Scalar>& y) override { y = x; }

  // dx = dy
  void backward_impl(const Matrix<Scalar>& /*x*/, const Matrix<Scalar>& dy, Matrix<Scalar>* dx) override {
    if (dx) *dx = dy;
  }
};

}  // namespace minidl
