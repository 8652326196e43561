// minidl — what Dense and Conv2D share: a kernel applied as one matrix
// product, a bias, a fused activation.
//
//   Z = rows · K + b,   y = act(Z)      rows: M x fan_in values, K: fan_in x units
//
// Dense's rows are its input batch (M = N); Conv2D's are the im2col rows of
// every output position (M = N·H_out·W_out), so that Z, stored row-major, is
// already the output batch. Both store K as a fan_in x units matrix, which in
// C order is Keras's layout: (inputs, units) for Dense, (kh, kw, C, F) for Conv2D.
//
// The fused activation is any Activation, with keras.activations' default
// parameters (leaky_relu: negative_slope 0.2; elu: alpha 1.0; gelu: exact;
// gelu_approximate: the tanh form); for other parameters, follow a linear
// layer with an activation layer. Its derivative comes from the output y,
// which every layer keeps, but for gelu, gelu_approximate and silu, whose
// derivative needs Z: only for those the layer also keeps Z, in a buffer of
// the output's size (allocated when the batch size changes, not per step).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "../activation.hpp"
#include "../detail/gemm.hpp"
#include "../initializers.hpp"
#include "../layer.hpp"

namespace minidl {

/// The settings Dense and Conv2D have in common (Keras's names and defaults).
struct KernelSettings {
  Activation activation = Activation::linear;
  bool use_bias = true;
  Initializer kernel_initializer = Initializer::glorot_uniform;
  std::optional<std::uint64_t> seed;
  std::optional<Regularizer> kernel_regularizer{}, bias_regularizer{};
};

template <class Derived, class Scalar>
class KernelLayer : public LayerBase<Derived, Scalar> {
  using Rows = Eigen::Map<Matrix<Scalar>>;
  using Base = LayerBase<Derived, Scalar>;

 public:
  bool initialized() const override { return initialized_; }

  /// The weights (fan_in x units, Keras's layout flattened; bias: units values, or none without a bias).
  const Matrix<Scalar>& kernel() const { return kernel_; }
  const Vector<Scalar>& bias() const { return bias_; }
  /// Set the weights: the new value must have the current shape and finite
  /// values, else a ShapeError / ValueError and nothing changes.
  void set_kernel(const Matrix<Scalar>& kernel) { this->assign_tensor(kernel_, kernel, "kernel"); }
  void set_bias(const Vector<Scalar>& bias) { this->assign_tensor(bias_, bias, "bias"); }
  /// dLoss/dK and dLoss/db of the last backward() (unchanged while frozen).
  const Matrix<Scalar>& kernel_gradient() const { return grad_kernel_; }
  const Vector<Scalar>& bias_gradient() const { return grad_bias_; }

  Activation activation() const { return settings_.activation; }
  const char* output_activation() const override { return to_string(settings_.activation); }
  bool use_bias() const { return settings_.use_bias; }
  Initializer kernel_initializer() const { return settings_.kernel_initializer; }
  const std::optional<std::uint64_t>& seed() const { return settings_.seed; }

  const Regularizer* weight_regularizer(const std::string& tensor) const override {
    return detail::regularizer_named(tensor, {{"kernel", &settings_.kernel_regularizer},
                                              {"bias", &settings_.bias_regularizer}});
  }

  PyTorchCounterpart pytorch_counterpart() const override { return {{{"kernel", "weight"}, {"bias", "bias"}}, {}, {}}; }

 protected:
  using Base::Base;
  explicit KernelLayer(KernelSettings settings, const std::optional<Regularizer>& activity_regularizer = {})
      : settings_(checked(settings)) {
    this->set_activity_regularizer(activity_regularizer);
  }

  /// Sizes the kernel (fan_in x units) and the bias, zeroed; draws the kernel
  /// now if the layer has a seed.
  void allocate(Index fan_in, Index units) {
    kernel_ = Matrix<Scalar>::Zero(fan_in, units);
    grad_kernel_ = Matrix<Scalar>::Zero(fan_in, units);
    bias_ = Vector<Scalar>::Zero(settings_.use_bias ? units : 0);
    grad_bias_ = Vector<Scalar>::Zero(settings_.use_bias ? units : 0);
    if (settings_.seed) draw_weights(nullptr);
  }

  /// The kernel from Rng(seed) if the layer has a seed (leaving `rng`
  /// untouched: its weights depend on its seed alone), else from *rng,
  /// with the derived layer's fans; the bias zeroed.
  void draw_weights(Rng* rng) {
    Rng own(settings_.seed.value_or(0));
    const auto [fan_in, fan_out] = static_cast<const Derived&>(*this).fans();
    initialize_weights(settings_.kernel_initializer, kernel_, fan_in, fan_out, settings_.seed ? own : *rng);
    bias_.setZero();
    initialized_ = true;
  }

  /// y = act(rows·K + b), the product written into y viewed as rows.rows() x units,
  /// or into Z (y's size) when the activation's derivative needs it.
  template <class In>
  void apply(const In& rows, Matrix<Scalar>& y) {
    const bool keep_z = backward_reads_input(settings_.activation);
    if (keep_z) z_.resize(y.rows(), y.cols());
    Rows z(keep_z ? z_.data() : y.data(), rows.rows(), kernel_.cols());
    detail::gemm(rows, kernel_, z, /*accumulate=*/false, settings_.use_bias ? bias_.data() : nullptr);
    // In place unless Z is kept; softmax normalizes over the units.
    activate(settings_.activation, keep_z ? z_ : y, y, kernel_.cols());
  }

  /// dLoss/dZ from dLoss/dy (N x output size): act'(y) ⊙ dy, or dy itself
  /// for the linear activation. The result is valid until the next backward.
  const Matrix<Scalar>& activation_gradient(const Matrix<Scalar>& dy) {
    if (settings_.activation == Activation::linear) return dy;
    dz_.resize(dy.rows(), dy.cols());
    activation_backward(settings_.activation, z_, this->output(), dy, dz_, kernel_.cols());
    return dz_;
  }
  /// dK = rowsᵀ·dZ and db = Σ_rows dZ, unless the layer is frozen.
  template <class In, class Dz>
  void weight_gradients(const In& rows, const Dz& dZ) {
    if (this->frozen()) return;
    detail::gemm(rows.transpose(), dZ, grad_kernel_);
    if (settings_.use_bias) grad_bias_.noalias() = dZ.colwise().sum().transpose();
  }
  /// drows = dZ·Kᵀ (rows.rows() x fan_in).
  template <class Dz, class Out>
  void rows_gradient(const Dz& dZ, Out& drows) const {
    detail::gemm(dZ, kernel_.transpose(), drows);
  }

  void collect_parameters(std::vector<Parameter<Scalar>>& out) override {
    out.push_back({"kernel", kernel_.data(), grad_kernel_.data(), kernel_.size()});
    if (settings_.use_bias) out.push_back({"bias", bias_.data(), grad_bias_.data(), bias_.size()});
  }

  /// `kernel` with the layout `layout`, then the bias (units,) if the layer has one.
  std::vector<WeightShape> kernel_and_bias(Shape kernel, const char* layout) const {
    std::vector<WeightShape> out{{"kernel", kernel, layout}};
    if (settings_.use_bias) out.push_back({"bias", Shape{kernel.back()}, ""});
    return out;
  }

  /// The shared settings, written after the derived layer's own arguments
  /// (Keras's order: ..., activation, use_bias, kernel_initializer, seed; then the
  /// regularizers, which Keras lists after its initializers).
  void add_settings(LayerConfig& config) const {
    config.set("activation", to_string(settings_.activation))
        .set("use_bias", settings_.use_bias)
        .set("kernel_initializer", to_string(settings_.kernel_initializer))
        .set("seed", settings_.seed);
    config.set("kernel_regularizer", detail::regularizer_value(settings_.kernel_regularizer))
        .set("bias_regularizer", detail::regularizer_value(settings_.bias_regularizer));
  }
  static KernelSettings read_settings(const LayerConfig& config) {
    using I = Initializer;
    KernelSettings s;
    s.activation = config.choice("activation", all_activations);
    s.use_bias = config.boolean("use_bias");
    s.kernel_initializer =
        config.choice("kernel_initializer", {I::glorot_uniform, I::he_uniform, I::he_normal, I::zeros});
    s.seed = config.seed("seed");
    s.kernel_regularizer = detail::config_regularizer(config, "kernel_regularizer");
    s.bias_regularizer = detail::config_regularizer(config, "bias_regularizer");
    return s;
  }

  const KernelSettings& settings() const { return settings_; }

 private:
  static KernelSettings checked(const KernelSettings& s) {
    if (s.bias_regularizer && !s.use_bias)
      throw ValueError(detail::message(Derived::type_name, ": bias_regularizer ", s.bias_regularizer->str(),
                                       " given, but use_bias is false (there is no bias to regularize)"));
    return s;
  }

  KernelSettings settings_;
  bool initialized_ = false;
  Matrix<Scalar> kernel_;       // fan_in x units
  Matrix<Scalar> grad_kernel_;  // fan_in x units: dLoss/dK
  Vector<Scalar> bias_;         // units (0 without a bias)
  Vector<Scalar> grad_bias_;    // units (0 without a bias): dLoss/db
  Matrix<Scalar> dz_;           // N x output size: dLoss/dZ, resized when the batch size changes
  Matrix<Scalar> z_;            // N x output size: Z, kept only if the activation's derivative needs it
};

}  // namespace minidl
