// minidl — AdamW: Adam (adam.hpp) with decoupled weight decay on by default,
// as Keras 3's AdamW (Loshchilov & Hutter, "Decoupled Weight Decay
// Regularization"). Each update, with lr the step's learning rate:
//   θ ← θ − θ·wd·lr, then Adam's step (optimizer.hpp, adam.hpp).
// Keras multiplies wd by the learning rate (schedule included); PyTorch's
// AdamW does too (θ ← θ − lr·wd·θ) but defaults to wd = 0.01, Keras to 0.004.
// Tensors are excluded by name with exclude_from_weight_decay({"bias", ...}).
#pragma once

#include "adam.hpp"

namespace minidl {

template <class Scalar>
class AdamW : public detail::AdamRule<AdamW<Scalar>, Scalar> {
 public:
  /// Keras defaults, and Keras's argument order (weight_decay second);
  /// weight_decay must be finite and >= 0.
  explicit AdamW(LearningRate<Scalar> learning_rate = Scalar(1e-3), Scalar weight_decay = Scalar(0.004),
                 Scalar beta_1 = Scalar(0.9), Scalar beta_2 = Scalar(0.999), Scalar epsilon = Scalar(1e-7),
                 bool amsgrad = false)
      : detail::AdamRule<AdamW, Scalar>("AdamW", learning_rate, beta_1, beta_2, epsilon, amsgrad) {
    this->set_weight_decay(weight_decay);
  }
};

}  // namespace minidl
