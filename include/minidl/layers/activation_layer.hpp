// minidl — activation layers: ReLU, Sigmoid, Tanh, Softmax, Linear.
//
// One template, ActivationLayer<Scalar, A>, applies the policy
// ActivationFunction<A> (activation.hpp) to its input; the five layers are
// aliases of it. They are shape-preserving and have no weights: made without a
// shape, they get it from build(shape), which Sequential::add calls with the
// previous layer's output shape.
//
// type() is the activation's Keras-style class name ("ReLU", "Sigmoid",
// "Tanh", "Softmax", "Linear"). Keras has layer classes only for ReLU and
// Softmax; a Keras model would show the other three as `Activation` layers.
//
// Softmax normalizes over the last axis of the per-sample shape, Keras'
// default (axis=-1): the whole sample for (features), each pixel's channels
// for (H, W, C).
#pragma once

#include "../activation.hpp"
#include "../layer.hpp"

namespace minidl {

template <class Scalar, Activation A>
class ActivationLayer : public LayerBase<ActivationLayer<Scalar, A>, Scalar> {
  using Base = LayerBase<ActivationLayer<Scalar, A>, Scalar>;
  using Function = ActivationFunction<A>;

 public:
  /// Shape fixed later by build() (or by Sequential::add).
  ActivationLayer() = default;
  /// Shape fixed now: input and output are both `shape`.
  explicit ActivationLayer(const Shape& shape) : Base(shape, shape) {}

  const char* type() const override {
    switch (A) {
      case Activation::linear: return "Linear";
      case Activation::relu: return "ReLU";
      case Activation::sigmoid: return "Sigmoid";
      case Activation::tanh: return "Tanh";
      case Activation::softmax: return "Softmax";
    }
    return "Activation";
  }
  Activation activation() const { return A; }

 protected:
  // Both phases compute the same function: y = f(x).
  void forward_training(const Matrix<Scalar>& x, Matrix<Scalar>& y) override { Function::forward(x, y, axis()); }
  void forward_inference(const Matrix<Scalar>& x, Matrix<Scalar>& y) override { Function::forward(x, y, axis()); }

  // dx = f'(x) ⊙ dy, from the saved output y = f(x); no weights, so nothing
  // else to compute, frozen or not.
  void backward_impl(const Matrix<Scalar>& /*x*/, const Matrix<Scalar>& dy, Matrix<Scalar>* dx) override {
    if (dx) Function::backward(this->output(), dy, *dx, axis());
  }

 private:
  // The length of the last axis of a sample: what softmax normalizes over.
  Index axis() const { return this->input_shape().back(); }
};

template <class Scalar>
using Linear = ActivationLayer<Scalar, Activation::linear>;
template <class Scalar>
using ReLU = ActivationLayer<Scalar, Activation::relu>;
template <class Scalar>
using Sigmoid = ActivationLayer<Scalar, Activation::sigmoid>;
template <class Scalar>
using Tanh = ActivationLayer<Scalar, Activation::tanh>;
template <class Scalar>
using Softmax = ActivationLayer<Scalar, Activation::softmax>;

}  // namespace minidl
