// minidl — Dropout (inverted dropout, as Keras and PyTorch).
//
//   training:  y = x ⊙ m,  m_i = 0 with probability rate, else 1 / (1 − rate)
//   inference: y = x
// Scaling the kept values at training time keeps E[y] = x, so inference needs
// no rescaling. rate = 0 is the identity in both phases.
//
// Only the phase matters: the frozen flag has no effect (as in Keras, where
// trainable=False does not switch Dropout off).
//
// Randomness: the layer owns its generator, seeded from `seed` if given, else
// by initialize(rng) with a seed split from `rng` (Sequential::add passes the
// model's generator). Value i of the batch (row-major order) is dropped when
// the i-th uniform double of the stream (Rng::uniform, 53 bits) is < rate, so
// the probability is rate up to 2^-53; an inference call draws nothing.
// That test is made on integers: u = k·2^-53 with k = next() >> 11, and
// u < rate exactly when k < ceil(rate·2^53) (scaling by 2^53 is exact), so the
// masks are bit for bit those of the comparison of doubles.
// Copies (clone) carry the generator state along, so a copy draws the same
// masks as the original from then on.
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>

#include "../layer.hpp"

namespace minidl {

template <class Scalar>
class Dropout : public LayerBase<Dropout<Scalar>, Scalar> {
 public:
  /// Throws ValueError naming Dropout and the rate unless 0 <= rate < 1.
  explicit Dropout(double rate, std::optional<std::uint64_t> seed = {}) : rate_(checked_rate(rate)), seed_(seed) {
    if (seed_) rng_.reseed(*seed_);
  }

  const char* type() const override { return "Dropout"; }

  double rate() const { return rate_; }
  /// Changes the rate for later calls; throws ValueError (rate unchanged)
  /// unless 0 <= rate < 1.
  void set_rate(double rate) { rate_ = checked_rate(rate, this->describe()); }
  const std::optional<std::uint64_t>& seed() const { return seed_; }

  /// Seeds the layer's generator: from Rng(seed) again if the layer has a
  /// seed (leaving `rng` untouched), else with a seed split from `rng`.
  void initialize(Rng& rng) override {
    rng_.reseed(seed_ ? *seed_ : rng.split());
    has_generator_ = true;
  }
  bool initialized() const override { return has_generator_; }

  /// The mask of the last training-phase forward (N x features): each value
  /// is 0 (dropped) or 1 / (1 − rate) (kept). Empty before the first one, and
  /// not redrawn when rate is 0.
  const Matrix<Scalar>& mask() const { return mask_; }

 protected:
  // y = x ⊙ m, with a fresh mask m drawn from the layer's generator.
  void forward_training(const Matrix<Scalar>& x, Matrix<Scalar>& y) override {
    drop_ = rate_ > 0;
    if (!drop_) {
      y = x;
      return;
    }
    mask_.resize(x.rows(), x.cols());  // no-op while the batch size stays the same
    // Value i is dropped when next() >> 11 < threshold (see the top of the
    // file). The comparison indexes a table instead of branching (a branch
    // mispredicted on every other value costs more than the draw), and the
    // mask is applied in the same pass.
    const Scalar value[2] = {Scalar(0), static_cast<Scalar>(1.0 / (1.0 - rate_))};  // dropped, kept
    const auto threshold = static_cast<std::uint64_t>(std::ceil(std::ldexp(rate_, 53)));
    Scalar* m = mask_.data();
    const Scalar* in = x.data();
    Scalar* out = y.data();
    for (Index i = 0; i < mask_.size(); ++i) {
      m[i] = value[(rng_.next() >> 11) >= threshold];
      out[i] = in[i] * m[i];  // y = x ⊙ m
    }
  }

  // y = x: dropout is only active while training.
  void forward_inference(const Matrix<Scalar>& x, Matrix<Scalar>& y) override { y = x; }

  // dx = dy ⊙ m, the same mask and scale as the forward pass.
  void backward_impl(const Matrix<Scalar>& /*x*/, const Matrix<Scalar>& dy, Matrix<Scalar>* dx) override {
    if (!dx) return;
    if (drop_)
      dx->array() = dy.array() * mask_.array();
    else
      *dx = dy;
  }

 private:
  static double checked_rate(double rate, const std::string& who = "Dropout") {
    if (!(rate >= 0 && rate < 1))  // also rejects NaN
      throw ValueError(detail::message(who, ": rate must be in [0, 1), got ", rate));
    return rate;
  }

  double rate_;                         // probability of dropping each value
  std::optional<std::uint64_t> seed_;   // the layer's own seed, if any
  Rng rng_;                             // the mask generator
  bool has_generator_ = seed_.has_value();
  bool drop_ = false;                   // whether the last training forward drew a mask
  Matrix<Scalar> mask_;                 // N x features: 0 or 1 / (1 − rate)
};

}  // namespace minidl
