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
#include <string>
#include <utility>
#include <vector>

#include "kernel_layer.hpp"

namespace minidl {

/// Options of a Dense layer (Keras' defaults).
struct DenseOptions {
  Initializer kernel_initializer = Initializer::glorot_uniform;
  bool use_bias = true;
  /// With a seed the kernel is drawn from Rng(*seed) as soon as the number of
  /// inputs is known (in the constructor if it takes it), and initialize()
  /// redraws the same kernel. Without one the layer is not initialized()
  /// until initialize(rng) (Sequential::add calls it).
  std::optional<std::uint64_t> seed;
  /// Penalties added to the loss (regularizers.hpp): on the kernel, on the bias, on the output. (The {}
  /// keep DenseOptions{initializer, use_bias, seed}, written before they existed, free of -Wextra warnings.)
  std::optional<Regularizer> kernel_regularizer{}, bias_regularizer{}, activity_regularizer{};
};

template <class Scalar>
class Dense : public KernelLayer<Dense<Scalar>, Scalar> {
  using Base = KernelLayer<Dense<Scalar>, Scalar>;

 public:
  /// `units` outputs; the number of inputs is fixed later by build() or
  /// Sequential::add from a (features) input (Keras's Dense(units)). Throws
  /// ValueError unless units > 0.
  explicit Dense(Index units, Activation activation = Activation::linear, DenseOptions options = {})
      : Base(settings(activation, options), options.activity_regularizer), units_(checked("units", units)) {}
  /// Throws ValueError naming the argument unless inputs > 0 and units > 0,
  /// ShapeError if inputs·units exceeds max_elements.
  Dense(Index inputs, Index units, Activation activation = Activation::linear, DenseOptions options = {})
      : Dense(units, activation, options) {
    this->build(Shape{checked("inputs", inputs)});
  }

  static constexpr const char* type_name = "Dense";
  const char* type() const override { return type_name; }

  LayerConfig config() const override {
    LayerConfig c;
    c.set("units", units_);
    this->add_settings(c);
    return c;
  }
  static Dense from_config(const LayerConfig& c) {
    const Index units = c.positive("units");
    const KernelSettings s = Base::read_settings(c);
    return Dense(units, s.activation,
                 DenseOptions{s.kernel_initializer, s.use_bias, s.seed, s.kernel_regularizer, s.bias_regularizer, {}});
  }
  std::optional<std::vector<WeightShape>> weight_shapes(const Shape& input) const override {
    detail::checked_size(layer_label(*this) + ": kernel inputs x units", {input.size(), units_});
    return this->kernel_and_bias(Shape{input.size(), units_}, "inputs x units");
  }

  /// Draws the kernel with the kernel initializer (fan_in = inputs,
  /// fan_out = units) and zeroes the bias. A layer made with a seed draws from
  /// Rng(seed) and leaves `rng` untouched: its weights depend on its seed alone.
  void initialize(Rng& rng) override {
    if (!this->built())
      throw StateError(this->describe() + ": initialize() needs the number of inputs; call build(shape) first");
    this->draw_weights(&rng);
  }
  /// Keras's fans of a dense kernel: (inputs, units).
  std::pair<Index, Index> fans() const { return {this->kernel().rows(), units_}; }

  Index units() const { return units_; }

 protected:
  Shape build_impl(const Shape& input) override {
    if (input.rank() != 1)
      throw ShapeError(detail::message(layer_label(*this), ": expects input shape (None, inputs), got ", input.str(),
                                       "; put a Flatten before it"));
    detail::checked_size(layer_label(*this) + ": kernel inputs x units", {input.size(), units_});
    this->allocate(input.size(), units_);  // nothing above changed the layer
    return Shape{units_};
  }

  // Both phases compute the same function: y = act(x·W + b).
  void forward_training(const Matrix<Scalar>& x, Matrix<Scalar>& y) override { this->apply(x, y); }
  void forward_inference(const Matrix<Scalar>& x, Matrix<Scalar>& y) override { this->apply(x, y); }

  void backward_impl(const Matrix<Scalar>& x, const Matrix<Scalar>& dy, Matrix<Scalar>* dx) override {
    const Matrix<Scalar>& dz = this->activation_gradient(dy);  // N x units
    this->weight_gradients(x, dz);                             // dW = xᵀ·dz, db = Σ_n dz[n, :]
    if (dx) this->rows_gradient(dz, *dx);                      // dx = dz·Wᵀ  (N x inputs)
  }

 private:
  static Index checked(const char* argument, Index value) {
    if (value <= 0) throw ValueError(detail::message("Dense: ", argument, " must be > 0, got ", value));
    return value;
  }
  static KernelSettings settings(Activation activation, const DenseOptions& o) {
    return {activation, o.use_bias, o.kernel_initializer, o.seed, o.kernel_regularizer, o.bias_regularizer};
  }
  Index units_;
};

}  // namespace minidl
