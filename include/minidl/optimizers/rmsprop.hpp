// minidl — RMSprop, in Keras 3's form, with its momentum and centered variants.
//
// With g the clipped gradient and θ already weight-decayed (optimizer.hpp):
//   v ← ρ·v + (1 − ρ)·g²
//   centered:     a ← ρ·a + (1 − ρ)·g;  d = v − a² + ε     otherwise d = v + ε
//   increment = lr·g/sqrt(d)
//   momentum μ>0: s ← μ·s + increment;  θ ← θ − s           otherwise θ ← θ − increment
// Keras 3 (keras/src/optimizers/rmsprop.py) adds ε *inside* the square root,
// as TensorFlow's ApplyRMSProp does. PyTorch uses lr·g/(sqrt(v) + ε) with
// ε = 1e-8 (and sqrt(v − a²) + ε centered, s ← μ·s + g/(…) with lr outside);
// the two differ when gradients are small (v comparable to ε), and PyTorch's
// momentum buffer, like its SGD's, does not carry the learning rate.
//
// The positional order is (learning_rate, rho, epsilon, momentum, centered):
// minidl's first three came before the variants; Keras's is
// (learning_rate, rho, momentum, epsilon, centered).
#pragma once

#include <vector>

#include "optimizer.hpp"

namespace minidl {

template <class Scalar>
class RMSprop : public OptimizerBase<RMSprop<Scalar>, Scalar> {
 public:
  /// Keras defaults. rho and momentum must be in [0, 1), epsilon > 0.
  explicit RMSprop(LearningRate<Scalar> learning_rate = Scalar(1e-3), Scalar rho = Scalar(0.9),
                   Scalar epsilon = Scalar(1e-7), Scalar momentum = Scalar(0), bool centered = false)
      : OptimizerBase<RMSprop, Scalar>("RMSprop", learning_rate), rho_(rho), epsilon_(epsilon), momentum_(momentum),
        centered_(centered) {
    this->check_unit_interval("rho", rho);
    this->check_positive("epsilon", epsilon);
    this->check_unit_interval("momentum", momentum);
  }

  Scalar rho() const { return rho_; }
  Scalar epsilon() const { return epsilon_; }
  Scalar momentum() const { return momentum_; }
  bool centered() const { return centered_; }

 protected:
  // v, then s (with momentum), then a (centered).
  std::size_t state_vectors() const override { return 1 + (momentum_ > 0) + centered_; }

  void apply_update(std::size_t slot, Eigen::Map<Vector<Scalar>> value, Eigen::Map<const Vector<Scalar>> grad,
                    Scalar lr) override {
    const Scalar one(1);
    const auto g = grad.array();
    auto v = this->state(slot, 0).array();
    v = rho_ * v + (one - rho_) * g.square();  // v ← ρ·v + (1 − ρ)·g²
    if (centered_) {
      auto a = this->state(slot, momentum_ > 0 ? 2 : 1).array();
      a = rho_ * a + (one - rho_) * g;  // a ← ρ·a + (1 − ρ)·g
      step(slot, value, lr * g / ((v - a.square()) + epsilon_).sqrt());  // lr·g/sqrt(v − a² + ε)
    } else {
      step(slot, value, lr * g / (v + epsilon_).sqrt());  // lr·g/sqrt(v + ε)
    }
  }

 private:
  template <class Increment>
  void step(std::size_t slot, Eigen::Map<Vector<Scalar>>& value, const Increment& increment) {
    if (momentum_ > 0) {
      auto s = this->state(slot, 1).array();
      s = momentum_ * s + increment;  // s ← μ·s + increment
      value.array() -= s;             // θ ← θ − s
    } else {
      value.array() -= increment;  // θ ← θ − increment
    }
  }

  Scalar rho_, epsilon_, momentum_;
  bool centered_;
};

}  // namespace minidl
