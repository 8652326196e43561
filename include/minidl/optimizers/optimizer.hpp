// minidl — the optimizer interface, and what every optimizer shares: the
// learning rate (a number or a schedule), decoupled weight decay and gradient
// clipping, in Keras 3's semantics (keras/src/optimizers/base_optimizer.py).
//
// Sequential builds one state slot per parameter tensor of the model at
// compile() time (so a training step allocates nothing), then for each
// training step calls begin_step() once, add_to_global_norm() for every
// gradient if needs_global_norm(), and update() for every parameter of every
// layer that is not frozen. Frozen layers are skipped entirely: their weights
// stay bitwise unchanged, their optimizer state does not move and their
// gradients do not count in the global norm.
//
// One update(), with lr the step's learning rate, in Keras's order:
//   1. clip the gradient g (at most one of the three may be set, as Keras):
//        clipnorm c         g ← g·c/max(‖g‖, c)          (‖g‖ of this tensor; a zero g stays zero)
//        global_clipnorm c  g ← g·c·min(1/N, 1/c)         (N = sqrt(Σ‖g‖²) over the step's gradients;
//                                                          an infinite or NaN N makes every g NaN)
//        clipvalue c        g ← clamp(g, −c, c)
//   2. weight decay wd:     θ ← θ − θ·wd·lr               (decoupled: not added to g; skipped for a tensor
//                                                          whose name contains one of exclude_from_weight_decay)
//   3. the optimizer's own rule with g and lr (sgd.hpp, adam.hpp, rmsprop.hpp).
// The step's lr is schedule(k) for the (k+1)-th step: Keras evaluates the
// schedule at its iteration count before incrementing it, so the first step
// uses schedule(0); iterations() counts begin_step() calls, and Adam's t is
// iterations() (Keras's iterations + 1).
//
// state() and set_state() read and restore everything a step carries to the
// next (the step count, every slot's vectors, a constant learning rate), so
// that a restored run continues bit for bit (io/backup_and_restore.hpp).
//
// The options are set with chaining setters, Keras's keyword arguments:
//   model.compile(loss, Adam<float>(1e-3).set_weight_decay(1e-4).exclude_from_weight_decay({"bias"}).set_clipnorm(1));
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../error.hpp"
#include "../tensor.hpp"
#include "checks.hpp"
#include "schedules.hpp"
#include "slots.hpp"

namespace minidl {

/// Everything an optimizer carries from one step to the next (Keras's
/// optimizer.variables): what resuming a run restores. `slots` holds
/// state_vectors() vectors per slot, slot-major (slot i's vector k at
/// i·state_vectors() + k); `learning_rate` is the constant rate, unset for an
/// optimizer whose rate follows a schedule (schedule(iterations) needs no state).
template <class Scalar>
struct OptimizerState {
  std::string type;  ///< Optimizer::type(): "Adam", ...
  std::int64_t iterations = 0;
  std::optional<Scalar> learning_rate;
  std::vector<Vector<Scalar>> slots;
};

template <class Scalar>
class Optimizer {
 public:
  virtual ~Optimizer() = default;

  /// "SGD", "Adam", "AdamW", "RMSprop".
  const char* type() const { return type_; }
  virtual std::unique_ptr<Optimizer> clone() const = 0;

  /// The current learning rate: the rate the next step will use (with a
  /// schedule, schedule(iterations()); Keras's optimizer.learning_rate).
  Scalar learning_rate() const { return schedule_ ? (*schedule_)(iterations_) : learning_rate_; }
  /// The schedule given to the constructor, or null for a constant rate.
  const LearningRateSchedule<Scalar>* learning_rate_schedule() const { return schedule_.get(); }
  /// May be called between epochs (or steps), e.g. from a callback. Throws
  /// StateError if the learning rate follows a schedule, as Keras refuses
  /// (TypeError) to assign the learning rate of such an optimizer.
  void set_learning_rate(Scalar learning_rate) {
    if (schedule_)
      throw StateError(detail::message(
          type_, ": set_learning_rate(", learning_rate, "): the learning rate follows the schedule ",
          schedule_->name(), " given to the constructor and cannot be set; construct the optimizer with a number "
          "as its learning rate to set it (LearningRateScheduler and ReduceLROnPlateau need one)"));
    check_positive("learning_rate", learning_rate);
    learning_rate_ = learning_rate;
    step_learning_rate_ = learning_rate;  // also for the rest of a step under way
  }

  /// Decoupled weight decay, or nullopt (Keras's None) for none.
  std::optional<Scalar> weight_decay() const { return weight_decay_; }
  /// Substrings: a tensor whose name contains one is not decayed.
  const std::vector<std::string>& excluded_from_weight_decay() const { return excluded_; }
  std::optional<Scalar> clipnorm() const { return clip_setting(Clip::norm); }
  std::optional<Scalar> clipvalue() const { return clip_setting(Clip::value); }
  std::optional<Scalar> global_clipnorm() const { return clip_setting(Clip::global_norm); }

  /// Number of training steps taken since build(); Adam's t.
  std::int64_t iterations() const { return iterations_; }

  /// The state that set_state() restores (a copy).
  OptimizerState<Scalar> state() const {
    return {type_, iterations_, schedule_ ? std::nullopt : std::optional<Scalar>(learning_rate_), slots_.vectors()};
  }
  /// Restores what state() of an optimizer of the same type, built for the
  /// same parameter sizes, returned: the next steps are then bit for bit the
  /// ones it would have taken. Throws, changing nothing: StateError before
  /// build(); ValueError for another type, a negative step count, a constant
  /// rate for a scheduled optimizer (or none for a constant one), or a NaN or
  /// infinite value; ShapeError for a slot count or size that differs. The
  /// settings (betas, clipping, ...) are not part of the state: they are the
  /// ones this optimizer was made with.
  void set_state(const OptimizerState<Scalar>& state) {
    if (state.type != type_)
      throw ValueError(detail::message(type_, ": set_state: the state is a ", state.type, " optimizer's, expected ",
                                       type_, "'s"));
    if (!slots_.built())
      throw StateError(detail::message(type_, ": set_state before build(); compile() builds the optimizer"));
    if (state.iterations < 0)
      throw ValueError(detail::message(type_, ": set_state: iterations must be >= 0, got ", state.iterations));
    if (schedule_ && state.learning_rate)
      throw ValueError(detail::message(type_, ": set_state: the state has the constant learning rate ",
                                       *state.learning_rate, ", but this optimizer's follows the schedule ",
                                       schedule_->name()));
    if (!schedule_ && !state.learning_rate)
      throw ValueError(detail::message(type_, ": set_state: the state has no learning rate (a scheduled "
                                              "optimizer's), but this optimizer's is the constant ", learning_rate_));
    if (state.learning_rate) check_positive("learning_rate", *state.learning_rate);
    slots_.check_vectors(type_, state.slots);
    slots_.assign(state.slots);
    iterations_ = state.iterations;
    if (state.learning_rate) learning_rate_ = step_learning_rate_ = *state.learning_rate;
    start_step_bookkeeping();
  }

  /// Allocates one zeroed state slot per parameter tensor (`sizes[i]` scalars
  /// for slot i), and the buffer clipping writes to; resets the step count.
  void build(const std::vector<Index>& sizes) {
    slots_.build(type_, sizes, state_vectors());
    clipped_.setZero(clip_ == Clip::none ? 0 : slots_.largest());
    iterations_ = 0;
    start_step_bookkeeping();
  }
  /// Starts a training step; the first step has iterations() == 1.
  void begin_step() {
    step_learning_rate_ = learning_rate();  // schedule(steps taken so far): the first step uses schedule(0)
    ++iterations_;
    start_step_bookkeeping();
  }
  /// True with global_clipnorm: then every gradient of the step must be passed
  /// to add_to_global_norm() after begin_step() and before the first update().
  bool needs_global_norm() const { return clip_ == Clip::global_norm; }
  void add_to_global_norm(Eigen::Map<const Vector<Scalar>> grad) {
    if (iterations_ == 0)
      throw StateError(detail::message(type_, ": add_to_global_norm() before begin_step()"));
    if (step_updates_ > 0)
      throw StateError(detail::message(type_, ": add_to_global_norm() after this step's first update(); the "
                                              "global norm must include every gradient before any is clipped"));
    global_squared_norm_ += grad.squaredNorm();
    ++global_norm_terms_;
  }
  /// Updates one parameter tensor in place from its gradient; `name` ("kernel",
  /// "bias", ...) is matched against exclude_from_weight_decay (an empty name
  /// matches none of them, so the tensor is decayed).
  void update(std::size_t slot, Eigen::Map<Vector<Scalar>> value, Eigen::Map<const Vector<Scalar>> grad,
              std::string_view name = {}) {
    slots_.check_update(type_, iterations_, slot, value.size(), grad.size());
    if (clip_ == Clip::global_norm && global_norm_terms_ == 0)
      throw StateError(detail::message(type_, ": update() with global_clipnorm before add_to_global_norm(); pass "
                                              "every gradient of the step to add_to_global_norm() first"));
    ++step_updates_;
    const Eigen::Map<const Vector<Scalar>> g = clip(grad);
    if (weight_decay_ && decays(name))
      value.array() -= value.array() * *weight_decay_ * step_learning_rate_;  // θ ← θ − θ·wd·lr
    apply_update(slot, value, g, step_learning_rate_);
  }

 protected:
  /// `type` names the optimizer in error messages (the constructor cannot ask a
  /// virtual function yet).
  Optimizer(const char* type, const LearningRate<Scalar>& learning_rate)
      : type_(type), schedule_(learning_rate.schedule()) {
    if (!schedule_) set_learning_rate(learning_rate.value());
  }

  /// Number of state vectors per slot (read by build()).
  virtual std::size_t state_vectors() const = 0;
  /// The optimizer's own rule, after clipping and weight decay; `grad` is the
  /// clipped gradient, `learning_rate` the step's.
  virtual void apply_update(std::size_t slot, Eigen::Map<Vector<Scalar>> value,
                            Eigen::Map<const Vector<Scalar>> grad, Scalar learning_rate) = 0;
  /// State vector k (0 <= k < state_vectors()) of `slot`.
  Vector<Scalar>& state(std::size_t slot, std::size_t k) { return slots_(slot, k); }

  /// The setters behind OptimizerBase's chaining ones.
  void configure_weight_decay(Scalar weight_decay) {
    detail::check_non_negative(type_, "weight_decay", weight_decay);
    weight_decay_ = weight_decay;
  }
  void configure_exclusions(std::vector<std::string> names) {
    for (const auto& n : names)
      if (n.empty())
        throw ValueError(detail::message(type_, ": exclude_from_weight_decay: a name must not be empty (it would "
                                                "match every tensor)"));
    excluded_ = std::move(names);
  }
  enum class Clip { none, norm, value, global_norm };
  void configure_clip(Clip kind, Scalar value) {
    const char* what = clip_name(kind);
    check_positive(what, value);
    if (clip_ != Clip::none && clip_ != kind)
      throw ValueError(detail::message(type_, ": only one of clipnorm, clipvalue and global_clipnorm can be set; ",
                                       clip_name(clip_), " is ", clip_value_, ", got ", what, " = ", value));
    if (slots_.built()) clipped_.setZero(slots_.largest());  // set after build(): not in a step
    clip_ = kind;
    clip_value_ = value;
  }

  void check_positive(const char* what, Scalar value) const { detail::check_positive(type_, what, value); }
  void check_unit_interval(const char* what, Scalar value) const { detail::check_unit_interval(type_, what, value); }

 private:
  static const char* clip_name(Clip kind) {
    return kind == Clip::norm ? "clipnorm" : kind == Clip::value ? "clipvalue" : "global_clipnorm";
  }
  std::optional<Scalar> clip_setting(Clip kind) const {
    return clip_ == kind ? std::optional<Scalar>(clip_value_) : std::nullopt;
  }
  void start_step_bookkeeping() {
    global_squared_norm_ = 0;
    global_norm_terms_ = 0;
    step_updates_ = 0;
  }
  bool decays(std::string_view name) const {
    for (const auto& excluded : excluded_)
      if (name.find(excluded) != std::string_view::npos) return false;
    return true;
  }

  /// The clipped gradient, in clipped_ (allocated by build()), or `grad` itself without clipping.
  Eigen::Map<const Vector<Scalar>> clip(Eigen::Map<const Vector<Scalar>> grad) {
    if (clip_ == Clip::none) return grad;
    Eigen::Map<Vector<Scalar>> out(clipped_.data(), grad.size());
    const Scalar c = clip_value_;
    if (clip_ == Clip::norm) {
      // Keras's _clip_by_norm, g·c first; std::max keeps a NaN norm (NaN < c is false).
      const Scalar l2sum = grad.squaredNorm();
      const Scalar l2norm = l2sum > 0 ? std::sqrt(l2sum) : l2sum;
      out.array() = (grad.array() * c) / std::max(l2norm, c);
    } else if (clip_ == Clip::global_norm) {
      // Keras's clip_by_global_norm: (N − N) turns an infinite or NaN norm into a NaN scale.
      const Scalar norm = std::sqrt(global_squared_norm_);
      const Scalar scale = c * std::min(Scalar(1) / norm, Scalar(1) / c) + (norm - norm);
      out = grad * scale;
    } else {
      // Written out rather than cwiseMin/Max so that a NaN stays NaN, as Keras's ops.clip.
      out = grad.unaryExpr([c](Scalar x) { return x < -c ? -c : x > c ? c : x; });
    }
    return {clipped_.data(), grad.size()};
  }

  const char* type_;
  Scalar learning_rate_ = 0;                                   // without a schedule
  std::shared_ptr<const LearningRateSchedule<Scalar>> schedule_;  // immutable, so copies may share it
  Scalar step_learning_rate_ = 0;                              // the rate of the step under way
  std::int64_t iterations_ = 0;
  std::optional<Scalar> weight_decay_;
  std::vector<std::string> excluded_;
  Clip clip_ = Clip::none;
  Scalar clip_value_ = 0;
  Vector<Scalar> clipped_;  // the clipped gradient: as large as the largest slot, once clipping is set
  Scalar global_squared_norm_ = 0;
  std::size_t global_norm_terms_ = 0;
  std::size_t step_updates_ = 0;
  detail::OptimizerSlots<Scalar> slots_;
};

/// The base of the concrete optimizers: clone(), and the Keras keyword
/// arguments as setters that return the optimizer, so that they chain.
template <class Derived, class Scalar>
class OptimizerBase : public Optimizer<Scalar> {
  using Base = Optimizer<Scalar>;

 public:
  std::unique_ptr<Base> clone() const override { return std::make_unique<Derived>(static_cast<const Derived&>(*this)); }

  /// θ ← θ − θ·wd·lr before each update; wd finite and >= 0.
  Derived& set_weight_decay(Scalar weight_decay) {
    this->configure_weight_decay(weight_decay);
    return self();
  }
  /// Tensors whose name contains one of `names` ("bias", "gamma", "beta") are
  /// not decayed. Keras matches a regular expression made of the names; here
  /// they are plain substrings (the same for names without regex syntax).
  Derived& exclude_from_weight_decay(std::vector<std::string> names) {
    this->configure_exclusions(std::move(names));
    return self();
  }
  Derived& set_clipnorm(Scalar clipnorm) { return clip(Base::Clip::norm, clipnorm); }
  Derived& set_clipvalue(Scalar clipvalue) { return clip(Base::Clip::value, clipvalue); }
  Derived& set_global_clipnorm(Scalar global_clipnorm) { return clip(Base::Clip::global_norm, global_clipnorm); }

 protected:
  using Base::Base;

 private:
  Derived& self() { return static_cast<Derived&>(*this); }
  Derived& clip(typename Base::Clip kind, Scalar value) {
    this->configure_clip(kind, value);
    return self();
  }
};

}  // namespace minidl
