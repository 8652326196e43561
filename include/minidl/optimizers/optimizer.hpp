// minidl — the optimizer interface.
//
// Sequential builds one state slot per parameter tensor of the model at
// compile() time (so a training step allocates nothing), then for each
// training step calls begin_step() once and update() for every parameter of
// every layer that is not frozen. Frozen layers are skipped entirely: their
// weights stay bitwise unchanged and their optimizer state does not move.
#pragma once

#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

#include "../error.hpp"
#include "../tensor.hpp"

namespace minidl {

template <class Scalar>
class Optimizer {
 public:
  virtual ~Optimizer() = default;

  /// "SGD", "Adam", "RMSprop".
  const char* type() const { return type_; }
  virtual std::unique_ptr<Optimizer> clone() const = 0;

  Scalar learning_rate() const { return learning_rate_; }
  /// May be called between epochs (or steps), e.g. from a callback.
  void set_learning_rate(Scalar learning_rate) {
    check_positive("learning_rate", learning_rate);
    learning_rate_ = learning_rate;
  }

  /// Number of training steps taken since build(); Adam's t.
  std::int64_t iterations() const { return iterations_; }

  /// Allocates one zeroed state slot per parameter tensor (`sizes[i]` scalars
  /// for slot i) and resets the step count.
  void build(const std::vector<Index>& sizes) {
    build_slots(sizes);
    iterations_ = 0;
  }
  /// Starts a training step; the first step has iterations() == 1.
  void begin_step() { ++iterations_; }
  /// Updates one parameter tensor in place from its gradient.
  virtual void update(std::size_t slot, Eigen::Map<Vector<Scalar>> value, Eigen::Map<const Vector<Scalar>> grad) = 0;

 protected:
  /// `type` names the optimizer in error messages (the constructor cannot ask a
  /// virtual function yet).
  Optimizer(const char* type, Scalar learning_rate) : type_(type) { set_learning_rate(learning_rate); }
  virtual void build_slots(const std::vector<Index>& sizes) = 0;

  /// For the hyper-parameter checks of the concrete optimizers.
  void check_positive(const char* what, Scalar value) const {
    if (!(value > 0) || !std::isfinite(static_cast<double>(value)))
      throw ValueError(detail::message(type(), ": ", what, " must be a finite number > 0, got ", value));
  }
  void check_unit_interval(const char* what, Scalar value) const {
    if (!(value >= 0 && value < 1))
      throw ValueError(detail::message(type(), ": ", what, " must be in [0, 1), got ", value));
  }

 private:
  const char* type_;
  Scalar learning_rate_ = 0;
  std::int64_t iterations_ = 0;
};

}  // namespace minidl
