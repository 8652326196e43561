// minidl — activation functions.
//
// As in MiniDNN, each activation is a tiny policy with two functions:
//   forward:  y = f(z), elementwise (softmax: over groups of values of a row);
//   backward: dz = f'(z) ⊙ dy, computed from the *output* y where f' is a
//             function of y, so that a layer keeps nothing but its output:
//               linear      f' = 1
//               relu        f' = [y > 0]            (0 at the kink, as TensorFlow)
//               sigmoid     f' = y (1 − y)
//               tanh        f' = 1 − y²
//               softmax     dz = y ⊙ (dy − Σ_j dy_j y_j)   (per normalized group)
//               leaky_relu  f' = 1 if y > 0, else negative_slope   (y > 0 ⇔ z > 0: the slope is ≥ 0)
//               elu         f' = 1 if y > 0, else y + alpha        (= alpha·e^z; alpha ≥ 0)
//               softplus    f' = σ(z) = 1 − e^(−y)
//               relu6       f' = [0 < y < 6]
//             GELU and SiLU are not monotonic, so y does not determine z:
//             their f' is computed from the *input* z. A policy says which
//             it reads (backward_reads_input); a layer keeps z only for those.
// Every function writes into storage the caller has sized (y may be z itself,
// dz may be dy itself) and allocates nothing.
//
// Parameters. leaky_relu (negative_slope), elu (alpha) and gelu (approximate)
// have parameters, held by their policy object. The enum, which is what names
// a fused activation of Dense or Conv2D ("leaky_relu"), stands for the
// function with keras.activations' defaults: negative_slope 0.2, alpha 1.0,
// approximate false; "gelu_approximate" is GELU's tanh approximation (the
// name keras_hub gives it). A layer (LeakyReLU, ELU, GELU) takes any valid
// parameter and saves it in its config; an invalid one is a ValueError.
//
// Softmax normalizes over each group of `axis` consecutive values of a row;
// axis = 0 means the whole row. Because batches are row-major and channels
// last, groups of the channel count are exactly Keras' softmax over the last
// axis of an image batch.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <initializer_list>
#include <iterator>
#include <string>

#include "error.hpp"
#include "layer_config.hpp"
#include "tensor.hpp"

namespace minidl {

enum class Activation {
  linear, relu, sigmoid, tanh, softmax, leaky_relu, elu, gelu, gelu_approximate, silu, softplus, relu6
};

/// Every activation, in declaration order.
inline constexpr std::initializer_list<Activation> all_activations = {
    Activation::linear,     Activation::relu, Activation::sigmoid,  Activation::tanh,
    Activation::softmax,    Activation::leaky_relu, Activation::elu, Activation::gelu,
    Activation::gelu_approximate, Activation::silu, Activation::softplus, Activation::relu6};

/// Keras' name of the activation: "linear", "relu", ..., "silu", "softplus", "relu6"
/// ("gelu_approximate": keras_hub's name of GELU's tanh approximation).
inline const char* to_string(Activation activation) {
  static const char* const names[] = {"linear", "relu", "sigmoid", "tanh", "softmax", "leaky_relu", "elu",
                                      "gelu", "gelu_approximate", "silu", "softplus", "relu6"};  // as declared
  const auto i = static_cast<std::size_t>(activation);
  return i < std::size(names) ? names[i] : "unknown";
}

/// The inverse of to_string(Activation), also taking Keras's alias "swish"
/// for silu; throws ValueError for an unknown name.
inline Activation activation_from_string(const std::string& name) {
  if (name == "swish") return Activation::silu;
  if (const auto a = detail::enum_named(name, all_activations)) return *a;
  throw ValueError(
      detail::message("unknown activation '", name, "', expected one of ", detail::choice_names(all_activations)));
}

namespace detail {

// What a policy without parameters has for check, write and read: nothing.
struct NoParameters {
  void check(const std::string& /*owner*/) const {}
  void write(LayerConfig& /*config*/) const {}
  void read(const LayerConfig& /*config*/) {}
};

// An elementwise activation given by scalar functions of its policy P:
// value(z) = f(z) and slope(v) = f'(z), where v is z if P::backward_reads_input,
// else y. Shared by the activations whose stable form needs branches (exp of
// only non-positive values, erfc), which Eigen's array expressions cannot say.
template <class P>
struct Elementwise {
  template <class Scalar>
  void forward(const Matrix<Scalar>& z, Matrix<Scalar>& y, Index /*axis*/) const {
    const P& p = static_cast<const P&>(*this);
    y.array() = z.array().unaryExpr([&p](Scalar v) { return p.value(v); });
  }
  template <class Scalar>
  void backward(const Matrix<Scalar>& kept, const Matrix<Scalar>& dy, Matrix<Scalar>& dz, Index /*axis*/) const {
    const P& p = static_cast<const P&>(*this);
    dz.array() = kept.array().unaryExpr([&p](Scalar v) { return p.slope(v); }) * dy.array();
  }
};

// σ(v) = 1 / (1 + e^(−v)), exponentiating only −|v| (no overflow).
template <class Scalar>
Scalar logistic(Scalar v) {
  const Scalar e = std::exp(-std::abs(v));
  return v >= 0 ? 1 / (1 + e) : e / (1 + e);
}

// A hyper-parameter must be finite and at least `minimum`, else ValueError
// naming the layer, the argument, the bound and the value.
inline void check_at_least(const std::string& owner, const char* argument, double value, double minimum) {
  if (!(std::isfinite(value) && value >= minimum))
    throw ValueError(message(owner, ": ", argument, " must be a finite number >= ", minimum, ", got ", value));
}

}  // namespace detail

/// One policy per activation; `axis` only matters for softmax. Policies are
/// objects holding their parameters (keras.activations' defaults unless given).
template <Activation A>
struct ActivationFunction;

template <>
struct ActivationFunction<Activation::linear> : detail::NoParameters {
  static constexpr bool backward_reads_input = false;
  // y = z
  template <class Scalar>
  static void forward(const Matrix<Scalar>& z, Matrix<Scalar>& y, Index /*axis*/) {
    if (&y != &z) y = z;
  }
  // dz = dy
  template <class Scalar>
  static void backward(const Matrix<Scalar>& /*y*/, const Matrix<Scalar>& dy, Matrix<Scalar>& dz, Index /*axis*/) {
    if (&dz != &dy) dz = dy;
  }
};

template <>
struct ActivationFunction<Activation::relu> : detail::NoParameters {
  static constexpr bool backward_reads_input = false;
  // y = max(z, 0)
  template <class Scalar>
  static void forward(const Matrix<Scalar>& z, Matrix<Scalar>& y, Index /*axis*/) {
    y.array() = z.array().max(Scalar(0));
  }
  // dz = [y > 0] ⊙ dy
  template <class Scalar>
  static void backward(const Matrix<Scalar>& y, const Matrix<Scalar>& dy, Matrix<Scalar>& dz, Index /*axis*/) {
    dz.array() = (y.array() > Scalar(0)).select(dy.array(), Scalar(0));
  }
};

template <>
struct ActivationFunction<Activation::sigmoid> : detail::NoParameters {
  static constexpr bool backward_reads_input = false;
  // y = 1 / (1 + exp(−z)); Eigen's logistic() neither overflows nor loses
  // precision for large |z|.
  template <class Scalar>
  static void forward(const Matrix<Scalar>& z, Matrix<Scalar>& y, Index /*axis*/) {
    y.array() = z.array().logistic();
  }
  // dz = y (1 − y) ⊙ dy
  template <class Scalar>
  static void backward(const Matrix<Scalar>& y, const Matrix<Scalar>& dy, Matrix<Scalar>& dz, Index /*axis*/) {
    dz.array() = y.array() * (Scalar(1) - y.array()) * dy.array();
  }
};

template <>
struct ActivationFunction<Activation::tanh> : detail::NoParameters {
  static constexpr bool backward_reads_input = false;
  // y = tanh(z)
  template <class Scalar>
  static void forward(const Matrix<Scalar>& z, Matrix<Scalar>& y, Index /*axis*/) {
    y.array() = z.array().tanh();
  }
  // dz = (1 − y²) ⊙ dy
  template <class Scalar>
  static void backward(const Matrix<Scalar>& y, const Matrix<Scalar>& dy, Matrix<Scalar>& dz, Index /*axis*/) {
    dz.array() = (Scalar(1) - y.array().square()) * dy.array();
  }
};

template <>
struct ActivationFunction<Activation::softmax> : detail::NoParameters {
  static constexpr bool backward_reads_input = false;
  // y_i = exp(z_i − max_j z_j) / Σ_k exp(z_k − max_j z_j) over each group.
  // Subtracting the maximum keeps every exponent ≤ 0: no overflow, and the
  // largest term is 1, so the denominator is ≥ 1 (no division by zero).
  template <class Scalar>
  static void forward(const Matrix<Scalar>& z, Matrix<Scalar>& y, Index axis) {
    const auto zg = groups(z, axis);
    auto yg = groups(y, axis);
    for (Index r = 0; r < zg.rows(); ++r) {
      const Scalar max = zg.row(r).maxCoeff();
      yg.row(r).array() = (zg.row(r).array() - max).exp();
      yg.row(r) /= yg.row(r).sum();
    }
  }
  // dz = y ⊙ (dy − Σ_j dy_j y_j): the softmax Jacobian diag(y) − y yᵀ applied
  // to dy, without forming it.
  template <class Scalar>
  static void backward(const Matrix<Scalar>& y, const Matrix<Scalar>& dy, Matrix<Scalar>& dz, Index axis) {
    const auto yg = groups(y, axis);
    const auto dyg = groups(dy, axis);
    auto dzg = groups(dz, axis);
    for (Index r = 0; r < yg.rows(); ++r) {
      const Scalar dot = yg.row(r).dot(dyg.row(r));
      dzg.row(r).array() = yg.row(r).array() * (dyg.row(r).array() - dot);
    }
  }

 private:
  // The batch (N x cols) viewed as (N·cols/axis) x axis: rows are contiguous,
  // so each group of `axis` values of a row becomes one row of the view.
  template <class Scalar>
  static Eigen::Map<const Matrix<Scalar>> groups(const Matrix<Scalar>& m, Index axis) {
    const Index width = axis > 0 ? axis : m.cols();
    return {m.data(), width > 0 ? m.size() / width : 0, width};
  }
  template <class Scalar>
  static Eigen::Map<Matrix<Scalar>> groups(Matrix<Scalar>& m, Index axis) {
    const Index width = axis > 0 ? axis : m.cols();
    return {m.data(), width > 0 ? m.size() / width : 0, width};
  }
};

template <>
struct ActivationFunction<Activation::leaky_relu> : detail::Elementwise<ActivationFunction<Activation::leaky_relu>> {
  static constexpr bool backward_reads_input = false;
  double negative_slope;  // keras.activations.leaky_relu's default 0.2 (the LeakyReLU layer's: 0.3)

  ActivationFunction(double negative_slope = 0.2) : negative_slope(negative_slope) {}  // implicit: LeakyReLU(0.1)
  // Keras's layer rejects a negative slope (for which y > 0 would not mean z > 0).
  void check(const std::string& owner) const { detail::check_at_least(owner, "negative_slope", negative_slope, 0); }
  void write(LayerConfig& config) const { config.set("negative_slope", negative_slope); }
  void read(const LayerConfig& config) { negative_slope = config.number("negative_slope"); }

  // y = z if z ≥ 0, else negative_slope·z
  template <class Scalar>
  Scalar value(Scalar z) const { return z >= 0 ? z : Scalar(negative_slope) * z; }
  template <class Scalar>
  Scalar slope(Scalar y) const { return y > 0 ? Scalar(1) : Scalar(negative_slope); }
};

template <>
struct ActivationFunction<Activation::elu> : detail::Elementwise<ActivationFunction<Activation::elu>> {
  static constexpr bool backward_reads_input = false;
  double alpha;  // Keras's default 1.0, for the function and the layer

  ActivationFunction(double alpha = 1.0) : alpha(alpha) {}  // implicit: ELU(0.5)
  // Keras documents alpha > 0 but checks nothing; minidl takes alpha ≥ 0
  // (0 is ReLU): then y ≤ 0 ⇔ z ≤ 0, where f' = alpha·e^z = y + alpha.
  void check(const std::string& owner) const { detail::check_at_least(owner, "alpha", alpha, 0); }
  void write(LayerConfig& config) const { config.set("alpha", alpha); }
  void read(const LayerConfig& config) { alpha = config.number("alpha"); }

  // y = z if z > 0, else alpha·(e^z − 1), with expm1: exact near 0
  template <class Scalar>
  Scalar value(Scalar z) const { return z > 0 ? z : Scalar(alpha) * std::expm1(z); }
  template <class Scalar>
  Scalar slope(Scalar y) const { return y > 0 ? Scalar(1) : y + Scalar(alpha); }
};

template <>
struct ActivationFunction<Activation::gelu> : detail::Elementwise<ActivationFunction<Activation::gelu>> {
  static constexpr bool backward_reads_input = true;
  bool approximate;  // keras.activations.gelu's default false (keras.ops.gelu's is true)

  ActivationFunction(bool approximate = false) : approximate(approximate) {}  // implicit: GELU(true)
  void check(const std::string& /*owner*/) const {}
  void write(LayerConfig& config) const { config.set("approximate", approximate); }
  void read(const LayerConfig& config) { approximate = config.boolean("approximate"); }

  // Exact: y = z·Φ(z), Φ(z) = erfc(−z/√2)/2: erfc keeps Φ's relative precision
  // for z ≪ 0, where Keras's 1 + erf(z/√2) cancels.
  // Approximate: y = z·(1 + tanh(u))/2 = z·σ(2u), u = √(2/π)(z + 0.044715 z³);
  // σ(2u) is that value without the cancellation of 1 + tanh(u).
  template <class Scalar>
  Scalar value(Scalar z) const { return z * cdf(z); }
  // Exact: f' = Φ(z) + z·φ(z). Approximate: f' = s + 2·s(1 − s)·z·u'(z) with
  // s = σ(2u); where s(1 − s) is 0 so is the second term (z·u' may overflow).
  template <class Scalar>
  Scalar slope(Scalar z) const {
    if (!approximate) return cdf(z) + z * std::exp(-z * z / 2) * Scalar(0.39894228040143267794);  // 1/√(2π)
    const Scalar s = cdf(z), st = s * detail::logistic(-2 * u(z));
    return st == 0 ? s : s + 2 * st * z * Scalar(0.79788456080286535588) * (1 + 3 * Scalar(0.044715) * z * z);
  }

 private:
  template <class Scalar>
  static Scalar u(Scalar z) { return Scalar(0.79788456080286535588) * (z + Scalar(0.044715) * z * z * z); }  // √(2/π)
  template <class Scalar>
  Scalar cdf(Scalar z) const {
    return approximate ? detail::logistic(2 * u(z)) : std::erfc(-z * Scalar(0.70710678118654752440)) / 2;  // 1/√2
  }
};

template <>
struct ActivationFunction<Activation::silu> : detail::NoParameters,
                                              detail::Elementwise<ActivationFunction<Activation::silu>> {
  static constexpr bool backward_reads_input = true;
  // y = z·σ(z)
  template <class Scalar>
  Scalar value(Scalar z) const { return z * detail::logistic(z); }
  // f' = σ(z)·(1 + z·σ(−z)): σ(−z) rather than 1 − σ(z), precise for z ≫ 0
  template <class Scalar>
  Scalar slope(Scalar z) const { return detail::logistic(z) * (1 + z * detail::logistic(-z)); }
};

template <>
struct ActivationFunction<Activation::softplus> : detail::NoParameters,
                                                  detail::Elementwise<ActivationFunction<Activation::softplus>> {
  static constexpr bool backward_reads_input = false;
  // y = log(1 + e^z) = max(z, 0) + log1p(e^(−|z|)): no overflow for z ≫ 0,
  // full precision (y ≈ e^z) for z ≪ 0
  template <class Scalar>
  Scalar value(Scalar z) const { return std::max(z, Scalar(0)) + std::log1p(std::exp(-std::abs(z))); }
  // f' = σ(z) = 1 − e^(−y), with expm1: precise where y is tiny
  template <class Scalar>
  Scalar slope(Scalar y) const { return -std::expm1(-y); }
};

template <>
struct ActivationFunction<Activation::relu6> : detail::NoParameters,
                                               detail::Elementwise<ActivationFunction<Activation::relu6>> {
  static constexpr bool backward_reads_input = false;
  // y = min(max(z, 0), 6); f' = [0 < y < 6]: 0 at both kinks, as TensorFlow
  template <class Scalar>
  Scalar value(Scalar z) const { return std::min(std::max(z, Scalar(0)), Scalar(6)); }
  template <class Scalar>
  Scalar slope(Scalar y) const { return y > 0 && y < 6 ? Scalar(1) : Scalar(0); }
};

namespace detail {
// f(policy) with the policy of `activation`, with keras.activations' default
// parameters (gelu_approximate: the gelu policy with approximate = true).
template <class F>
decltype(auto) with_activation(Activation activation, F&& f) {
  using A = Activation;
  switch (activation) {
    case A::linear: return f(ActivationFunction<A::linear>{});
    case A::relu: return f(ActivationFunction<A::relu>{});
    case A::sigmoid: return f(ActivationFunction<A::sigmoid>{});
    case A::tanh: return f(ActivationFunction<A::tanh>{});
    case A::softmax: return f(ActivationFunction<A::softmax>{});
    case A::leaky_relu: return f(ActivationFunction<A::leaky_relu>{});
    case A::elu: return f(ActivationFunction<A::elu>{});
    case A::gelu: return f(ActivationFunction<A::gelu>{});
    case A::gelu_approximate: return f(ActivationFunction<A::gelu>{true});
    case A::silu: return f(ActivationFunction<A::silu>{});
    case A::softplus: return f(ActivationFunction<A::softplus>{});
    case A::relu6: return f(ActivationFunction<A::relu6>{});
  }
  throw ValueError(message("unknown activation ", static_cast<int>(activation)));
}
}  // namespace detail

/// Whether the derivative is computed from the input z (gelu, gelu_approximate, silu) rather than the output y.
inline bool backward_reads_input(Activation activation) {
  return detail::with_activation(activation, [](auto function) { return function.backward_reads_input; });
}

/// y = f(z) for an activation chosen at run time, with keras.activations'
/// default parameters. `y` must already have z's size and may be `z` itself
/// (in place). Softmax normalizes over each group of `axis` consecutive values
/// of a row (0: the whole row); `axis` must divide the column count.
template <class Scalar>
void activate(Activation activation, const Matrix<Scalar>& z, Matrix<Scalar>& y, Index axis = 0) {
  detail::with_activation(activation, [&](auto function) { function.forward(z, y, axis); });
}

/// dz = f'(z) ⊙ dy from the activation's input z and output y = f(z), of which
/// only the one the derivative needs (backward_reads_input) is read: the other
/// may be empty. `dz` must already have y's size and may be `dy` itself.
template <class Scalar>
void activation_backward(Activation activation, const Matrix<Scalar>& z, const Matrix<Scalar>& y,
                         const Matrix<Scalar>& dy, Matrix<Scalar>& dz, Index axis = 0) {
  detail::with_activation(activation, [&](auto function) {
    function.backward(function.backward_reads_input ? z : y, dy, dz, axis);
  });
}

/// dz = f'(z) ⊙ dy from the output y alone: ValueError for an activation whose
/// derivative needs its input (backward_reads_input).
template <class Scalar>
void activation_backward(Activation activation, const Matrix<Scalar>& y, const Matrix<Scalar>& dy,
                         Matrix<Scalar>& dz, Index axis = 0) {
  if (backward_reads_input(activation))
    throw ValueError(detail::message("activation_backward: the derivative of ", to_string(activation),
                                     " needs its input z, not only its output y"));
  activation_backward(activation, y, y, dy, dz, axis);
}

}  // namespace minidl
