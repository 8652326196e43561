// minidl — losses, with the formulas of Keras 3.
//
// Every loss is a small value type: `MeanSquaredError{}`,
// `CategoricalCrossentropy{true}` (from logits). Calling it returns the batch
// mean of the per-sample loss, as Keras's default reduction
// ("sum_over_batch_size") does:
//   L = (1/N) Σ_i ℓ(p_i, t_i)      p: y_pred, t: y_true, both N x C
// where the element-wise losses (MSE, MAE, binary cross-entropy) take the mean
// over the last axis, as Keras does, and categorical cross-entropy sums over it.
// If `grad` is not null it receives dL/dy_pred (N x C) of that batch mean; it
// is resized only if its shape differs, so a steady-state call allocates
// nothing. `grad` must not alias y_true.
//
// Probabilities are clipped to [ε, 1 − ε] with Keras's backend ε = 1e-7; a
// clipped value has zero derivative (as TensorFlow differentiates
// clip_by_value), so a clipped probability gets no gradient through its own
// log term. The per-row losses are computed in Scalar, vectorized over the
// contiguous row, and summed over the batch in double.
//
// The cross-entropies' targets are probabilities: a loss that has a
// target_range() (here both cross-entropies: [0, 1]) has every target checked
// against it by fit, evaluate, train_on_batch and test_on_batch, so that class
// labels 0..9 given to binary_crossentropy are a ValueError, not a negative
// loss. (Keras does not check; its loss of such targets is as meaningless.)
#pragma once

#include <array>
#include <cmath>

#include "error.hpp"
#include "tensor.hpp"

namespace minidl {
namespace detail {

/// Keras's backend epsilon, the clipping bound of probabilities.
template <class Scalar>
constexpr Scalar keras_epsilon() {
  return static_cast<Scalar>(1e-7);
}

/// y_true must have y_pred's shape, and the batch must not be empty.
/// `what` names the caller in the message ("MeanSquaredError").
template <class Scalar>
void check_same_shape(const char* what, const Matrix<Scalar>& y_pred, const Matrix<Scalar>& y_true) {
  if (y_true.rows() != y_pred.rows() || y_true.cols() != y_pred.cols())
    throw ShapeError(message(what, ": y_true is ", y_true.rows(), " x ", y_true.cols(), ", expected ",
                             y_pred.rows(), " x ", y_pred.cols(), " (the shape of y_pred)"));
  if (y_pred.size() == 0)
    throw ValueError(message(what, ": got an empty batch (", y_pred.rows(), " x ", y_pred.cols(), ")"));
}

/// (1/N) Σ_i row_loss(i), accumulated in double so a large batch of float
/// losses keeps its precision.
template <class Scalar, class RowLoss>
Scalar mean_over_rows(Index rows, RowLoss&& row_loss) {
  double total = 0;
  for (Index i = 0; i < rows; ++i) total += static_cast<double>(row_loss(i));
  return static_cast<Scalar>(total / static_cast<double>(rows));
}

/// Validates, then sizes `grad` like y_pred (a no-op when it already is).
template <class Scalar>
void prepare_loss(const char* what, const Matrix<Scalar>& y_pred, const Matrix<Scalar>& y_true,
                  Matrix<Scalar>* grad) {
  check_same_shape(what, y_pred, y_true);
  if (grad) grad->resize(y_pred.rows(), y_pred.cols());
}

}  // namespace detail

/// ℓ(p, t) = mean_j (p_j − t_j)²  (Keras "mean_squared_error").
struct MeanSquaredError {
  const char* type() const { return "MeanSquaredError"; }
  const char* name() const { return "mean_squared_error"; }

  template <class Scalar>
  Scalar operator()(const Matrix<Scalar>& y_pred, const Matrix<Scalar>& y_true, Matrix<Scalar>* grad = nullptr) const {
    detail::prepare_loss(type(), y_pred, y_true, grad);
    const Index n = y_pred.rows(), c = y_pred.cols();
    const Scalar loss = detail::mean_over_rows<Scalar>(
        n, [&](Index i) { return (y_pred.row(i) - y_true.row(i)).squaredNorm() / static_cast<Scalar>(c); });
    // dL/dp = 2 (p − t) / (N·C)
    if (grad) grad->array() = (y_pred - y_true).array() * static_cast<Scalar>(2.0 / static_cast<double>(n * c));
    return loss;
  }
};

/// ℓ(p, t) = mean_j |p_j − t_j|  (Keras "mean_absolute_error").
struct MeanAbsoluteError {
  const char* type() const { return "MeanAbsoluteError"; }
  const char* name() const { return "mean_absolute_error"; }

  template <class Scalar>
  Scalar operator()(const Matrix<Scalar>& y_pred, const Matrix<Scalar>& y_true, Matrix<Scalar>* grad = nullptr) const {
    detail::prepare_loss(type(), y_pred, y_true, grad);
    const Index n = y_pred.rows(), c = y_pred.cols();
    const Scalar loss = detail::mean_over_rows<Scalar>(
        n, [&](Index i) { return (y_pred.row(i) - y_true.row(i)).cwiseAbs().sum() / static_cast<Scalar>(c); });
    // dL/dp = sign(p − t) / (N·C), with sign(0) = 0 (the subgradient TensorFlow uses)
    if (grad) grad->array() = (y_pred - y_true).array().sign() * static_cast<Scalar>(1.0 / static_cast<double>(n * c));
    return loss;
  }
};

/// Binary cross-entropy, mean over the last axis (Keras "binary_crossentropy").
///   from probabilities: ℓ = −mean_j [t log p̃ + (1 − t) log(1 − p̃)],  p̃ = clip(p, ε, 1 − ε)
///   from logits z:      ℓ = mean_j [max(z, 0) − z·t + log1p(exp(−|z|))]   (no overflow for any z)
struct BinaryCrossentropy {
  bool from_logits = false;

  const char* type() const { return "BinaryCrossentropy"; }
  const char* name() const { return "binary_crossentropy"; }
  /// Targets are probabilities (soft labels allowed).
  static constexpr std::array<double, 2> target_range() { return {0.0, 1.0}; }

  template <class Scalar>
  Scalar operator()(const Matrix<Scalar>& y_pred, const Matrix<Scalar>& y_true, Matrix<Scalar>* grad = nullptr) const {
    detail::prepare_loss(type(), y_pred, y_true, grad);
    const Index n = y_pred.rows(), c = y_pred.cols();
    const auto per_element = static_cast<Scalar>(1.0 / static_cast<double>(n * c));  // 1/(N·C)
    const Scalar one(1), lo = detail::keras_epsilon<Scalar>(), hi = one - lo;
    if (from_logits) {
      const Scalar loss = detail::mean_over_rows<Scalar>(n, [&](Index i) {
        const auto z = y_pred.row(i).array();
        const auto t = y_true.row(i).array();
        return (z.max(Scalar(0)) - z * t + (-z.abs()).exp().log1p()).sum() / static_cast<Scalar>(c);
      });
      // dL/dz = (σ(z) − t) / (N·C)
      if (grad) grad->array() = (y_pred.array().logistic() - y_true.array()) * per_element;
      return loss;
    }
    const Scalar loss = detail::mean_over_rows<Scalar>(n, [&](Index i) {
      const auto p = y_pred.row(i).array().max(lo).min(hi);
      const auto t = y_true.row(i).array();
      return -(t * p.log() + (one - t) * (one - p).log()).sum() / static_cast<Scalar>(c);
    });
    if (grad) {
      // dL/dp = (−t/p + (1 − t)/(1 − p)) / (N·C) where p is inside [ε, 1 − ε], else 0.
      // The clipped p̃ equals p wherever the value is used, and never divides by 0.
      const auto p = y_pred.array();
      const auto t = y_true.array();
      const auto clipped = p.max(lo).min(hi);
      grad->array() = (p < lo || p > hi).select(Scalar(0), ((one - t) / (one - clipped) - t / clipped) * per_element);
    }
    return loss;
  }
};

/// Categorical cross-entropy, summed over the last axis (Keras "categorical_crossentropy").
///   from probabilities: q = p / Σ_j p_j (Keras renormalizes each row),
///                       ℓ = −Σ_j t_j log q̃_j,  q̃ = clip(q, ε, 1 − ε)
///   from logits z:      ℓ = Σ_j t_j (lse(z) − z_j),  lse(z) = m + log Σ_j exp(z_j − m), m = max_j z_j
struct CategoricalCrossentropy {
  bool from_logits = false;

  const char* type() const { return "CategoricalCrossentropy"; }
  const char* name() const { return "categorical_crossentropy"; }
  /// Targets are probabilities (soft labels allowed).
  static constexpr std::array<double, 2> target_range() { return {0.0, 1.0}; }

  template <class Scalar>
  Scalar operator()(const Matrix<Scalar>& y_pred, const Matrix<Scalar>& y_true, Matrix<Scalar>* grad = nullptr) const {
    detail::prepare_loss(type(), y_pred, y_true, grad);
    const Index n = y_pred.rows();
    const auto per_sample = static_cast<Scalar>(1.0 / static_cast<double>(n));  // 1/N
    return detail::mean_over_rows<Scalar>(
        n, [&](Index i) { return from_logits ? logits_row(y_pred, y_true, grad, i, per_sample)
                                             : probabilities_row(y_pred, y_true, grad, i, per_sample); });
  }

 private:
  // Row i from logits: ℓ = Σ_j t_j (m − z_j) + log(s)·Σ_j t_j,  s = Σ_j exp(z_j − m).
  // Subtracting m first keeps exp() ≤ 1 (no overflow) and keeps m − z_j exact
  // where lse − z_j would cancel.  dℓ/dz_k = softmax_k(z)·Σ_j t_j − t_k
  // (softmax − t for a one-hot or normalized t), scaled by 1/N.
  template <class Scalar>
  static Scalar logits_row(const Matrix<Scalar>& y_pred, const Matrix<Scalar>& y_true, Matrix<Scalar>* grad, Index i,
                           Scalar per_sample) {
    const auto z = y_pred.row(i).array();
    const auto t = y_true.row(i).array();
    const Scalar m = z.maxCoeff();
    const Scalar t_sum = t.sum();
    Scalar s;
    if (grad) {
      auto g = grad->row(i).array();
      g = (z - m).exp();  // the gradient row holds exp(z − m) first: exp() is taken once
      s = g.sum();
      g = (g * (t_sum / s) - t) * per_sample;
    } else {
      s = (z - m).exp().sum();
    }
    return (t * (m - z)).sum() + std::log(s) * t_sum;
  }

  // Row i from probabilities, with S = Σ_j p_j and U the unclipped columns:
  //   dℓ/dp_k = −[k ∈ U]·t_k/p_k + (Σ_{j∈U} t_j)/S
  // (through q_j = p_j/S; clipped columns contribute a constant), scaled by 1/N.
  // For k ∈ U, p_k = q̃_k·S, which is how it is written below (no division by 0).
  template <class Scalar>
  static Scalar probabilities_row(const Matrix<Scalar>& y_pred, const Matrix<Scalar>& y_true, Matrix<Scalar>* grad,
                                  Index i, Scalar per_sample) {
    const Scalar lo = detail::keras_epsilon<Scalar>(), hi = Scalar(1) - lo;
    const auto p = y_pred.row(i).array();
    const auto t = y_true.row(i).array();
    const Scalar row_sum = p.sum();
    const auto q = p / row_sum;
    const auto clipped = q.max(lo).min(hi);
    if (grad) {
      const auto outside = q < lo || q > hi;
      const Scalar unclipped_t = outside.select(Scalar(0), t).sum();
      grad->row(i).array() = (outside.select(Scalar(0), -t / clipped) + unclipped_t) * (per_sample / row_sum);
    }
    return -(t * clipped.log()).sum();
  }
};

}  // namespace minidl
