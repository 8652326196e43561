// minidl — BatchNorm's per-channel sums over the rows of a batch.
#pragma once

#include "../tensor.hpp"

namespace minidl {
namespace detail {

template <int Rows, class Scalar, class Term, class... More>
void accumulate_channel_rows(Index r, Vector<Scalar>& out, const Term& term, More&&... more) {
  if constexpr (Rows == 4)
    out.transpose().array() += (term(r) + term(r + 1)) + (term(r + 2) + term(r + 3));
  else
    out.transpose().array() += term(r);
  if constexpr (sizeof...(More) > 0) accumulate_channel_rows<Rows>(r, more...);
}

/// out += Σ_{r < n} term(r), where term(r) is a 1 x C array expression of
/// row r; further (out, term) pairs are summed in the same pass over the rows.
/// Four rows per iteration: each accumulator is read and written once per
/// four rows, and each row operation is vectorized across the C channels.
template <class Scalar, class Term, class... More>
void accumulate_rows(Index n, Vector<Scalar>& out, const Term& term, More&&... more) {
  Index r = 0;
  for (; r + 4 <= n; r += 4) accumulate_channel_rows<4>(r, out, term, more...);
  for (; r < n; ++r) accumulate_channel_rows<1>(r, out, term, more...);
}

}  // namespace detail
}  // namespace minidl
