// minidl — learning-rate schedules, Keras 3's (keras.optimizers.schedules).
//
// A schedule maps the optimizer's step count to a learning rate. Pass one
// wherever an optimizer takes a learning rate: Adam<float>(ExponentialDecay<float>(0.1, 1000, 0.96)).
// As in Keras, the step is the number of updates taken before this one: the
// first training step uses schedule(0). Every formula is evaluated in Scalar,
// as Keras evaluates it in the dtype of initial_learning_rate (float32), with
// s = the step:
//   ExponentialDecay        lr0·rate^p,                     p = s/decay_steps (floor(p) if staircase)
//   InverseTimeDecay        lr0/(1 + rate·p),                p as above
//   PiecewiseConstantDecay  values[0] for s <= boundaries[0], values[i] for boundaries[i-1] < s <= boundaries[i],
//                           values.back() for s > boundaries.back()
//   PolynomialDecay         (lr0 − end)·(1 − s/D)^power + end, s clipped to D = decay_steps; with cycle, s is
//                           not clipped and D = decay_steps·ceil(s/decay_steps) (·1 at s = 0)
//   CosineDecay             lr0·((1 − alpha)·c + alpha), c = 0.5·(1 + cos(π·min(s, D)/D));
//                           with warmup_target T: s clipped to D + W (W = warmup_steps); for s < W the rate is
//                           (T − lr0)·s/W + lr0, after that the cosine decay above from T, at s − W
// An optimizer driven by a schedule refuses set_learning_rate(), as Keras
// refuses to assign its learning_rate (TypeError there).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "../error.hpp"
#include "checks.hpp"

namespace minidl {

template <class Scalar>
class LearningRateSchedule {
 public:
  virtual ~LearningRateSchedule() = default;
  /// The learning rate for the update that follows `step` earlier updates.
  virtual Scalar operator()(std::int64_t step) const = 0;
  /// "ExponentialDecay", ...: how messages name the schedule.
  virtual const char* name() const = 0;
};

template <class Scalar>
class ExponentialDecay : public LearningRateSchedule<Scalar> {
 public:
  ExponentialDecay(Scalar initial_learning_rate, Scalar decay_steps, Scalar decay_rate, bool staircase = false)
      : initial_(initial_learning_rate), decay_steps_(decay_steps), decay_rate_(decay_rate), staircase_(staircase) {
    detail::check_positive(name(), "initial_learning_rate", initial_learning_rate);
    detail::check_positive(name(), "decay_steps", decay_steps);
    detail::check_positive(name(), "decay_rate", decay_rate);
  }
  Scalar operator()(std::int64_t step) const override {
    Scalar p = static_cast<Scalar>(step) / decay_steps_;
    if (staircase_) p = std::floor(p);
    return initial_ * std::pow(decay_rate_, p);
  }
  const char* name() const override { return "ExponentialDecay"; }

 private:
  Scalar initial_, decay_steps_, decay_rate_;
  bool staircase_;
};

template <class Scalar>
class InverseTimeDecay : public LearningRateSchedule<Scalar> {
 public:
  InverseTimeDecay(Scalar initial_learning_rate, Scalar decay_steps, Scalar decay_rate, bool staircase = false)
      : initial_(initial_learning_rate), decay_steps_(decay_steps), decay_rate_(decay_rate), staircase_(staircase) {
    detail::check_positive(name(), "initial_learning_rate", initial_learning_rate);
    detail::check_positive(name(), "decay_steps", decay_steps);
    detail::check_non_negative(name(), "decay_rate", decay_rate);
  }
  Scalar operator()(std::int64_t step) const override {
    Scalar p = static_cast<Scalar>(step) / decay_steps_;
    if (staircase_) p = std::floor(p);
    return initial_ / (Scalar(1) + decay_rate_ * p);
  }
  const char* name() const override { return "InverseTimeDecay"; }

 private:
  Scalar initial_, decay_steps_, decay_rate_;
  bool staircase_;
};

template <class Scalar>
class PiecewiseConstantDecay : public LearningRateSchedule<Scalar> {
 public:
  /// boundaries strictly increasing, one fewer than values; values finite and >= 0.
  PiecewiseConstantDecay(std::vector<std::int64_t> boundaries, std::vector<Scalar> values)
      : boundaries_(std::move(boundaries)), values_(std::move(values)) {
    if (boundaries_.empty() || boundaries_.size() + 1 != values_.size())
      throw ValueError(detail::message(name(), ": boundaries must have one element fewer than values (and at least "
                                               "one), got ", boundaries_.size(), " boundaries and ", values_.size(),
                                       " values"));
    for (std::size_t i = 1; i < boundaries_.size(); ++i)
      if (!(boundaries_[i - 1] < boundaries_[i]))
        throw ValueError(detail::message(name(), ": boundaries must be strictly increasing, got boundaries[", i - 1,
                                         "] = ", boundaries_[i - 1], " and boundaries[", i, "] = ", boundaries_[i]));
    for (Scalar v : values_) detail::check_non_negative(name(), "every one of values", v);
  }
  Scalar operator()(std::int64_t step) const override {
    std::size_t i = 0;
    while (i < boundaries_.size() && step > boundaries_[i]) ++i;  // the first boundary >= step
    return values_[i];
  }
  const char* name() const override { return "PiecewiseConstantDecay"; }

 private:
  std::vector<std::int64_t> boundaries_;
  std::vector<Scalar> values_;
};

template <class Scalar>
class PolynomialDecay : public LearningRateSchedule<Scalar> {
 public:
  /// Keras defaults: end_learning_rate 1e-4, power 1 (linear), no cycle.
  PolynomialDecay(Scalar initial_learning_rate, Scalar decay_steps, Scalar end_learning_rate = Scalar(1e-4),
                  Scalar power = Scalar(1), bool cycle = false)
      : initial_(initial_learning_rate), decay_steps_(decay_steps), end_(end_learning_rate), power_(power),
        cycle_(cycle) {
    detail::check_positive(name(), "initial_learning_rate", initial_learning_rate);
    detail::check_positive(name(), "decay_steps", decay_steps);
    detail::check_non_negative(name(), "end_learning_rate", end_learning_rate);
    detail::check_positive(name(), "power", power);
  }
  Scalar operator()(std::int64_t step) const override {
    Scalar s = static_cast<Scalar>(step);
    Scalar d = decay_steps_;
    if (cycle_)
      d *= step == 0 ? Scalar(1) : std::ceil(s / decay_steps_);  // the first multiple of decay_steps >= s
    else
      s = std::min(s, d);
    return (initial_ - end_) * std::pow(Scalar(1) - s / d, power_) + end_;
  }
  const char* name() const override { return "PolynomialDecay"; }

 private:
  Scalar initial_, decay_steps_, end_, power_;
  bool cycle_;
};

template <class Scalar>
class CosineDecay : public LearningRateSchedule<Scalar> {
 public:
  /// Keras defaults: alpha 0, no warm-up. With a warmup_target, the rate rises
  /// linearly from initial_learning_rate (often 0) to it over warmup_steps,
  /// then decays from it.
  CosineDecay(Scalar initial_learning_rate, Scalar decay_steps, Scalar alpha = Scalar(0),
              std::optional<Scalar> warmup_target = std::nullopt, Scalar warmup_steps = Scalar(0))
      : initial_(initial_learning_rate), decay_steps_(decay_steps), alpha_(alpha), warmup_target_(warmup_target),
        warmup_steps_(warmup_steps) {
    detail::check_non_negative(name(), "initial_learning_rate", initial_learning_rate);
    detail::check_positive(name(), "decay_steps", decay_steps);
    detail::check_fraction(name(), "alpha", alpha);
    if (warmup_target) detail::check_non_negative(name(), "warmup_target", *warmup_target);
    detail::check_non_negative(name(), "warmup_steps", warmup_steps);
  }
  Scalar operator()(std::int64_t step) const override {
    const Scalar s = static_cast<Scalar>(step);
    if (!warmup_target_) return decayed(std::min(s, decay_steps_), initial_);
    const Scalar t = std::min(s, decay_steps_ + warmup_steps_);
    if (t < warmup_steps_) return (*warmup_target_ - initial_) * (t / warmup_steps_) + initial_;
    return decayed(t - warmup_steps_, *warmup_target_);
  }
  const char* name() const override { return "CosineDecay"; }

 private:
  Scalar decayed(Scalar s, Scalar from) const {
    const Scalar pi = static_cast<Scalar>(3.14159265358979323846);
    const Scalar cosine = Scalar(0.5) * (Scalar(1) + std::cos(pi * (s / decay_steps_)));
    return from * ((Scalar(1) - alpha_) * cosine + alpha_);
  }

  Scalar initial_, decay_steps_, alpha_;
  std::optional<Scalar> warmup_target_;
  Scalar warmup_steps_;
};

/// What an optimizer takes as its learning rate: a number, or a schedule
/// (copied; schedules are immutable, so copies of the optimizer share it).
template <class Scalar>
class LearningRate {
 public:
  LearningRate(Scalar value) : value_(value) {}  // NOLINT: implicit, so Adam<float>(1e-3) reads as before
  template <class Schedule,
            std::enable_if_t<std::is_base_of_v<LearningRateSchedule<Scalar>, Schedule>, int> = 0>
  LearningRate(const Schedule& schedule) : schedule_(std::make_shared<Schedule>(schedule)) {}  // NOLINT
  LearningRate(std::shared_ptr<const LearningRateSchedule<Scalar>> schedule) : schedule_(std::move(schedule)) {
    if (!schedule_) throw ValueError("LearningRate: the schedule must not be null");
  }

  /// The schedule, or null for a constant rate.
  const std::shared_ptr<const LearningRateSchedule<Scalar>>& schedule() const { return schedule_; }
  /// The constant rate (unused with a schedule).
  Scalar value() const { return value_; }

 private:
  Scalar value_ = 0;
  std::shared_ptr<const LearningRateSchedule<Scalar>> schedule_;
};

}  // namespace minidl
