// minidl — the data types every layer exchanges.
//
// A batch is a row-major matrix with one sample per row (N x features), as a
// Keras user thinks of `x`. Each layer records the per-sample Shape of its input
// and output: (features) for dense data, (height, width, channels) for images,
// channels last as in Keras. Because the storage is row-major and channels-last,
// an image batch N x (H*W*C) is, without any copy, also an (N*H*W) x C matrix,
// which is what BatchNorm over channels and Conv2D's im2col need.
#pragma once

#include <Eigen/Core>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <type_traits>

#include "error.hpp"

namespace minidl {

using Index = Eigen::Index;

/// A batch: N samples x features, row-major so that each sample is contiguous.
template <class Scalar>
using Matrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// A flat parameter or statistics vector.
template <class Scalar>
using Vector = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;

/// Read-only view of user data, one sample per row. Row-major matrices and
/// row blocks of them (`x.topRows(32)`) bind without a copy; a column-major
/// Eigen matrix binds through one temporary copy made by Eigen::Ref.
template <class Scalar>
using ConstMatrixRef = Eigen::Ref<const Matrix<Scalar>>;

/// The most scalars one tensor or buffer of minidl may hold: a sample, a
/// weight tensor, a layer's output or scratch buffer for a batch (2^40, 4 TiB
/// of floats: far beyond any machine, yet small enough that the product of
/// two such sizes cannot overflow an Index). Sizes from files and arguments
/// are checked against it with detail::checked_size, so no size computed
/// from a shape, a kernel or a unit count can wrap around.
inline constexpr Index max_elements = Index(1) << 40;

namespace detail {

/// The product of `factors` (each >= 0), or ShapeError "<what>: a x b x c is
/// more than 2^40 scalars" if it exceeds max_elements (which also catches
/// every overflow: each partial product is checked before the next
/// multiplication). `what` names the size in the message: a string, or a
/// callable returning one, which is called only on failure so that a check
/// in a training step builds no string.
template <class What>
Index checked_size(const What& what, std::initializer_list<Index> factors) {
  Index n = 1;
  bool fits = true, negative = false;
  for (Index f : factors) {
    negative = negative || f < 0;
    fits = fits && f >= 0 && (f == 0 || n <= max_elements / f);
    if (fits) n *= f;
  }
  if (fits && n <= max_elements) return n;
  std::string subject;
  if constexpr (std::is_invocable_v<const What&>) subject = what();
  else subject = what;
  std::string product;
  for (Index f : factors) product += (product.empty() ? "" : " x ") + std::to_string(f);
  if (negative) throw ShapeError(message(subject, ": ", product, " has a negative size"));
  throw ShapeError(message(subject, ": ", product, " is more than 2^40 scalars (minidl's limit for one tensor)"));
}

}  // namespace detail

/// Per-sample shape, without the batch dimension: (features) or (H, W, C);
/// also a weight tensor's shape (Parameter::shape), printed with dims().
/// Its size (the product of the dimensions) is at most max_elements.
class Shape {
 public:
  static constexpr int max_rank = 4;

  Shape() = default;
  /// Throws ShapeError unless 1 <= rank <= 4, every dimension is > 0 and
  /// their product is at most max_elements.
  Shape(std::initializer_list<Index> dims) {
    if (dims.size() == 0 || dims.size() > static_cast<std::size_t>(max_rank))
      throw ShapeError(detail::message("Shape: rank must be 1..", max_rank, ", got ", dims.size()));
    for (Index d : dims) {
      if (d <= 0) throw ShapeError(detail::message("Shape: every dimension must be positive, got ", d));
      dims_[static_cast<std::size_t>(rank_++)] = d;
    }
    detail::checked_size([this] { return "Shape " + str(); }, dims);
  }

  int rank() const { return rank_; }
  Index operator[](int axis) const { return dims_[static_cast<std::size_t>(axis)]; }
  /// The last axis: features for dense data, channels for images.
  Index back() const { return rank_ == 0 ? 0 : dims_[static_cast<std::size_t>(rank_ - 1)]; }
  /// Number of scalars per sample (the batch matrix's column count); cannot
  /// overflow, as the constructor bounds it.
  Index size() const {
    Index n = rank_ == 0 ? 0 : 1;
    for (int i = 0; i < rank_; ++i) n *= dims_[static_cast<std::size_t>(i)];
    return n;
  }

  /// Keras-style text with the batch axis: "(None, 14, 14, 32)".
  std::string str() const {
    std::string s = "(None";
    for (int i = 0; i < rank_; ++i) s += ", " + std::to_string(dims_[static_cast<std::size_t>(i)]);
    return s + ")";
  }

  /// The dimensions alone, as a weight's shape is written: "(3, 3, 1, 8)".
  std::string dims() const {
    std::string s = "(";
    for (int i = 0; i < rank_; ++i) s += (i ? ", " : "") + std::to_string(dims_[static_cast<std::size_t>(i)]);
    return s + (rank_ == 1 ? ",)" : ")");
  }

  friend bool operator==(const Shape& a, const Shape& b) {
    if (a.rank_ != b.rank_) return false;
    for (int i = 0; i < a.rank_; ++i)
      if (a.dims_[static_cast<std::size_t>(i)] != b.dims_[static_cast<std::size_t>(i)]) return false;
    return true;
  }
  friend bool operator!=(const Shape& a, const Shape& b) { return !(a == b); }
  friend std::ostream& operator<<(std::ostream& out, const Shape& s) { return out << s.str(); }

 private:
  std::array<Index, max_rank> dims_{};
  int rank_ = 0;
};

}  // namespace minidl
