// minidl benchmarks — the hand-written plain-Eigen reference: the maths of
// Dense, BatchNorm and Adam written directly as Eigen expressions, with no
// layer objects, no virtual calls and no checks. It is the ceiling that
// minidl's abstractions should come close to (a_eigen.cpp, b_eigen.cpp).
//
// Same conventions as minidl, so both compute the same function with the same
// amount of arithmetic: row-major batches (one sample per row), kernels
// inputs x units, Keras's BatchNorm (momentum 0.99, ε 1e-3, biased batch
// variance) and Keras's Adam (ε 1e-7 added to sqrt(v), bias correction folded
// into the step size). Random numbers come from minidl::Rng only so that the
// dropout masks cost what minidl's cost.
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <minidl/random.hpp>

namespace bench::ref {

using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;  // N x features
using Row = Eigen::RowVectorXf;                                                     // one value per feature

/// Glorot (Xavier) uniform: U(−l, l), l = sqrt(6 / (fan_in + fan_out)).
inline Mat glorot_uniform(Eigen::Index inputs, Eigen::Index units, minidl::Rng& rng) {
  const double limit = std::sqrt(6.0 / static_cast<double>(inputs + units));
  Mat w(inputs, units);
  for (Eigen::Index i = 0; i < w.size(); ++i) w.data()[i] = static_cast<float>(rng.uniform(-limit, limit));
  return w;
}

/// A dense layer's weights and gradients: z = x·W + b.
struct Dense {
  Mat w, dw;  // inputs x units
  Row b, db;  // units

  Dense(Eigen::Index inputs, Eigen::Index units, minidl::Rng& rng)
      : w(glorot_uniform(inputs, units, rng)), dw(Mat::Zero(inputs, units)), b(Row::Zero(units)), db(Row::Zero(units)) {}

  void forward(const Mat& x, Mat& z) const {
    z.noalias() = x * w;
    z.rowwise() += b;
  }
  // dW = xᵀ·dz, db = Σ_rows dz; dx = dz·Wᵀ when the layer below needs it.
  void backward(const Mat& x, const Mat& dz, Mat* dx) {
    dw.noalias() = x.transpose() * dz;
    db.noalias() = dz.colwise().sum();
    if (dx) dx->noalias() = dz * w.transpose();
  }
};

/// BatchNorm over the rows of an N x C batch, Keras's defaults.
struct BatchNorm {
  static constexpr float momentum = 0.99f, epsilon = 1e-3f;
  Row gamma, beta, dgamma, dbeta, moving_mean, moving_var;
  Row mean, var, inv_std;  // of the last training batch
  Mat xhat;                // N x C: (x − μ)·inv_std of the last training batch
  Row scale;               // scratch: a per-feature factor

  explicit BatchNorm(Eigen::Index c)
      : gamma(Row::Ones(c)), beta(Row::Zero(c)), dgamma(Row::Zero(c)), dbeta(Row::Zero(c)),
        moving_mean(Row::Zero(c)), moving_var(Row::Ones(c)) {}

  // y = γ·x̂ + β, x̂ = (x − μ_B)/sqrt(σ²_B + ε); moving ← m·moving + (1 − m)·batch.
  void forward_training(const Mat& x, Mat& y) {
    const auto n = static_cast<float>(x.rows());
    mean.noalias() = x.colwise().sum() / n;
    xhat = x.rowwise() - mean;
    var.noalias() = xhat.array().square().colwise().sum().matrix() / n;
    inv_std = (var.array() + epsilon).rsqrt();
    xhat.array().rowwise() *= inv_std.array();
    y = (xhat.array().rowwise() * gamma.array()).rowwise() + beta.array();
    moving_mean = momentum * moving_mean + (1 - momentum) * mean;
    moving_var = momentum * moving_var + (1 - momentum) * var;
  }
  void forward_inference(const Mat& x, Mat& y) {
    scale = gamma.array() * (moving_var.array() + epsilon).rsqrt();
    y = ((x.rowwise() - moving_mean).array().rowwise() * scale.array()).rowwise() + beta.array();
  }
  // dβ = Σ dy, dγ = Σ dy⊙x̂, dx = γ·inv_std/n · (n·dy − dβ − x̂⊙dγ).
  void backward(const Mat& dy, Mat& dx) {
    const auto n = static_cast<float>(dy.rows());
    dbeta.noalias() = dy.colwise().sum();
    dgamma.noalias() = dy.cwiseProduct(xhat).colwise().sum();
    scale = gamma.array() * inv_std.array() / n;
    dx = (((n * dy.array()).rowwise() - dbeta.array()) - xhat.array().rowwise() * dgamma.array()).rowwise() *
         scale.array();
  }
};

/// Adam, Keras's formulation, one (m, v) pair per tensor.
class Adam {
 public:
  explicit Adam(float learning_rate) : learning_rate_(learning_rate) {}

  /// Starts step t + 1: α_t = lr·sqrt(1 − β2ᵗ)/(1 − β1ᵗ).
  void begin_step() {
    ++t_;
    alpha_ = learning_rate_ * std::sqrt(1 - std::pow(beta_2, static_cast<float>(t_))) /
             (1 - std::pow(beta_1, static_cast<float>(t_)));
  }
  /// m ← m + (g − m)(1 − β1); v ← v + (g² − v)(1 − β2); θ ← θ − α_t·m/(sqrt(v) + ε).
  /// m and v start as zeros of θ's shape.
  template <class Param>
  void update(Param& theta, const Param& grad, Param& m, Param& v) const {
    m.array() += (grad.array() - m.array()) * (1 - beta_1);
    v.array() += (grad.array().square() - v.array()) * (1 - beta_2);
    theta.array() -= alpha_ * m.array() / (v.array().sqrt() + epsilon);
  }

 private:
  static constexpr float beta_1 = 0.9f, beta_2 = 0.999f, epsilon = 1e-7f;
  float learning_rate_, alpha_ = 0;
  int t_ = 0;
};

/// Adam's two moment tensors for a Dense layer.
struct DenseSlots {
  Mat mw, vw;
  Row mb, vb;
  explicit DenseSlots(const Dense& d)
      : mw(Mat::Zero(d.w.rows(), d.w.cols())), vw(mw), mb(Row::Zero(d.b.size())), vb(mb) {}
  void update(const Adam& adam, Dense& d) {
    adam.update(d.w, d.dw, mw, vw);
    adam.update(d.b, d.db, mb, vb);
  }
};

}  // namespace bench::ref
