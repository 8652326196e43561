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

/// Per-sample shape, without the batch dimension: (features) or (H, W, C).
class Shape {
 public:
  static constexpr int max_rank = 4;

  Shape() = default;
  Shape(std::initializer_list<Index> dims) {
    if (dims.size() == 0 || dims.size() > static_cast<std::size_t>(max_rank))
      throw ShapeError(detail::message("Shape: rank must be 1..", max_rank, ", got ", dims.size()));
    for (Index d : dims) {
      if (d <= 0) throw ShapeError(detail::message("Shape: every dimension must be positive, got ", d));
      dims_[static_cast<std::size_t>(rank_++)] = d;
    }
  }

  int rank() const { return rank_; }
  Index operator[](int axis) const { return dims_[static_cast<std::size_t>(axis)]; }
  /// The last axis: features for dense data, channels for images.
  Index back() const { return rank_ == 0 ? 0 : dims_[static_cast<std::size_t>(rank_ - 1)]; }
  /// Number of scalars per sample (the batch matrix's column count).
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
