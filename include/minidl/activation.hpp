// minidl — activation functions.
//
// As in MiniDNN, each activation is a tiny policy with two functions:
//   forward:  y = f(z), elementwise (softmax: over groups of values of a row);
//   backward: dz = f'(z) ⊙ dy, computed from the *output* y, which is what the
//             layer keeps after its forward pass (no copy of z is needed):
//               linear   f' = 1
//               relu     f' = [y > 0]            (0 at the kink, as TensorFlow)
//               sigmoid  f' = y (1 − y)
//               tanh     f' = 1 − y²
//               softmax  dz = y ⊙ (dy − Σ_j dy_j y_j)   (per normalized group)
// Every function writes into storage the caller has sized (y may be z itself,
// dz may be dy itself) and allocates nothing.
//
// Softmax normalizes over each group of `axis` consecutive values of a row;
// axis = 0 means the whole row. Because batches are row-major and channels
// last, groups of the channel count are exactly Keras' softmax over the last
// axis of an image batch.
#pragma once

#include <string>

#include "error.hpp"
#include "tensor.hpp"

namespace minidl {

enum class Activation { linear, relu, sigmoid, tanh, softmax };

/// Keras' name of the activation: "linear", "relu", "sigmoid", "tanh", "softmax".
inline const char* to_string(Activation activation) {
  switch (activation) {
    case Activation::linear: return "linear";
    case Activation::relu: return "relu";
    case Activation::sigmoid: return "sigmoid";
    case Activation::tanh: return "tanh";
    case Activation::softmax: return "softmax";
  }
  return "unknown";
}

/// The inverse of to_string(Activation); throws ValueError for an unknown name.
inline Activation activation_from_string(const std::string& name) {
  const auto all = {Activation::linear, Activation::relu, Activation::sigmoid, Activation::tanh, Activation::softmax};
  if (const auto a = detail::enum_named(name, all)) return *a;
  throw ValueError(detail::message("unknown activation '", name, "', expected one of ", detail::choice_names(all)));
}

/// One policy per activation; `axis` only matters for softmax.
template <Activation A>
struct ActivationFunction;

template <>
struct ActivationFunction<Activation::linear> {
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
struct ActivationFunction<Activation::relu> {
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
struct ActivationFunction<Activation::sigmoid> {
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
struct ActivationFunction<Activation::tanh> {
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
struct ActivationFunction<Activation::softmax> {
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

/// y = f(z) for an activation chosen at run time. `y` must already have z's
/// size and may be `z` itself (in place). Softmax normalizes over each group of
/// `axis` consecutive values of a row (0: the whole row); `axis` must divide
/// the column count.
template <class Scalar>
void activate(Activation activation, const Matrix<Scalar>& z, Matrix<Scalar>& y, Index axis = 0) {
  switch (activation) {
    case Activation::linear: return ActivationFunction<Activation::linear>::forward(z, y, axis);
    case Activation::relu: return ActivationFunction<Activation::relu>::forward(z, y, axis);
    case Activation::sigmoid: return ActivationFunction<Activation::sigmoid>::forward(z, y, axis);
    case Activation::tanh: return ActivationFunction<Activation::tanh>::forward(z, y, axis);
    case Activation::softmax: return ActivationFunction<Activation::softmax>::forward(z, y, axis);
  }
}

/// dz = f'(z) ⊙ dy from the activation's output y = f(z). `dz` must already
/// have y's size and may be `dy` itself.
template <class Scalar>
void activation_backward(Activation activation, const Matrix<Scalar>& y, const Matrix<Scalar>& dy,
                         Matrix<Scalar>& dz, Index axis = 0) {
  switch (activation) {
    case Activation::linear: return ActivationFunction<Activation::linear>::backward(y, dy, dz, axis);
    case Activation::relu: return ActivationFunction<Activation::relu>::backward(y, dy, dz, axis);
    case Activation::sigmoid: return ActivationFunction<Activation::sigmoid>::backward(y, dy, dz, axis);
    case Activation::tanh: return ActivationFunction<Activation::tanh>::backward(y, dy, dz, axis);
    case Activation::softmax: return ActivationFunction<Activation::softmax>::backward(y, dy, dz, axis);
  }
}

}  // namespace minidl
