// minidl — activation layers: ReLU, Sigmoid, Tanh, Softmax, Linear, LeakyReLU,
// ELU, GELU, SiLU, Softplus, ReLU6.
//
// One template, ActivationLayer<Scalar, A>, applies the policy
// ActivationFunction<A> (activation.hpp) to its input; the layers are
// aliases of it. They are shape-preserving and have no weights: made without a
// shape, they get it from build(shape), which Sequential::add calls with the
// previous layer's output shape.
//
// type() is the activation's Keras-style class name. Keras has layer classes
// for ReLU, LeakyReLU, ELU and Softmax only; GELU, SiLU, Softplus and ReLU6
// are PyTorch's names (nn.GELU, ...). A Keras model would show those, and
// Sigmoid, Tanh and Linear, as `Activation` layers.
//
// Parameters, taken by the constructor and saved in config() (Keras's names):
//   LeakyReLU(negative_slope = 0.3)  Keras's layer default (keras.activations.leaky_relu: 0.2,
//                                    PyTorch's nn.LeakyReLU: 0.01); ValueError if < 0, as Keras.
//   ELU(alpha = 1.0)                 ValueError if < 0 (Keras documents alpha > 0, checks nothing).
//   GELU(approximate = false)        true: the tanh approximation (PyTorch's approximate='tanh').
// backward() is given the input again, so GELU and SiLU, whose derivative
// needs it, keep nothing more than the other layers.
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

 public:
  using Function = ActivationFunction<A>;

  /// Shape fixed later by build() (or by Sequential::add); the layer's default parameters.
  ActivationLayer() = default;
  /// Shape fixed now: input and output are both `shape`.
  explicit ActivationLayer(const Shape& shape) : Base(shape, shape) {}
  /// With these parameters: LeakyReLU<float>(0.1), ELU<double>(0.5), GELU<float>(true).
  /// Throws ValueError naming the layer, the argument and the value for an invalid one.
  explicit ActivationLayer(const Function& function) : function_(checked(function)) {}
  ActivationLayer(const Function& function, const Shape& shape) : Base(shape, shape), function_(checked(function)) {}

  const char* type() const override { return type_name(); }
  const char* output_activation() const override { return to_string(A); }
  static constexpr const char* type_name() {
    switch (A) {
      case Activation::linear: return "Linear";
      case Activation::relu: return "ReLU";
      case Activation::sigmoid: return "Sigmoid";
      case Activation::tanh: return "Tanh";
      case Activation::softmax: return "Softmax";
      case Activation::leaky_relu: return "LeakyReLU";
      case Activation::elu: return "ELU";
      case Activation::gelu:
      case Activation::gelu_approximate: return "GELU";
      case Activation::silu: return "SiLU";
      case Activation::softplus: return "Softplus";
      case Activation::relu6: return "ReLU6";
    }
    return "Activation";
  }
  Activation activation() const { return A; }
  /// The policy with the layer's parameters: function().negative_slope, .alpha, .approximate.
  const Function& function() const { return function_; }

  /// {"negative_slope": 0.3}, {"alpha": 1.0}, {"approximate": false}, or {} for the others.
  LayerConfig config() const override {
    LayerConfig c;
    function_.write(c);
    return c;
  }
  static ActivationLayer from_config(const LayerConfig& c) {
    Function function = default_function();
    function.read(c);
    return ActivationLayer(function);
  }

 protected:
  // Both phases compute the same function: y = f(x).
  void forward_training(const Matrix<Scalar>& x, Matrix<Scalar>& y) override { function_.forward(x, y, axis()); }
  void forward_inference(const Matrix<Scalar>& x, Matrix<Scalar>& y) override { function_.forward(x, y, axis()); }

  // dx = f'(x) ⊙ dy, from the input x or the saved output y = f(x), whichever
  // the policy reads; no weights, so nothing else to compute, frozen or not.
  void backward_impl(const Matrix<Scalar>& x, const Matrix<Scalar>& dy, Matrix<Scalar>* dx) override {
    if (dx) function_.backward(Function::backward_reads_input ? x : this->output(), dy, *dx, axis());
  }

 private:
  // Keras's layer defaults: the function's, but for LeakyReLU's 0.3.
  static Function default_function() {
    if constexpr (A == Activation::leaky_relu) return Function(0.3);
    else return Function{};
  }
  static const Function& checked(const Function& function) {
    function.check(type_name());
    return function;
  }
  // The length of the last axis of a sample: what softmax normalizes over.
  Index axis() const { return this->input_shape().back(); }

  Function function_ = default_function();
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
template <class Scalar>
using LeakyReLU = ActivationLayer<Scalar, Activation::leaky_relu>;
template <class Scalar>
using ELU = ActivationLayer<Scalar, Activation::elu>;
/// Both forms: GELU(true) is the tanh approximation (one layer type "GELU", as PyTorch's nn.GELU).
template <class Scalar>
using GELU = ActivationLayer<Scalar, Activation::gelu>;
template <class Scalar>
using SiLU = ActivationLayer<Scalar, Activation::silu>;
template <class Scalar>
using Softplus = ActivationLayer<Scalar, Activation::softplus>;
template <class Scalar>
using ReLU6 = ActivationLayer<Scalar, Activation::relu6>;

}  // namespace minidl
