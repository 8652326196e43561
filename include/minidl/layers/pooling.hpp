// minidl — pooling over channels-last images: MaxPooling2D, AveragePooling2D
// (a window sliding over each channel separately) and GlobalAveragePooling2D
// (the mean of each channel over the whole image).
//
//   max:     y[n, oh, ow, c] = max over the window of x[n, h, w, c]
//   average: y[n, oh, ow, c] = (1/count) Σ over the window of x[n, h, w, c]
//   global:  y[n, c]         = (1/(H·W)) Σ_{h, w} x[n, h, w, c]
//
// Window, strides and padding as Keras (window2d.hpp): strides default to the
// pool size; 'same' pads the bottom/right with the odd row as TensorFlow. The
// padding is never part of a window's value: max pooling ignores it, and
// average pooling divides by the number of input pixels the window covers
// (Keras/TensorFlow; PyTorch's avg_pool2d counts zero padding by default,
// count_include_pad=True).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <optional>
#include <type_traits>
#include <vector>

#include "window2d.hpp"

namespace minidl {

/// What MaxPooling2D and AveragePooling2D share: arguments, checks and
/// geometry. `Derived` names itself with a static `type_name`.
template <class Derived, class Scalar>
class Pooling2D : public LayerBase<Derived, Scalar> {
 public:
  using Size2 = std::array<Index, 2>;

  /// Input shape fixed later by build() or Sequential::add. Strides default to
  /// pool_size (Keras strides=None). Throws ValueError unless every size is > 0.
  explicit Pooling2D(Size2 pool_size = {2, 2}, std::optional<Size2> strides = std::nullopt,
                     Padding padding = Padding::valid)
      : pool_size_(pool_size), strides_(strides.value_or(pool_size)), padding_(padding) {
    check_window_argument(Derived::type_name, "pool_size", pool_size_);
    check_window_argument(Derived::type_name, "strides", strides_);
  }
  /// Input shape (H, W, C) fixed now; also throws ShapeError if the input is
  /// not (H, W, C) or, with valid padding, the pool does not fit it.
  // (A template only so that a lone braced pair, e.g. MaxPooling2D({3, 3}),
  // picks the pool-size constructor above: an exact tie between a user-defined
  // conversion to Shape and one to Size2 goes to the non-template.)
  template <class S = Shape, std::enable_if_t<std::is_same_v<S, Shape>, int> = 0>
  explicit Pooling2D(const S& input, Size2 pool_size = {2, 2}, std::optional<Size2> strides = std::nullopt,
                     Padding padding = Padding::valid)
      : Pooling2D(pool_size, strides, padding) {
    this->build(input);
  }

  const char* type() const override { return Derived::type_name; }
  LayerConfig config() const override {
    LayerConfig c;
    c.set("pool_size", pool_size_).set("strides", strides_).set("padding", to_string(padding_));
    return c;
  }
  static Derived from_config(const LayerConfig& c) {
    return Derived(c.size2("pool_size"), c.size2("strides"), c.choice("padding", {Padding::valid, Padding::same}));
  }
  Size2 pool_size() const { return pool_size_; }
  Size2 strides() const { return strides_; }
  Padding padding() const { return padding_; }

 protected:
  Shape build_impl(const Shape& input) override {
    window_ = Window2D(layer_label(*this), "pool", input, pool_size_, strides_, padding_);
    return Shape{window_.out_height(), window_.out_width(), window_.channels()};
  }

  Size2 pool_size_, strides_;
  Padding padding_;
  Window2D window_;  // output size and padding, set by build()
};

template <class Scalar>
class MaxPooling2D : public Pooling2D<MaxPooling2D<Scalar>, Scalar> {
  using Base = Pooling2D<MaxPooling2D<Scalar>, Scalar>;

 public:
  static constexpr const char* type_name = "MaxPooling2D";
  using Base::Base;

 protected:
  // Both phases compute the same function; the training phase also records
  // where each maximum came from, for backward().
  void forward_training(const Matrix<Scalar>& x, Matrix<Scalar>& y) override {
    argmax_.resize(static_cast<std::size_t>(y.size()));
    pool<true>(x, y);
  }
  void forward_inference(const Matrix<Scalar>& x, Matrix<Scalar>& y) override { pool<false>(x, y); }

  // dx[argmax[k]] += dy[k]: each output's gradient goes to the input it took
  // its value from (+= because overlapping windows can share a maximum).
  void backward_impl(const Matrix<Scalar>& /*x*/, const Matrix<Scalar>& dy, Matrix<Scalar>* dx) override {
    if (!dx) return;
    dx->setZero();
    for (Index k = 0; k < dy.size(); ++k) dx->data()[argmax_[static_cast<std::size_t>(k)]] += dy.data()[k];
  }

 private:
  // y = the channel-wise maximum over each window, scanned row by row: the
  // first maximum wins ties, and a NaN wins over numbers (as PyTorch). The
  // window's first pixel starts the running maxima; the scan then visits it
  // again, harmlessly, which keeps the inner loop one branch-free select per
  // channel.
  template <bool record_argmax>
  void pool(const Matrix<Scalar>& x, Matrix<Scalar>& y) {
    const Window2D& window = this->window_;
    const Index C = window.channels();
    const Scalar* in = x.data();
    window.for_each_window(x.rows(), [&](Index p, Index n, Window2D::Span rows, Window2D::Span cols) {
      Scalar* best = y.data() + p * C;
      Index* from = record_argmax ? argmax_.data() + p * C : nullptr;
      const Index start = window.offset(n, rows.begin, cols.begin);
      std::copy_n(in + start, C, best);
      if constexpr (record_argmax)
        for (Index c = 0; c < C; ++c) from[c] = start + c;
      for (Index h = rows.begin; h < rows.end; ++h)
        for (Index w = cols.begin; w < cols.end; ++w) {
          const Index at = window.offset(n, h, w);  // pixel (n, h, w): C contiguous values
          const Scalar* v = in + at;
          for (Index c = 0; c < C; ++c) {
            const bool take = v[c] > best[c] || std::isnan(v[c]);
            best[c] = take ? v[c] : best[c];
            if constexpr (record_argmax) from[c] = take ? at + c : from[c];
          }
        }
    });
  }

  std::vector<Index> argmax_;  // N·H_out·W_out·C: offset in x of each output's maximum (training forward)
};

template <class Scalar>
class AveragePooling2D : public Pooling2D<AveragePooling2D<Scalar>, Scalar> {
  using Base = Pooling2D<AveragePooling2D<Scalar>, Scalar>;
  using Run = Eigen::Map<Vector<Scalar>>;  // the C channels of one pixel
  using ConstRun = Eigen::Map<const Vector<Scalar>>;

 public:
  static constexpr const char* type_name = "AveragePooling2D";
  using Base::Base;

 protected:
  // Both phases compute the same function; nothing needs saving for backward.
  void forward_training(const Matrix<Scalar>& x, Matrix<Scalar>& y) override { pool(x, y); }
  void forward_inference(const Matrix<Scalar>& x, Matrix<Scalar>& y) override { pool(x, y); }

  // dx[n, h, w, :] += dy[p, :] / count(p) for every window p covering (h, w).
  void backward_impl(const Matrix<Scalar>& /*x*/, const Matrix<Scalar>& dy, Matrix<Scalar>* dx) override {
    if (!dx) return;
    const Window2D& window = this->window_;
    const Index C = window.channels();
    dx->setZero();
    window.for_each_window(dy.rows(), [&](Index p, Index n, Window2D::Span rows, Window2D::Span cols) {
      const Scalar scale = Scalar(1) / Scalar(rows.size() * cols.size());
      const ConstRun grad(dy.data() + p * C, C);
      for (Index h = rows.begin; h < rows.end; ++h)
        for (Index w = cols.begin; w < cols.end; ++w) Run(dx->data() + window.offset(n, h, w), C) += scale * grad;
    });
  }

 private:
  // y = the channel-wise sum over each window / the number of input pixels in
  // it (padding excluded, as Keras).
  void pool(const Matrix<Scalar>& x, Matrix<Scalar>& y) const {
    const Window2D& window = this->window_;
    const Index C = window.channels();
    window.for_each_window(x.rows(), [&](Index p, Index n, Window2D::Span rows, Window2D::Span cols) {
      Run sum(y.data() + p * C, C);
      sum.setZero();
      for (Index h = rows.begin; h < rows.end; ++h)
        for (Index w = cols.begin; w < cols.end; ++w) sum += ConstRun(x.data() + window.offset(n, h, w), C);
      sum /= Scalar(rows.size() * cols.size());
    });
  }
};

/// Keras' GlobalAveragePooling2D (keepdims=False): (H, W, C) -> (C).
template <class Scalar>
class GlobalAveragePooling2D : public LayerBase<GlobalAveragePooling2D<Scalar>, Scalar> {
  using Base = LayerBase<GlobalAveragePooling2D<Scalar>, Scalar>;
  using Pixels = Eigen::Map<Matrix<Scalar>>;  // one sample viewed as (H·W) x C
  using ConstPixels = Eigen::Map<const Matrix<Scalar>>;

 public:
  /// Input shape fixed later by build() or Sequential::add.
  GlobalAveragePooling2D() = default;
  /// Input shape (H, W, C) fixed now; throws ShapeError for any other rank.
  explicit GlobalAveragePooling2D(const Shape& input) { this->build(input); }

  const char* type() const override { return "GlobalAveragePooling2D"; }

 protected:
  Shape build_impl(const Shape& input) override {
    check_image_shape(layer_label(*this), input);
    return Shape{input.back()};
  }

  // Both phases compute the same function: y[n, :] = mean of the H·W rows of sample n.
  void forward_training(const Matrix<Scalar>& x, Matrix<Scalar>& y) override { pool(x, y); }
  void forward_inference(const Matrix<Scalar>& x, Matrix<Scalar>& y) override { pool(x, y); }

  // dx[n, h, w, :] = dy[n, :] / (H·W)
  void backward_impl(const Matrix<Scalar>& /*x*/, const Matrix<Scalar>& dy, Matrix<Scalar>* dx) override {
    if (!dx) return;
    const Scalar scale = Scalar(1) / Scalar(pixels());
    for (Index n = 0; n < dy.rows(); ++n) {
      Pixels dX(dx->row(n).data(), pixels(), dy.cols());
      for (Index r = 0; r < dX.rows(); ++r) dX.row(r) = scale * dy.row(n);
    }
  }

 private:
  Index pixels() const { return this->input_size() / this->output_size(); }  // H·W

  void pool(const Matrix<Scalar>& x, Matrix<Scalar>& y) const {
    for (Index n = 0; n < x.rows(); ++n) y.row(n) = ConstPixels(x.row(n).data(), pixels(), y.cols()).colwise().mean();
  }
};

}  // namespace minidl
