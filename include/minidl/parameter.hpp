// minidl — Parameter: a view of one of a layer's tensors (a weight with its
// gradient, or non-trainable state), and the check every write of new values
// into one passes.
#pragma once

#include <cmath>
#include <string>
#include <utility>

#include "error.hpp"
#include "tensor.hpp"

namespace minidl {

/// A view of one weight tensor of a layer, flattened, with its gradient.
/// For non-trainable state (BatchNorm's moving statistics) `grad` is null.
template <class Scalar>
struct Parameter {
  Parameter() = default;
  /// What a layer's collect_parameters()/collect_state() records; the shape
  /// is filled in from weight_shapes() by Layer::parameters() and state().
  Parameter(std::string name_, Scalar* value_, Scalar* grad_, Index size_, bool non_negative_ = false)
      : name(std::move(name_)), value(value_), grad(grad_), size(size_), non_negative(non_negative_) {}

  std::string name;        ///< "kernel", "bias", "gamma", "beta", "moving_mean", ...
  Scalar* value = nullptr;  ///< `size` scalars, owned by the layer, in C order of `shape`
  Scalar* grad = nullptr;   ///< `size` scalars or null
  Index size = 0;
  bool non_negative = false;  ///< every value must be >= 0 (a variance)
  /// The tensor's shape in Keras's layout (a Dense kernel (inputs, units), a
  /// Conv2D kernel (kh, kw, C, F)), as the layer declares it in
  /// weight_shapes(); (size) for a layer that declares none.
  Shape shape;
  const char* layout = "";  ///< the shape's axes in words ("inputs x units"), or empty

  Eigen::Map<Vector<Scalar>> values() const { return {value, size}; }
  Eigen::Map<Vector<Scalar>> gradient() const { return {grad, grad ? size : 0}; }
};

namespace detail {

/// Throws Exception "<what>: value i is nan, expected a finite number" unless every one of `values`
/// (new values for `target`, not yet written) is finite and, for a
/// non_negative tensor, >= 0. Weights from files and set_weights() pass here
/// before anything is written: a NaN weight or a negative moving variance
/// would make every later prediction NaN without an error.
template <class Exception = ValueError, class Scalar, class Values>
void check_tensor_values(const Parameter<Scalar>& target, const Values& values, const std::string& what) {
  // x·0 is 0 exactly for finite x: one vectorized pass, the slow search only to name the value.
  const bool finite = std::isfinite((values.array() * Scalar(0)).sum());
  if (finite && !(target.non_negative && values.minCoeff() < 0)) return;
  for (Index i = 0; i < values.size(); ++i)
    if (!std::isfinite(values[i]) || (target.non_negative && values[i] < 0))
      throw Exception(message(what, ": value ", i, " is ", values[i],
                              std::isfinite(values[i]) ? ", expected >= 0 (a variance)"
                                                       : ", expected a finite number"));
}

}  // namespace detail

}  // namespace minidl
