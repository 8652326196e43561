// minidl — what Sequential checks of the data it is given (x, y, validation
// data) before anything runs.
#pragma once

#include <cmath>

#include "../error.hpp"
#include "../tensor.hpp"

namespace minidl::detail {

/// Throws unless `m` (the argument `name` of Sequential::`call`) has samples,
/// `columns` values per sample and only finite values: ValueError for an
/// empty matrix or a NaN/Inf (naming its row and column), ShapeError for a
/// column count that is not the model's input ("x...") or output size.
template <class Scalar>
void check_data_matrix(const char* call, const char* name, ConstMatrixRef<Scalar> m, Index columns) {
  if (m.rows() == 0) throw ValueError(message("Sequential::", call, ": ", name, " is empty (0 samples)"));
  if (m.cols() != columns)
    throw ShapeError(message("Sequential::", call, ": ", name, " has ", m.cols(), " columns, expected ", columns,
                             " (the model's ", name[0] == 'x' ? "input" : "output", " size)"));
  // x·0 is 0 for every finite x and NaN for NaN or ±Inf, so the sum is NaN
  // exactly when some value is not finite: one vectorized pass (Eigen's
  // allFinite() is a scalar loop, and a data set is checked on every fit).
  if (std::isfinite((m.array() * Scalar(0)).sum())) return;
  for (Index i = 0; i < m.rows(); ++i)  // the slow search, only to name the first bad value
    for (Index j = 0; j < m.cols(); ++j)
      if (!std::isfinite(m(i, j)))
        throw ValueError(message("Sequential::", call, ": ", name, " contains NaN or Inf (", m(i, j), " at row ", i,
                                 ", column ", j, ")"));
}

/// Throws unless `w` (the sample_weight given to Sequential::`call`) holds one
/// finite weight >= 0 per row of x: ShapeError for a count that is not `rows`,
/// ValueError naming the first bad weight. Allocates only to throw
/// (train_on_batch calls it every step).
template <class Scalar>
void check_sample_weights(const char* call, const Vector<Scalar>& w, Index rows) {
  if (w.size() != rows)
    throw ShapeError(message("Sequential::", call, ": sample_weight has ", w.size(), " values, expected ", rows,
                             " (one per row of x)"));
  if ((w.array() >= Scalar(0)).all() && std::isfinite((w.array() * Scalar(0)).sum())) return;
  for (Index i = 0; i < rows; ++i)
    if (!(w(i) >= 0) || !std::isfinite(w(i)))
      throw ValueError(message("Sequential::", call, ": sample_weight holds ", w(i), " at row ", i,
                               ", expected a finite weight >= 0"));
}

}  // namespace minidl::detail
