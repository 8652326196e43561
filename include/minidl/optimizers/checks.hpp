// minidl — the hyper-parameter checks shared by the optimizers and the
// learning-rate schedules.
//
// Each throws ValueError "<owner>: <argument> must be <expected>, got <value>",
// e.g. "Adam: beta_1 must be in [0, 1), got 1", before anything is changed.
#pragma once

#include <cmath>

#include "../error.hpp"

namespace minidl {
namespace detail {

template <class Scalar>
bool is_finite(Scalar value) {
  return std::isfinite(static_cast<double>(value));
}

template <class Scalar>
void check_positive(const char* owner, const char* what, Scalar value) {
  if (!(value > 0) || !is_finite(value))
    throw ValueError(message(owner, ": ", what, " must be a finite number > 0, got ", value));
}

template <class Scalar>
void check_non_negative(const char* owner, const char* what, Scalar value) {
  if (!(value >= 0) || !is_finite(value))
    throw ValueError(message(owner, ": ", what, " must be a finite number >= 0, got ", value));
}

/// [0, 1): a decay rate whose complement must not vanish (β, ρ, momentum).
template <class Scalar>
void check_unit_interval(const char* owner, const char* what, Scalar value) {
  if (!(value >= 0 && value < 1))
    throw ValueError(message(owner, ": ", what, " must be in [0, 1), got ", value));
}

/// [0, 1]: a fraction (CosineDecay's alpha).
template <class Scalar>
void check_fraction(const char* owner, const char* what, Scalar value) {
  if (!(value >= 0 && value <= 1))
    throw ValueError(message(owner, ": ", what, " must be in [0, 1], got ", value));
}

}  // namespace detail
}  // namespace minidl
