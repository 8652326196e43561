// minidl — Dense: a fully connected layer with a fused activation.
//
//   y = act(x·W + b)      x: N x inputs, W: inputs x units, b: units, y: N x units
//
// The kernel is stored inputs x units, Keras' layout (PyTorch's Linear stores
// its weight transposed, units x inputs). The activation is applied in place
// on the output buffer, with no separate pass over a copy.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "../activation.hpp"
#include "../detail/gemm.hpp"
#include "../initializers.hpp"
#include "../layer.hpp"

namespace minidl {

/// Options of a Dense layer (Keras' defaults).
struct DenseOptions {
  Initializer kernel_initializer = Initializer::glorot_uniform;
  bool use_bias = true;
  /// With a seed the kernel is drawn in the constructor from Rng(*seed), and
  /// initialize() redraws the same kernel. Without one the layer is not
  /// initialized() until initialize(rng) (Sequential::add calls it).
  std::optional<std::uint64_t> seed;
};

template <class Scalar>
class Dense : public LayerBase<Dense<Scalar>, Scalar> {
  using Base = LayerBase<Dense<Scalar>, Scalar>;

 public:
  /// Throws ValueError naming the argument unless inputs > 0 and units > 0,
  /// ShapeError if inputs·units exceeds max_elements.
  Dense(Index inputs, Index units, Activation activation = Activation::linear, DenseOptions options = {})
      : Base(Shape{checked("inputs", inputs)}, Shape{checked_units(inputs, units)}),
        activation_(activation),
        options_(options),
        kernel_(Matrix<Scalar>::Zero(inputs, units)),
        grad_kernel_(Matrix<Scalar>::Zero(inputs, units)),
        bias_(Vector<Scalar>::Zero(options.use_bias ? units : 0)),
        grad_bias_(Vector<Scalar>::Zero(options.use_bias ? units : 0)) {
    if (options_.seed) draw_weights(nullptr);
  }

  const char* type() const override { return "Dense"; }

  /// Draws the kernel with the kernel initializer (fan_in = inputs,
  /// fan_out = units) and zeroes the bias. A layer made with a seed draws from
  /// Rng(seed) and leaves `rng` untouched: its weights depend on its seed alone.
  void initialize(Rng& rng) override { draw_weights(&rng); }
  bool initialized() const override { return initialized_; }

  /// The weights (inputs x units; bias: units values, or none without a bias).
  const Matrix<Scalar>& kernel() const { return kernel_; }
  const Vector<Scalar>& bias() const { return bias_; }
  /// Set the weights: the new value must have the current shape and finite
  /// values, else a ShapeError / ValueError and nothing changes.
  void set_kernel(const Matrix<Scalar>& kernel) { this->assign_tensor(kernel_, kernel, "kernel"); }
  void set_bias(const Vector<Scalar>& bias) { this->assign_tensor(bias_, bias, "bias"); }
  /// dLoss/dW and dLoss/db of the last backward() (unchanged while frozen).
  const Matrix<Scalar>& kernel_gradient() const { return grad_kernel_; }
  const Vector<Scalar>& bias_gradient() const { return grad_bias_; }

  Activation activation() const { return activation_; }
  Index units() const { return kernel_.cols(); }
  bool use_bias() const { return options_.use_bias; }
  Initializer kernel_initializer() const { return options_.kernel_initializer; }
  const std::optional<std::uint64_t>& seed() const { return options_.seed; }

 protected:
  // Both phases compute the same function: y = act(x·W + b).
  void forward_training(const Matrix<Scalar>& x, Matrix<Scalar>& y) override { affine_activate(x, y); }
  void forward_inference(const Matrix<Scalar>& x, Matrix<Scalar>& y) override { affine_activate(x, y); }

  void backward_impl(const Matrix<Scalar>& x, const Matrix<Scalar>& dy, Matrix<Scalar>* dx) override {
    // dz = act'(y) ⊙ dy    (N x units); for linear, dz is dy itself.
    const Matrix<Scalar>* dz = &dy;
    if (activation_ != Activation::linear) {
      dz_.resize(dy.rows(), dy.cols());
      activation_backward(activation_, this->output(), dy, dz_, units());
      dz = &dz_;
    }
    if (!this->frozen()) {
      detail::gemm(x.transpose(), *dz, grad_kernel_);  // dW = xᵀ·dz        (inputs x units)
      if (options_.use_bias)
        grad_bias_.noalias() = dz->colwise().sum().transpose();  // db = Σ_n dz[n, :]  (units)
    }
    if (dx) detail::gemm(*dz, kernel_.transpose(), *dx);  // dx = dz·Wᵀ  (N x inputs)
  }

  void collect_parameters(std::vector<Parameter<Scalar>>& out) override {
    out.push_back({"kernel", kernel_.data(), grad_kernel_.data(), kernel_.size()});
    if (options_.use_bias) out.push_back({"bias", bias_.data(), grad_bias_.data(), bias_.size()});
  }

 private:
  static Index checked(const char* argument, Index value) {
    if (value <= 0) throw ValueError(detail::message("Dense: ", argument, " must be > 0, got ", value));
    return value;
  }
  // Runs before the kernel is allocated: an inputs x units product beyond
  // max_elements is a ShapeError, not a failed (or wrapped) allocation.
  static Index checked_units(Index inputs, Index units) {
    detail::checked_size("Dense: kernel inputs x units", {checked("inputs", inputs), checked("units", units)});
    return units;
  }

  // Kernel from Rng(seed) if the layer has a seed, else from *rng; bias zero.
  void draw_weights(Rng* rng) {
    Rng own(options_.seed.value_or(0));
    initialize_weights(options_.kernel_initializer, kernel_, kernel_.rows(), kernel_.cols(),
                       options_.seed ? own : *rng);
    bias_.setZero();
    initialized_ = true;
  }

  void affine_activate(const Matrix<Scalar>& x, Matrix<Scalar>& y) const {
    // z = x·W + b  (N x units): the bias is added as the product is written.
    detail::gemm(x, kernel_, y, /*accumulate=*/false, options_.use_bias ? bias_.data() : nullptr);
    activate(activation_, y, y, units());  // y = act(z), in place
  }

  Activation activation_;
  DenseOptions options_;
  bool initialized_ = false;
  Matrix<Scalar> kernel_;       // inputs x units
  Matrix<Scalar> grad_kernel_;  // inputs x units: dLoss/dW
  Vector<Scalar> bias_;         // units (0 without a bias)
  Vector<Scalar> grad_bias_;    // units (0 without a bias): dLoss/db
  Matrix<Scalar> dz_;           // N x units: dLoss/dz, resized when the batch size changes
};

}  // namespace minidl
