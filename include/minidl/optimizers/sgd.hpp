// minidl — stochastic gradient descent, with optional (Nesterov) momentum, as Keras 3.
//
//   plain:     θ ← θ − lr·g
//   momentum:  v ← μ·v − lr·g;  θ ← θ + v
//   Nesterov:  v ← μ·v − lr·g;  θ ← θ + μ·v − lr·g   (with the new v)
//
// The velocity v carries the learning rate inside it (Keras). PyTorch keeps
// b ← μ·b + g and steps θ ← θ − lr·b instead: the two agree while lr is
// constant and differ after lr changes (Keras's v remembers the old lr).
#pragma once

#include <memory>
#include <vector>

#include "optimizer.hpp"
#include "slots.hpp"

namespace minidl {

template <class Scalar>
class SGD : public Optimizer<Scalar> {
 public:
  /// Keras defaults: lr 0.01, momentum 0, no Nesterov. momentum must be in [0, 1).
  explicit SGD(Scalar learning_rate = Scalar(0.01), Scalar momentum = Scalar(0), bool nesterov = false)
      : Optimizer<Scalar>("SGD", learning_rate), momentum_(momentum), nesterov_(nesterov) {
    this->check_unit_interval("momentum", momentum);
  }

  Scalar momentum() const { return momentum_; }
  bool nesterov() const { return nesterov_; }

  std::unique_ptr<Optimizer<Scalar>> clone() const override { return std::make_unique<SGD>(*this); }

  void update(std::size_t slot, Eigen::Map<Vector<Scalar>> value, Eigen::Map<const Vector<Scalar>> grad) override {
    slots_.check_update(*this, slot, value.size(), grad.size());
    const Scalar lr = this->learning_rate();
    const auto g = grad.array();
    if (momentum_ == 0) {
      value.array() -= lr * g;  // θ ← θ − lr·g
      return;
    }
    auto v = slots_(slot, 0).array();
    v = momentum_ * v - lr * g;  // v ← μ·v − lr·g
    if (nesterov_)
      value.array() += momentum_ * v - lr * g;  // θ ← θ + μ·v − lr·g
    else
      value.array() += v;  // θ ← θ + v
  }

 protected:
  // Plain SGD keeps no state, only the slot sizes (to check update() calls).
  void build_slots(const std::vector<Index>& sizes) override {
    slots_.build(this->type(), sizes, momentum_ == 0 ? 0 : 1);
  }

 private:
  Scalar momentum_;
  bool nesterov_;
  detail::OptimizerSlots<Scalar> slots_;  // per slot: v (velocity), only with momentum
};

}  // namespace minidl
