// minidl — Adam, in Keras 3's formulation, with its AMSGrad variant.
//
// At step t (= iterations(), starting at 1), with g the clipped gradient and θ
// already weight-decayed (optimizer.hpp):
//   α_t = lr·sqrt(1 − β2^t)/(1 − β1^t)
//   m ← m + (g − m)(1 − β1)
//   v ← v + (g² − v)(1 − β2)
//   amsgrad: v̂ ← max(v̂, v), and v̂ replaces v below
//   θ ← θ − α_t·m/(sqrt(v) + ε)
// PyTorch writes θ ← θ − lr·m̂/(sqrt(v̂) + ε) with bias-corrected m̂, v̂ and
// ε = 1e-8, which is the same as ε·sqrt(1 − β2^t) in place of ε above: the two
// differ when gradients are tiny (sqrt(v) comparable to ε). PyTorch's AMSGrad
// also keeps the maximum of the uncorrected v, as Keras.
#pragma once

#include <cmath>
#include <vector>

#include "optimizer.hpp"
#include "../threads.hpp"

namespace minidl {
namespace detail {

/// Adam's rule, shared by Adam and AdamW (which differ only in their name and
/// in AdamW's weight decay default, as in Keras, where AdamW subclasses Adam).
template <class Derived, class Scalar>
class AdamRule : public OptimizerBase<Derived, Scalar> {
 public:
  Scalar beta_1() const { return beta_1_; }
  Scalar beta_2() const { return beta_2_; }
  Scalar epsilon() const { return epsilon_; }
  bool amsgrad() const { return amsgrad_; }

 protected:
  /// beta_1 and beta_2 must be in [0, 1), epsilon > 0.
  AdamRule(const char* type, const LearningRate<Scalar>& learning_rate, Scalar beta_1, Scalar beta_2, Scalar epsilon,
           bool amsgrad)
      : OptimizerBase<Derived, Scalar>(type, learning_rate), beta_1_(beta_1), beta_2_(beta_2), epsilon_(epsilon),
        amsgrad_(amsgrad) {
    this->check_unit_interval("beta_1", beta_1);
    this->check_unit_interval("beta_2", beta_2);
    this->check_positive("epsilon", epsilon);
  }

  std::size_t state_vectors() const override { return amsgrad_ ? 3 : 2; }  // m, v (, v̂)

  void apply_update(std::size_t slot, Eigen::Map<Vector<Scalar>> value, Eigen::Map<const Vector<Scalar>> grad,
                    Scalar lr) override {
    // The powers are taken in Scalar, as Keras takes them in the variable's dtype.
    const auto t = static_cast<Scalar>(this->iterations());
    const Scalar one(1);
    const Scalar alpha = lr * std::sqrt(one - std::pow(beta_2_, t)) / (one - std::pow(beta_1_, t));
    Scalar* m = this->state(slot, 0).data();
    Scalar* v = this->state(slot, 1).data();
    Scalar* v_hat = amsgrad_ ? this->state(slot, 2).data() : nullptr;
    // One pass over memory: the updates run chunk by chunk, so m and v are
    // still in L1 when θ's update reads them (as separate whole-tensor
    // expressions they would be streamed from L2/L3 twice). Each chunk's
    // expressions are vectorized by Eigen; large tensors are split over the
    // threads.
    detail::for_each_chunk(value.size(), 1024, [&](Index begin, Index n) {
      const auto g = grad.segment(begin, n).array();
      auto m_ = Eigen::Map<Vector<Scalar>>(m + begin, n).array();
      auto v_ = Eigen::Map<Vector<Scalar>>(v + begin, n).array();
      m_ += (g - m_) * (one - beta_1_);       // m ← m + (g − m)(1 − β1)
      v_ += (g.square() - v_) * (one - beta_2_);  // v ← v + (g² − v)(1 − β2)
      auto theta = value.segment(begin, n).array();
      if (v_hat) {
        auto v_hat_ = Eigen::Map<Vector<Scalar>>(v_hat + begin, n).array();
        v_hat_ = v_hat_.max(v_);                                // v̂ ← max(v̂, v)
        theta -= alpha * m_ / (v_hat_.sqrt() + epsilon_);  // θ ← θ − α_t·m/(sqrt(v̂) + ε)
      } else {
        theta -= alpha * m_ / (v_.sqrt() + epsilon_);  // θ ← θ − α_t·m/(sqrt(v) + ε)
      }
    });
  }

 private:
  Scalar beta_1_, beta_2_, epsilon_;
  bool amsgrad_;
};

}  // namespace detail

template <class Scalar>
class Adam : public detail::AdamRule<Adam<Scalar>, Scalar> {
 public:
  /// Keras defaults, and Keras's argument order.
  explicit Adam(LearningRate<Scalar> learning_rate = Scalar(1e-3), Scalar beta_1 = Scalar(0.9),
                Scalar beta_2 = Scalar(0.999), Scalar epsilon = Scalar(1e-7), bool amsgrad = false)
      : detail::AdamRule<Adam, Scalar>("Adam", learning_rate, beta_1, beta_2, epsilon, amsgrad) {}
};

}  // namespace minidl
