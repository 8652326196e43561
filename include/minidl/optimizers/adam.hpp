// minidl — Adam, in Keras 3's formulation.
//
// At step t (= iterations(), starting at 1):
//   α_t = lr·sqrt(1 − β2^t)/(1 − β1^t)
//   m ← m + (g − m)(1 − β1)
//   v ← v + (g² − v)(1 − β2)
//   θ ← θ − α_t·m/(sqrt(v) + ε)
// PyTorch writes θ ← θ − lr·m̂/(sqrt(v̂) + ε) with bias-corrected m̂, v̂ and
// ε = 1e-8, which is the same as ε·sqrt(1 − β2^t) in place of ε above: the two
// differ when gradients are tiny (sqrt(v) comparable to ε).
#pragma once

#include <cmath>
#include <memory>
#include <vector>

#include "optimizer.hpp"
#include "../threads.hpp"
#include "slots.hpp"

namespace minidl {

template <class Scalar>
class Adam : public Optimizer<Scalar> {
 public:
  /// Keras defaults. beta_1 and beta_2 must be in [0, 1), epsilon > 0.
  explicit Adam(Scalar learning_rate = Scalar(1e-3), Scalar beta_1 = Scalar(0.9), Scalar beta_2 = Scalar(0.999),
                Scalar epsilon = Scalar(1e-7))
      : Optimizer<Scalar>("Adam", learning_rate), beta_1_(beta_1), beta_2_(beta_2), epsilon_(epsilon) {
    this->check_unit_interval("beta_1", beta_1);
    this->check_unit_interval("beta_2", beta_2);
    this->check_positive("epsilon", epsilon);
  }

  Scalar beta_1() const { return beta_1_; }
  Scalar beta_2() const { return beta_2_; }
  Scalar epsilon() const { return epsilon_; }

  std::unique_ptr<Optimizer<Scalar>> clone() const override { return std::make_unique<Adam>(*this); }

  void update(std::size_t slot, Eigen::Map<Vector<Scalar>> value, Eigen::Map<const Vector<Scalar>> grad) override {
    slots_.check_update(*this, slot, value.size(), grad.size());
    // The powers are taken in Scalar, as Keras takes them in the variable's dtype.
    const auto t = static_cast<Scalar>(this->iterations());
    const Scalar one(1);
    const Scalar alpha = this->learning_rate() * std::sqrt(one - std::pow(beta_2_, t)) / (one - std::pow(beta_1_, t));
    Scalar* m = slots_(slot, 0).data();
    Scalar* v = slots_(slot, 1).data();
    // One pass over memory: the three updates run chunk by chunk, so m and v
    // are still in L1 when θ's update reads them (as separate whole-tensor
    // expressions they would be streamed from L2/L3 twice). Each chunk's
    // expressions are vectorized by Eigen; large tensors are split over the
    // threads.
    detail::for_each_chunk(value.size(), 1024, [&](Index begin, Index n) {
      const auto g = grad.segment(begin, n).array();
      auto m_ = Eigen::Map<Vector<Scalar>>(m + begin, n).array();
      auto v_ = Eigen::Map<Vector<Scalar>>(v + begin, n).array();
      m_ += (g - m_) * (one - beta_1_);                                        // m ← m + (g − m)(1 − β1)
      v_ += (g.square() - v_) * (one - beta_2_);                               // v ← v + (g² − v)(1 − β2)
      value.segment(begin, n).array() -= alpha * m_ / (v_.sqrt() + epsilon_);  // θ ← θ − α_t·m/(sqrt(v) + ε)
    });
  }

 protected:
  void build_slots(const std::vector<Index>& sizes) override { slots_.build(this->type(), sizes, 2); }

 private:
  Scalar beta_1_, beta_2_, epsilon_;
  detail::OptimizerSlots<Scalar> slots_;  // per slot: m (first moment), v (second moment)
};

}  // namespace minidl
