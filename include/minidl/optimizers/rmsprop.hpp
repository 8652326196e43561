// minidl — RMSprop, in Keras 3's default form (momentum = 0, centered = False;
// the momentum and centered variants are not implemented).
//
//   v ← ρ·v + (1 − ρ)·g²
//   θ ← θ − lr·g/sqrt(v + ε)
// Keras 3 (keras/src/optimizers/rmsprop.py) adds ε *inside* the square root,
// as TensorFlow's ApplyRMSProp does. PyTorch uses lr·g/(sqrt(v) + ε) with
// ε = 1e-8; the two differ when gradients are small (v comparable to ε).
#pragma once

#include <memory>
#include <vector>

#include "optimizer.hpp"
#include "slots.hpp"

namespace minidl {

template <class Scalar>
class RMSprop : public Optimizer<Scalar> {
 public:
  /// Keras defaults. rho must be in [0, 1), epsilon > 0.
  explicit RMSprop(Scalar learning_rate = Scalar(1e-3), Scalar rho = Scalar(0.9), Scalar epsilon = Scalar(1e-7))
      : Optimizer<Scalar>("RMSprop", learning_rate), rho_(rho), epsilon_(epsilon) {
    this->check_unit_interval("rho", rho);
    this->check_positive("epsilon", epsilon);
  }

  Scalar rho() const { return rho_; }
  Scalar epsilon() const { return epsilon_; }

  std::unique_ptr<Optimizer<Scalar>> clone() const override { return std::make_unique<RMSprop>(*this); }

  void update(std::size_t slot, Eigen::Map<Vector<Scalar>> value, Eigen::Map<const Vector<Scalar>> grad) override {
    slots_.check_update(*this, slot, value.size(), grad.size());
    const auto g = grad.array();
    auto v = slots_(slot, 0).array();
    v = rho_ * v + (Scalar(1) - rho_) * g.square();                      // v ← ρ·v + (1 − ρ)·g²
    value.array() -= this->learning_rate() * g / (v + epsilon_).sqrt();  // θ ← θ − lr·g/sqrt(v + ε)
  }

 protected:
  void build_slots(const std::vector<Index>& sizes) override { slots_.build(this->type(), sizes, 1); }

 private:
  Scalar rho_, epsilon_;
  detail::OptimizerSlots<Scalar> slots_;  // per slot: v (moving mean of g²)
};

}  // namespace minidl
