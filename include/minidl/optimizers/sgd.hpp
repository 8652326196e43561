// minidl — stochastic gradient descent, with optional (Nesterov) momentum, as Keras 3.
//
//   plain:     θ ← θ − lr·g
//   momentum:  v ← μ·v − lr·g;  θ ← θ + v
//   Nesterov:  v ← μ·v − lr·g;  θ ← θ + μ·v − lr·g   (with the new v)
// g is the clipped gradient and θ already weight-decayed (optimizer.hpp).
//
// The velocity v carries the learning rate inside it (Keras). PyTorch keeps
// b ← μ·b + g and steps θ ← θ − lr·b instead: the two agree while lr is
// constant and differ after lr changes (Keras's v remembers the old lr).
#pragma once

#include <vector>

#include "optimizer.hpp"

namespace minidl {

template <class Scalar>
class SGD : public OptimizerBase<SGD<Scalar>, Scalar> {
 public:
  /// Keras defaults: lr 0.01, momentum 0, no Nesterov. momentum must be in [0, 1).
  explicit SGD(LearningRate<Scalar> learning_rate = Scalar(0.01), Scalar momentum = Scalar(0), bool nesterov = false)
      : OptimizerBase<SGD, Scalar>("SGD", learning_rate), momentum_(momentum), nesterov_(nesterov) {
    this->check_unit_interval("momentum", momentum);
  }

  Scalar momentum() const { return momentum_; }
  bool nesterov() const { return nesterov_; }

 protected:
  // Plain SGD keeps no state, only the slot sizes (to check update() calls).
  std::size_t state_vectors() const override { return momentum_ == 0 ? 0 : 1; }  // v

  void apply_update(std::size_t slot, Eigen::Map<Vector<Scalar>> value, Eigen::Map<const Vector<Scalar>> grad,
                    Scalar lr) override {
    const auto g = grad.array();
    if (momentum_ == 0) {
      value.array() -= lr * g;  // θ ← θ − lr·g
      return;
    }
    auto v = this->state(slot, 0).array();
    v = momentum_ * v - lr * g;  // v ← μ·v − lr·g
    if (nesterov_)
      value.array() += momentum_ * v - lr * g;  // θ ← θ + μ·v − lr·g
    else
      value.array() += v;  // θ ← θ + v
  }

 private:
  Scalar momentum_;
  bool nesterov_;
};

}  // namespace minidl
