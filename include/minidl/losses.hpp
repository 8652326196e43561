// minidl — losses, with the formulas of Keras 3.
//
// Every loss is a small value type: `MeanSquaredError{}`,
// `CategoricalCrossentropy{true}` (from logits), `BinaryCrossentropy{false, 0.1}`
// (label smoothing 0.1), `Huber{2.0}`. Calling it returns the batch
// mean of the per-sample loss, as Keras's default reduction
// ("sum_over_batch_size") does:
//   L = (1/N) Σ_i ℓ(p_i, t_i)      p: y_pred, t: y_true, both N x C
// where the element-wise losses (MSE, MAE, Huber, binary cross-entropy) take
// the mean over the last axis, as Keras does, and the categorical
// cross-entropies sum over it. SparseCategoricalCrossentropy takes y_true as
// N x 1 class indices (0 .. C − 1) instead of one-hot rows.
// If `grad` is not null it receives dL/dy_pred (N x C) of that batch mean; it
// is resized only if its shape differs, so a steady-state call allocates
// nothing. `grad` must not alias y_true. With per-sample weights w (a fourth
// argument, N finite values >= 0) the loss is Keras's weighted
//   L = (1/N) Σ_i w_i ℓ(p_i, t_i)
// (still divided by N, not by Σ w: "sum_over_batch_size").
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
// Sparse labels must be whole numbers in [0, C), checked the same way.
//
// Label smoothing (Keras's): binary t' = t(1 − s) + s/2, categorical
// t' = t(1 − s) + s/C, applied to the targets before the loss; s in [0, 1].
#pragma once

#include <array>
#include <cmath>
#include <type_traits>

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

/// (1/N) Σ_i w_i·row_loss(i) (w_i = 1 without sample weights: Keras's
/// "sum_over_batch_size" divides by N, not by Σ w), accumulated in double so a
/// large batch of float losses keeps its precision.
template <class Scalar, class RowLoss>
Scalar mean_over_rows(Index rows, RowLoss&& row_loss, const Vector<Scalar>* sample_weight) {
  double total = 0;
  if (sample_weight)
    for (Index i = 0; i < rows; ++i)
      total += static_cast<double>(row_loss(i)) * static_cast<double>((*sample_weight)(i));
  else
    for (Index i = 0; i < rows; ++i) total += static_cast<double>(row_loss(i));
  return static_cast<Scalar>(total / static_cast<double>(rows));
}

/// Throws unless `w` holds one finite, non-negative weight per sample of a batch of `rows`.
template <class Scalar>
void check_sample_weight(const char* what, const Vector<Scalar>& w, Index rows) {
  if (w.size() != rows)
    throw ShapeError(message(what, ": sample_weight has ", w.size(), " values, expected ", rows, " (one per sample)"));
  for (Index i = 0; i < rows; ++i)
    if (!(w(i) >= 0) || !std::isfinite(w(i)))
      throw ValueError(message(what, ": sample_weight holds ", w(i), " at index ", i,
                               ", expected a finite weight >= 0"));
}

/// What every loss shares: `loss(y_pred, y_true, &grad, &sample_weight)`
/// checks the weights, lets the loss's compute() work with them (each row's
/// loss times its weight), then weighs each row of the gradient the same way.
/// Call the loss itself: compute() skips the checks and the gradient's weights.
template <class Loss>
struct LossBase {
  // Scalar comes from y_pred alone, so that nullptr may stand for either pointer.
  template <class Scalar>
  Scalar operator()(const Matrix<Scalar>& y_pred, const std::common_type_t<Matrix<Scalar>>& y_true,
                    std::common_type_t<Matrix<Scalar>>* grad = nullptr,
                    const std::common_type_t<Vector<Scalar>>* sample_weight = nullptr) const {
    const Loss& loss = static_cast<const Loss&>(*this);
    if (sample_weight) check_sample_weight(loss.type(), *sample_weight, y_pred.rows());
    const Scalar value = loss.compute(y_pred, y_true, grad, sample_weight);
    if (grad && sample_weight) grad->array().colwise() *= sample_weight->array();
    return value;
  }
};

/// Throws ValueError unless 0 <= label_smoothing <= 1 (Keras's range).
inline double checked_label_smoothing(const char* loss, double label_smoothing) {
  if (!(label_smoothing >= 0 && label_smoothing <= 1))
    throw ValueError(message(loss, ": label_smoothing must be in [0, 1], got ", label_smoothing));
  return label_smoothing;
}

/// What the binary and categorical cross-entropies share: from_logits, a
/// checked label smoothing, and their targets' range.
template <class Loss>
struct SmoothedCrossentropy : LossBase<Loss> {
  bool from_logits = false;
  double label_smoothing = 0;

  SmoothedCrossentropy(bool from_logits_, double label_smoothing_, const char* type)
      : from_logits(from_logits_), label_smoothing(checked_label_smoothing(type, label_smoothing_)) {}
  /// Targets are probabilities (soft labels allowed).
  static constexpr std::array<double, 2> target_range() { return {0.0, 1.0}; }
};

/// Validates, then sizes `grad` like y_pred (a no-op when it already is).
template <class Scalar>
void prepare_loss(const char* what, const Matrix<Scalar>& y_pred, const Matrix<Scalar>& y_true,
                  Matrix<Scalar>* grad) {
  check_same_shape(what, y_pred, y_true);
  if (grad) grad->resize(y_pred.rows(), y_pred.cols());
}

}  // namespace detail

/// ℓ(p, t) = mean_j (p_j − t_j)²  (Keras "mean_squared_error").
struct MeanSquaredError : detail::LossBase<MeanSquaredError> {
  const char* type() const { return "MeanSquaredError"; }
  const char* name() const { return "mean_squared_error"; }

  template <class Scalar>
  Scalar compute(const Matrix<Scalar>& y_pred, const Matrix<Scalar>& y_true, Matrix<Scalar>* grad,
                 const Vector<Scalar>* sample_weight) const {
    detail::prepare_loss(type(), y_pred, y_true, grad);
    const Index n = y_pred.rows(), c = y_pred.cols();
    const Scalar loss = detail::mean_over_rows<Scalar>(
        n, [&](Index i) { return (y_pred.row(i) - y_true.row(i)).squaredNorm() / static_cast<Scalar>(c); },
        sample_weight);
    // dL/dp = 2 (p − t) / (N·C)
    if (grad) grad->array() = (y_pred - y_true).array() * static_cast<Scalar>(2.0 / static_cast<double>(n * c));
    return loss;
  }
};

/// ℓ(p, t) = mean_j |p_j − t_j|  (Keras "mean_absolute_error").
struct MeanAbsoluteError : detail::LossBase<MeanAbsoluteError> {
  const char* type() const { return "MeanAbsoluteError"; }
  const char* name() const { return "mean_absolute_error"; }

  template <class Scalar>
  Scalar compute(const Matrix<Scalar>& y_pred, const Matrix<Scalar>& y_true, Matrix<Scalar>* grad,
                 const Vector<Scalar>* sample_weight) const {
    detail::prepare_loss(type(), y_pred, y_true, grad);
    const Index n = y_pred.rows(), c = y_pred.cols();
    const Scalar loss = detail::mean_over_rows<Scalar>(
        n, [&](Index i) { return (y_pred.row(i) - y_true.row(i)).cwiseAbs().sum() / static_cast<Scalar>(c); },
        sample_weight);
    // dL/dp = sign(p − t) / (N·C), with sign(0) = 0 (the subgradient TensorFlow uses)
    if (grad) grad->array() = (y_pred - y_true).array().sign() * static_cast<Scalar>(1.0 / static_cast<double>(n * c));
    return loss;
  }
};

/// ℓ(p, t) = mean_j h(p_j − t_j),  h(e) = e²/2 if |e| <= δ, else δ|e| − δ²/2
/// (Keras "huber_loss", δ = `delta` = 1 by default, > 0).
struct Huber : detail::LossBase<Huber> {
  double delta = 1;

  explicit Huber(double delta_ = 1) : delta(delta_) {
    if (!(delta > 0) || !std::isfinite(delta))
      throw ValueError(detail::message("Huber: delta must be a finite number > 0, got ", delta));
  }

  const char* type() const { return "Huber"; }
  const char* name() const { return "huber_loss"; }

  template <class Scalar>
  Scalar compute(const Matrix<Scalar>& y_pred, const Matrix<Scalar>& y_true, Matrix<Scalar>* grad,
                 const Vector<Scalar>* sample_weight) const {
    detail::prepare_loss(type(), y_pred, y_true, grad);
    const Index n = y_pred.rows(), c = y_pred.cols();
    const auto d = static_cast<Scalar>(delta), half = Scalar(0.5);
    const Scalar loss = detail::mean_over_rows<Scalar>(n, [&](Index i) {
      const auto e = (y_pred.row(i) - y_true.row(i)).array();
      return (e.abs() <= d).select(half * e.square(), d * e.abs() - half * d * d).sum() / static_cast<Scalar>(c);
    }, sample_weight);
    // dL/dp = clip(p − t, −δ, δ) / (N·C)
    if (grad)
      grad->array() = (y_pred - y_true).array().max(-d).min(d) * static_cast<Scalar>(1.0 / static_cast<double>(n * c));
    return loss;
  }
};

/// Binary cross-entropy, mean over the last axis (Keras "binary_crossentropy").
///   from probabilities: ℓ = −mean_j [t log p̃ + (1 − t) log(1 − p̃)],  p̃ = clip(p, ε, 1 − ε)
///   from logits z:      ℓ = mean_j [max(z, 0) − z·t + log1p(exp(−|z|))]   (no overflow for any z)
struct BinaryCrossentropy : detail::SmoothedCrossentropy<BinaryCrossentropy> {
  /// label_smoothing s: the targets become t(1 − s) + s/2.
  explicit BinaryCrossentropy(bool from_logits_ = false, double label_smoothing_ = 0)
      : SmoothedCrossentropy(from_logits_, label_smoothing_, "BinaryCrossentropy") {}

  const char* type() const { return "BinaryCrossentropy"; }
  const char* name() const { return "binary_crossentropy"; }
  /// The activation whose outputs are this loss's probabilities (compile warns if from_logits follows it).
  static constexpr const char* probability_activation() { return "sigmoid"; }

  template <class Scalar>
  Scalar compute(const Matrix<Scalar>& y_pred, const Matrix<Scalar>& y_true, Matrix<Scalar>* grad,
                 const Vector<Scalar>* sample_weight) const {
    detail::prepare_loss(type(), y_pred, y_true, grad);
    const Index n = y_pred.rows(), c = y_pred.cols();
    const auto per_element = static_cast<Scalar>(1.0 / static_cast<double>(n * c));  // 1/(N·C)
    const Scalar one(1), lo = detail::keras_epsilon<Scalar>(), hi = one - lo;
    // t' = t(1 − s) + s/2 (with s = 0, exactly t)
    const auto keep = static_cast<Scalar>(1.0 - label_smoothing), add = static_cast<Scalar>(0.5 * label_smoothing);
    if (from_logits) {
      const Scalar loss = detail::mean_over_rows<Scalar>(n, [&](Index i) {
        const auto z = y_pred.row(i).array();
        const auto t = y_true.row(i).array() * keep + add;
        return (z.max(Scalar(0)) - z * t + (-z.abs()).exp().log1p()).sum() / static_cast<Scalar>(c);
      }, sample_weight);
      // dL/dz = (σ(z) − t') / (N·C)
      if (grad) grad->array() = (y_pred.array().logistic() - (y_true.array() * keep + add)) * per_element;
      return loss;
    }
    const Scalar loss = detail::mean_over_rows<Scalar>(n, [&](Index i) {
      const auto p = y_pred.row(i).array().max(lo).min(hi);
      const auto t = y_true.row(i).array() * keep + add;
      return -(t * p.log() + (one - t) * (one - p).log()).sum() / static_cast<Scalar>(c);
    }, sample_weight);
    if (grad) {
      // dL/dp = (−t'/p + (1 − t')/(1 − p)) / (N·C) where p is inside [ε, 1 − ε], else 0.
      // The clipped p̃ equals p wherever the value is used, and never divides by 0.
      const auto p = y_pred.array();
      const auto t = y_true.array() * keep + add;
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
struct CategoricalCrossentropy : detail::SmoothedCrossentropy<CategoricalCrossentropy> {
  /// label_smoothing s: the targets become t(1 − s) + s/C.
  explicit CategoricalCrossentropy(bool from_logits_ = false, double label_smoothing_ = 0)
      : SmoothedCrossentropy(from_logits_, label_smoothing_, "CategoricalCrossentropy") {}

  const char* type() const { return "CategoricalCrossentropy"; }
  const char* name() const { return "categorical_crossentropy"; }
  /// The activation whose outputs are this loss's probabilities (compile warns if from_logits follows it).
  static constexpr const char* probability_activation() { return "softmax"; }

  template <class Scalar>
  Scalar compute(const Matrix<Scalar>& y_pred, const Matrix<Scalar>& y_true, Matrix<Scalar>* grad,
                 const Vector<Scalar>* sample_weight) const {
    detail::prepare_loss(type(), y_pred, y_true, grad);
    const Index n = y_pred.rows();
    const auto per_sample = static_cast<Scalar>(1.0 / static_cast<double>(n));  // 1/N
    // t' = t(1 − s) + s/C (with s = 0, exactly t)
    const auto keep = static_cast<Scalar>(1.0 - label_smoothing);
    const auto add = static_cast<Scalar>(label_smoothing / static_cast<double>(y_pred.cols()));
    return detail::mean_over_rows<Scalar>(n, [&](Index i) {
      const auto t = y_true.row(i).array() * keep + add;
      return from_logits ? logits_row(y_pred, t, grad, i, per_sample)
                         : probabilities_row(y_pred, t, grad, i, per_sample);
    }, sample_weight);
  }

  // The rows below take the target row t as an expression (smoothed targets,
  // or SparseCategoricalCrossentropy's one-hot row), never a copy.
  // Row i from logits: ℓ = Σ_j t_j (m − z_j) + log(s)·Σ_j t_j,  s = Σ_j exp(z_j − m).
  // Subtracting m first keeps exp() ≤ 1 (no overflow) and keeps m − z_j exact
  // where lse − z_j would cancel.  dℓ/dz_k = softmax_k(z)·Σ_j t_j − t_k
  // (softmax − t for a one-hot or normalized t), scaled by 1/N.
  template <class Scalar, class Targets>
  static Scalar logits_row(const Matrix<Scalar>& y_pred, const Targets& t, Matrix<Scalar>* grad, Index i,
                           Scalar per_sample) {
    const auto z = y_pred.row(i).array();
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
  template <class Scalar, class Targets>
  static Scalar probabilities_row(const Matrix<Scalar>& y_pred, const Targets& t, Matrix<Scalar>* grad, Index i,
                                  Scalar per_sample) {
    const Scalar lo = detail::keras_epsilon<Scalar>(), hi = Scalar(1) - lo;
    const auto p = y_pred.row(i).array();
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

/// Categorical cross-entropy of integer labels (Keras
/// "sparse_categorical_crossentropy"): y_true is N x 1, each row a class index
/// k in [0, C), and row i's loss is CategoricalCrossentropy's with the one-hot
/// target e_k — the formulation of Keras's JAX and NumPy backends (its
/// TensorFlow backend clips before it normalizes, through the softmax of
/// log p̃, which differs only where a probability is clipped). Keras's
/// ignore_class is not supported.
struct SparseCategoricalCrossentropy : detail::LossBase<SparseCategoricalCrossentropy> {
  bool from_logits = false;

  explicit SparseCategoricalCrossentropy(bool from_logits_ = false) : from_logits(from_logits_) {}

  const char* type() const { return "SparseCategoricalCrossentropy"; }
  const char* name() const { return "sparse_categorical_crossentropy"; }
  /// The activation whose outputs are this loss's probabilities (compile warns if from_logits follows it).
  static constexpr const char* probability_activation() { return "softmax"; }
  /// y_true holds one class index per row, not a row per class.
  static constexpr bool sparse_labels = true;

  /// The first row of `labels` that is not a whole number in [0, classes), or −1.
  template <class Labels>
  static Index first_bad_label(const Labels& labels, Index classes) {
    for (Index i = 0; i < labels.size(); ++i) {
      const double label = static_cast<double>(labels(i));
      if (!(label >= 0 && label < static_cast<double>(classes)) || label != std::floor(label)) return i;
    }
    return -1;
  }

  template <class Scalar>
  Scalar compute(const Matrix<Scalar>& y_pred, const Matrix<Scalar>& y_true, Matrix<Scalar>* grad,
                 const Vector<Scalar>* sample_weight) const {
    const Index n = y_pred.rows(), classes = y_pred.cols();
    if (y_true.rows() != n || y_true.cols() != 1)
      throw ShapeError(detail::message(type(), ": y_true is ", y_true.rows(), " x ", y_true.cols(), ", expected ", n,
                                       " x 1 (a class index per row of y_pred)"));
    if (n == 0 || classes == 0)
      throw ValueError(detail::message(type(), ": got an empty batch (", n, " x ", classes, ")"));
    if (const Index row = first_bad_label(y_true.col(0), classes); row >= 0)
      throw ValueError(detail::message(type(), ": y_true holds ", y_true(row, 0), " at row ", row,
                                       ", expected a class index (a whole number in [0, ", classes - 1, "])"));
    if (grad) grad->resize(n, classes);
    const auto per_sample = static_cast<Scalar>(1.0 / static_cast<double>(n));  // 1/N
    return detail::mean_over_rows<Scalar>(n, [&](Index i) {
      const auto t = Eigen::Matrix<Scalar, 1, Eigen::Dynamic>::Unit(classes, static_cast<Index>(y_true(i, 0))).array();
      return from_logits ? CategoricalCrossentropy::logits_row(y_pred, t, grad, i, per_sample)
                         : CategoricalCrossentropy::probabilities_row(y_pred, t, grad, i, per_sample);
    }, sample_weight);
  }
};

}  // namespace minidl
