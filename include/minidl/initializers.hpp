// minidl — weight initializers (Keras' formulas).
//
//   glorot_uniform  U(−l, l), l = sqrt(6 / (fan_in + fan_out))   (Keras' default)
//   he_uniform      U(−l, l), l = sqrt(6 / fan_in)
//   he_normal       truncated normal N(0, s²) redrawn beyond 2 s, with
//                   s = sqrt(2 / fan_in) / 0.87962566103423978: the constant is
//                   the standard deviation of a unit normal truncated to [−2, 2],
//                   so the truncated draw has variance 2 / fan_in (Keras 3's
//                   VarianceScaling with distribution "truncated_normal")
//   zeros           0
//
// The random numbers come from minidl's own generator (minidl::Rng), not from
// TensorFlow's or JAX's, so the same seed does NOT give Keras' numbers: only
// the distributions are the same. Values are drawn in row-major order
// (kernel(0,0), kernel(0,1), ...), so a given Rng state always gives the same
// matrix, whatever the storage order.
#pragma once

#include <cmath>
#include <string>

#include "error.hpp"
#include "random.hpp"
#include "tensor.hpp"

namespace minidl {

enum class Initializer { glorot_uniform, he_uniform, he_normal, zeros };

/// Keras' name of the initializer: "glorot_uniform", "he_uniform", "he_normal", "zeros".
inline const char* to_string(Initializer initializer) {
  switch (initializer) {
    case Initializer::glorot_uniform: return "glorot_uniform";
    case Initializer::he_uniform: return "he_uniform";
    case Initializer::he_normal: return "he_normal";
    case Initializer::zeros: return "zeros";
  }
  return "unknown";
}

/// The inverse of to_string(Initializer); throws ValueError for an unknown name.
inline Initializer initializer_from_string(const std::string& name) {
  const auto all = {Initializer::glorot_uniform, Initializer::he_uniform, Initializer::he_normal, Initializer::zeros};
  if (const auto i = detail::enum_named(name, all)) return *i;
  throw ValueError(detail::message("unknown initializer '", name, "', expected one of ", detail::choice_names(all)));
}

/// Fills `weights` (any size) with `initializer` for a layer with `fan_in`
/// inputs and `fan_out` outputs per unit (Dense: inputs and units), drawing
/// from `rng`. Throws ValueError (and changes nothing) unless both fans are > 0.
template <class Derived>
void initialize_weights(Initializer initializer, Eigen::DenseBase<Derived>& weights, Index fan_in, Index fan_out,
                        Rng& rng) {
  using Scalar = typename Derived::Scalar;
  if (fan_in <= 0 || fan_out <= 0)
    throw ValueError(detail::message("initialize_weights(", to_string(initializer),
                                     "): fan_in and fan_out must be > 0, got ", fan_in, " and ", fan_out));
  auto fill = [&](auto draw) {
    for (Index i = 0; i < weights.rows(); ++i)
      for (Index j = 0; j < weights.cols(); ++j) weights.coeffRef(i, j) = static_cast<Scalar>(draw());
  };
  const auto in = static_cast<double>(fan_in), out = static_cast<double>(fan_out);
  switch (initializer) {
    case Initializer::glorot_uniform: {
      const double limit = std::sqrt(6.0 / (in + out));
      fill([&] { return rng.uniform(-limit, limit); });
      return;
    }
    case Initializer::he_uniform: {
      const double limit = std::sqrt(6.0 / in);
      fill([&] { return rng.uniform(-limit, limit); });
      return;
    }
    case Initializer::he_normal: {
      const double stddev = std::sqrt(2.0 / in) / 0.87962566103423978;
      fill([&] {
        double z = rng.normal();
        while (std::abs(z) > 2.0) z = rng.normal();  // truncate: redraw beyond 2 std
        return stddev * z;
      });
      return;
    }
    case Initializer::zeros:
      weights.setZero();
      return;
  }
}

}  // namespace minidl
