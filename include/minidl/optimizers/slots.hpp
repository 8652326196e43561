// minidl — the per-parameter state an optimizer keeps between steps.
//
// One slot per parameter tensor of the model, in the order Sequential passes
// them to build(); each slot holds a fixed number of zeroed vectors of the
// tensor's size (SGD with momentum: v; Adam: m, v and with amsgrad v̂; RMSprop:
// v, then the momentum and the mean gradient if used). Everything is allocated
// by build(), so update() allocates nothing.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "../error.hpp"
#include "../tensor.hpp"

namespace minidl {
namespace detail {

template <class Scalar>
class OptimizerSlots {
 public:
  /// Allocates `per_slot` zeroed vectors of sizes[i] scalars for each slot i,
  /// replacing any previous state. Validates before changing anything.
  void build(const char* type, const std::vector<Index>& sizes, std::size_t per_slot) {
    for (std::size_t i = 0; i < sizes.size(); ++i)
      if (sizes[i] < 0)
        throw ValueError(message(type, ": build() got a negative size ", sizes[i], " for slot ", i));
    std::vector<Vector<Scalar>> state(sizes.size() * per_slot);
    for (std::size_t i = 0; i < state.size(); ++i) state[i].setZero(sizes[i / per_slot]);
    sizes_ = sizes;
    state_ = std::move(state);
    per_slot_ = per_slot;
    built_ = true;
  }

  /// Throws unless update(slot, value, grad) may run: after build() and
  /// begin_step(), on a slot that build() made, with the sizes it was made for.
  /// `type` names the optimizer, `iterations` is its step count.
  void check_update(const char* type, std::int64_t iterations, std::size_t slot, Index value_size,
                    Index grad_size) const {
    if (!built_)
      throw StateError(message(type, ": update() before build(); build() (which compile() calls) allocates the "
                                     "optimizer state"));
    if (iterations == 0)
      throw StateError(message(type, ": update() before begin_step(); call begin_step() once per training step, "
                                     "before that step's updates"));
    if (slot >= sizes_.size())
      throw StateError(message(type, ": update() of slot ", slot, ", but build() made ", sizes_.size(), " slots"));
    if (value_size != sizes_[slot])
      throw ShapeError(message(type, ": slot ", slot, " was built for a parameter of ", sizes_[slot],
                               " values, got one of ", value_size));
    if (grad_size != value_size)
      throw ShapeError(message(type, ": slot ", slot, ": the gradient has ", grad_size,
                               " values, expected ", value_size, " (the parameter's size)"));
  }

  /// Throws unless `vectors` can replace the state (set_state): one per state
  /// vector, slot-major, each of its slot's size, every value finite; `type`
  /// names the optimizer. Changes nothing.
  void check_vectors(const char* type, const std::vector<Vector<Scalar>>& vectors) const {
    if (vectors.size() != state_.size())
      throw ValueError(message(type, ": set_state: got ", vectors.size(), " state vectors, expected ", state_.size(),
                               " (", sizes_.size(), " slots x ", per_slot_, " per slot)"));
    for (std::size_t i = 0; i < vectors.size(); ++i) {
      const std::size_t slot = i / per_slot_, k = i % per_slot_;
      if (vectors[i].size() != sizes_[slot])
        throw ShapeError(message(type, ": set_state: state vector ", k, " of slot ", slot, " has ", vectors[i].size(),
                                 " values, expected ", sizes_[slot]));
      if (!vectors[i].allFinite())
        throw ValueError(message(type, ": set_state: state vector ", k, " of slot ", slot,
                                 " holds a NaN or infinite value"));
    }
  }
  /// Copies checked `vectors` into the state; the same sizes, so no vector is reallocated.
  void assign(const std::vector<Vector<Scalar>>& vectors) {
    for (std::size_t i = 0; i < state_.size(); ++i) state_[i] = vectors[i];
  }
  /// Every state vector, slot-major.
  const std::vector<Vector<Scalar>>& vectors() const { return state_; }

  /// State vector k (0 <= k < per_slot) of `slot`.
  Vector<Scalar>& operator()(std::size_t slot, std::size_t k) { return state_[slot * per_slot_ + k]; }
  const Vector<Scalar>& operator()(std::size_t slot, std::size_t k) const { return state_[slot * per_slot_ + k]; }
  /// Number of slots build() made.
  std::size_t size() const { return sizes_.size(); }
  bool built() const { return built_; }
  /// The size of the largest slot (0 if none).
  Index largest() const { return sizes_.empty() ? 0 : *std::max_element(sizes_.begin(), sizes_.end()); }

 private:
  std::vector<Index> sizes_;            // scalars per slot
  std::vector<Vector<Scalar>> state_;   // slot-major: slot i's vectors at [i*per_slot, (i+1)*per_slot)
  std::size_t per_slot_ = 0;
  bool built_ = false;
};

}  // namespace detail
}  // namespace minidl
