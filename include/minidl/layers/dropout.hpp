// minidl — Dropout (inverted dropout, as Keras and PyTorch).
//
//   training:  y = x ⊙ m,  m_i = 0 with probability rate, else 1 / (1 − rate)
//   inference: y = x
// Scaling the kept values at training time keeps E[y] = x, so inference needs
// no rescaling. rate = 0 is the identity in both phases; rate = 1 drops every
// value (y = 0, and so dx = 0), as Keras 3 and PyTorch accept it.
//
// Only the phase matters: the frozen flag has no effect (as in Keras, where
// trainable=False does not switch Dropout off).
//
// Randomness: the layer owns its generator, seeded from `seed` if given, else
// by initialize(rng) with a seed split from `rng` (Sequential::add passes the
// model's generator). Each training call draws one 64-bit key from the
// layer's generator, and value i of the batch (row-major order) is dropped
// when u_i < rate, u_i = k·2^-53 with k the top 53 bits of splitmix64(key, i)
// (random.hpp), so the probability is rate up to 2^-53; an inference call
// draws nothing. The test is made on integers: u_i < rate exactly when
// k < ceil(rate·2^53) (scaling by 2^53 is exact). The mask depends on the key
// and the position alone, never on the thread count. In a data-parallel fit
// (replicas.hpp) every replica draws the same key and a shard's value i is
// value first_row·features + i of the global batch: the replicas together
// drop what one process drops on the whole batch.
// Copies (clone) carry the generator state along, so a copy draws the same
// masks as the original from then on; generator_state() reads it and
// set_generator_state() restores it (what BackupAndRestore saves).
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "../layer.hpp"
#include "../threads.hpp"

namespace minidl {

template <class Scalar>
class Dropout : public LayerBase<Dropout<Scalar>, Scalar> {
 public:
  /// Throws ValueError naming Dropout and the rate unless 0 <= rate <= 1.
  explicit Dropout(double rate, std::optional<std::uint64_t> seed = {}) : rate_(checked_rate(rate)), seed_(seed) {
    if (seed_) rng_.reseed(*seed_);
  }

  const char* type() const override { return "Dropout"; }
  LayerConfig config() const override {
    LayerConfig c;
    c.set("rate", rate_).set("seed", seed_);
    return c;
  }
  static Dropout from_config(const LayerConfig& c) { return Dropout(c.number("rate"), c.seed("seed")); }

  double rate() const { return rate_; }
  std::string phase_behaviour() const override {
    return "drops " + std::to_string(static_cast<int>(std::lround(rate_ * 100))) + "% of units";
  }
  /// Changes the rate for later calls; throws ValueError (rate unchanged)
  /// unless 0 <= rate <= 1.
  void set_rate(double rate) { rate_ = checked_rate(rate, this->describe()); }
  const std::optional<std::uint64_t>& seed() const { return seed_; }

  /// Seeds the layer's generator: from Rng(seed) again if the layer has a
  /// seed (leaving `rng` untouched), else with a seed split from `rng`.
  void initialize(Rng& rng) override {
    rng_.reseed(seed_ ? *seed_ : rng.split());
    has_generator_ = true;
  }
  bool initialized() const override { return has_generator_; }
  /// The mask generator's state (see Layer::generator_state); restoring it
  /// also counts as initializing the layer.
  std::vector<std::uint64_t> generator_state() const override { return this->generator_words(rng_); }
  void set_generator_state(const std::vector<std::uint64_t>& state) override {
    this->restore_generator(rng_, state);
    has_generator_ = true;
  }

  /// The mask of the last training-phase forward (N x features): each value
  /// is 0 (dropped) or 1 / (1 − rate) (kept; none are with rate 1). Empty before the first one, and
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
    // With rate 1 nothing is kept (threshold 2^53 exceeds every draw), and 1 / (1 − rate) is never formed.
    const Scalar kept = rate_ < 1 ? static_cast<Scalar>(1.0 / (1.0 - rate_)) : Scalar(0);
    // One key per batch; value i depends on (key, i) alone (see the top of
    // the file), so the chunks can run on several threads with the same mask
    // as on one, and the loop is vectorized (8 draws per instruction).
    const std::uint64_t key = rng_.next();
    const auto threshold = static_cast<std::uint64_t>(std::ceil(std::ldexp(rate_, 53)));
    const Scalar* in = x.data();
    Scalar* m = mask_.data();
    Scalar* out = y.data();
    const BatchShard* shard = this->batch_shard();
    const auto offset = static_cast<std::uint64_t>(shard ? shard->first_row * x.cols() : 0);
    detail::for_each_chunk(mask_.size(), chunk_values, [&](Index begin, Index n) {
      draw_mask(key, threshold, kept, offset, begin, begin + n, in, m, out);
    });
  }

  void forward_inference(const Matrix<Scalar>& x, Matrix<Scalar>& y) override {
    y = x;
    drop_ = false;  // a pinned Dropout's backward is the identity too
  }
  bool phases_differ_impl() const override { return rate_ > 0; }

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
    if (!(rate >= 0 && rate <= 1))  // also rejects NaN
      throw ValueError(detail::message(who, ": rate must be in [0, 1], got ", rate));
    return rate;
  }

  // m[i] and y[i] = x[i]·m[i] for i in [begin, end). A function of its own:
  // with every value a local, the compiler vectorizes the loop.
  static void draw_mask(std::uint64_t key, std::uint64_t threshold, Scalar kept, std::uint64_t offset, Index begin,
                        Index end, const Scalar* in, Scalar* m, Scalar* out) {
    for (Index i = begin; i < end; ++i) {
      const std::uint64_t position = offset + static_cast<std::uint64_t>(i);
      const Scalar mask = (splitmix64(key, position) >> 11) >= threshold ? kept : Scalar(0);
      m[i] = mask;
      out[i] = in[i] * mask;  // y = x ⊙ m
    }
  }

  double rate_;                         // probability of dropping each value
  std::optional<std::uint64_t> seed_;   // the layer's own seed, if any
  Rng rng_;                             // the mask generator
  bool has_generator_ = seed_.has_value();
  bool drop_ = false;                   // whether the last training forward drew a mask
  static constexpr Index chunk_values = 1 << 14;  // values per chunk of the parallel loop
  Matrix<Scalar> mask_;                 // N x features: 0 or 1 / (1 − rate)
};

}  // namespace minidl
