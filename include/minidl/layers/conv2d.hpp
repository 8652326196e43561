// minidl — Conv2D: a 2-D convolution (cross-correlation, as every framework)
// over channels-last images, with a fused activation.
//
//   y[n, oh, ow, f] = act(b[f] + Σ_{i, j, c} x[n, oh·sh − pt + i, ow·sw − pl + j, c] · K[i, j, c, f])
//
// x: N x (H·W·C) and y: N x (H_out·W_out·F), row-major, channels last (Keras);
// K: Keras' (kh, kw, C, F) layout, stored as a (kh·kw·C) x F matrix; b: F.
// PyTorch stores the weight (F, C, kh, kw) and images channels first.
// Output size and padding: window2d.hpp (Keras/TensorFlow 'valid' and 'same').
//
// Computed as one matrix product (im2col): each output position's receptive
// field is copied into a row of `cols` (zeros where it reaches into the
// padding), in the same (i, j, c) order as the kernel's rows, so that
//   Z = cols · K          cols: (N·H_out·W_out) x (kh·kw·C), Z: (N·H_out·W_out) x F
// and Z, stored row-major, *is* the output batch N x (H_out·W_out·F): the
// product writes straight into the layer's output buffer.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "kernel_layer.hpp"
#include "window2d.hpp"

namespace minidl {

/// Options of a Conv2D layer (Keras' defaults).
struct Conv2DOptions {
  std::array<Index, 2> strides{1, 1};
  Padding padding = Padding::valid;
  Activation activation = Activation::linear;
  bool use_bias = true;
  Initializer kernel_initializer = Initializer::glorot_uniform;
  /// With a seed the kernel is drawn from Rng(*seed) as soon as the input shape
  /// is known (in the constructor if it takes one), and initialize() redraws
  /// the same kernel. Without one the layer is not initialized() until
  /// initialize(rng) (Sequential::add calls it).
  std::optional<std::uint64_t> seed;
  /// Penalties added to the loss (regularizers.hpp): on the kernel, on the bias, on the output.
  std::optional<Regularizer> kernel_regularizer{}, bias_regularizer{}, activity_regularizer{};
};

template <class Scalar>
class Conv2D : public KernelLayer<Conv2D<Scalar>, Scalar> {
  using Base = KernelLayer<Conv2D<Scalar>, Scalar>;
  using ConstRows = Eigen::Map<const Matrix<Scalar>>;  // the same, read-only
  using Run = Eigen::Map<Vector<Scalar>>;              // a contiguous run of scalars
  using ConstRun = Eigen::Map<const Vector<Scalar>>;

 public:
  /// Input shape fixed later by build() or Sequential::add. Throws ValueError
  /// unless filters, both kernel sizes and both strides are > 0.
  Conv2D(Index filters, std::array<Index, 2> kernel_size, Conv2DOptions options = {})
      : Base(KernelSettings{options.activation, options.use_bias, options.kernel_initializer, options.seed,
                            options.kernel_regularizer, options.bias_regularizer},
             options.activity_regularizer),
        filters_(filters),
        kernel_size_(kernel_size),
        strides_(options.strides),
        padding_(options.padding) {
    if (filters <= 0) throw ValueError(detail::message("Conv2D: filters must be > 0, got ", filters));
    check_window_argument("Conv2D", "kernel_size", kernel_size);
    check_window_argument("Conv2D", "strides", options.strides);
  }
  /// A square kernel_size x kernel_size kernel.
  Conv2D(Index filters, Index kernel_size, Conv2DOptions options = {})
      : Conv2D(filters, {kernel_size, kernel_size}, options) {}
  /// Input shape (H, W, C) fixed now. Also throws ShapeError if the input is not
  /// (H, W, C) or, with valid padding, the kernel does not fit it.
  Conv2D(const Shape& input, Index filters, std::array<Index, 2> kernel_size, Conv2DOptions options = {})
      : Conv2D(filters, kernel_size, options) {
    this->build(input);
  }
  Conv2D(const Shape& input, Index filters, Index kernel_size, Conv2DOptions options = {})
      : Conv2D(input, filters, {kernel_size, kernel_size}, options) {}

  static constexpr const char* type_name = "Conv2D";
  const char* type() const override { return type_name; }

  LayerConfig config() const override {
    LayerConfig c;
    c.set("filters", filters_).set("kernel_size", kernel_size_).set("strides", strides_);
    c.set("padding", to_string(padding_));
    this->add_settings(c);
    return c;
  }
  static Conv2D from_config(const LayerConfig& c) {
    const Index filters = c.positive("filters");
    const auto kernel_size = c.size2("kernel_size");
    Conv2DOptions o;
    o.strides = c.size2("strides");
    o.padding = c.choice("padding", {Padding::valid, Padding::same});
    const KernelSettings s = Base::read_settings(c);
    o.activation = s.activation;
    o.use_bias = s.use_bias;
    o.kernel_initializer = s.kernel_initializer;
    o.seed = s.seed;
    o.kernel_regularizer = s.kernel_regularizer;
    o.bias_regularizer = s.bias_regularizer;
    return Conv2D(filters, kernel_size, o);
  }
  std::optional<std::vector<WeightShape>> weight_shapes(const Shape& input) const override {
    if (input.rank() != 3) return std::vector<WeightShape>{};  // build() rejects it, allocating nothing
    detail::checked_size(layer_label(*this) + ": kernel kh x kw x C x F",
                         {kernel_size_[0], kernel_size_[1], input[2], filters_});
    return this->kernel_and_bias(Shape{kernel_size_[0], kernel_size_[1], input[2], filters_}, "kh x kw x C x F");
  }

  /// Draws the kernel with the kernel initializer (Keras' fans for a
  /// convolution, fans()) and zeroes the bias. A layer made with a seed draws
  /// from Rng(seed) and leaves `rng` untouched.
  void initialize(Rng& rng) override {
    if (!this->built())
      throw StateError(this->describe() + ": initialize() needs the input shape; call build(shape) first");
    this->draw_weights(&rng);
  }
  /// Keras's fans of a convolution kernel: (kh·kw·C, kh·kw·F).
  std::pair<Index, Index> fans() const {
    const Index taps = kernel_size_[0] * kernel_size_[1];
    return {taps * window_.channels(), taps * filters_};
  }

  Index filters() const { return filters_; }
  std::array<Index, 2> kernel_size() const { return kernel_size_; }
  std::array<Index, 2> strides() const { return strides_; }
  Padding padding() const { return padding_; }

 protected:
  Shape build_impl(const Shape& input) override {
    const std::string label = layer_label(*this);
    const Window2D window(label, "kernel", input, kernel_size_, strides_, padding_);
    const Index patch = detail::checked_size(label + ": kernel kh x kw x C",
                                             {kernel_size_[0], kernel_size_[1], window.channels()});
    detail::checked_size(label + ": kernel (kh·kw·C) x F", {patch, filters_});
    detail::checked_size(label + ": im2col of one sample (positions x kh·kw·C)", {window.positions(), patch});
    const Shape output{window.out_height(), window.out_width(), filters_};
    // Nothing below throws: the layer changes only once the shape is accepted.
    window_ = window;
    this->allocate(patch, filters_);
    return output;
  }

  // Both phases compute the same function; the training phase's im2col is
  // what backward() reuses (cols_ always holds the last forward's).
  void forward_training(const Matrix<Scalar>& x, Matrix<Scalar>& y) override { convolve(x, y); }
  void forward_inference(const Matrix<Scalar>& x, Matrix<Scalar>& y) override { convolve(x, y); }

  void backward_impl(const Matrix<Scalar>& /*x*/, const Matrix<Scalar>& dy, Matrix<Scalar>* dx) override {
    const Matrix<Scalar>& dz = this->activation_gradient(dy);  // N x (H_out·W_out·F)
    const ConstRows dZ(dz.data(), cols_.rows(), filters_);     // (N·H_out·W_out) x F, no copy
    this->weight_gradients(cols_, dZ);                         // dK = colsᵀ·dZ, db = Σ_rows dZ
    if (!dx) return;
    dcols_.resize(cols_.rows(), cols_.cols());
    this->rows_gradient(dZ, dcols_);  // dcols = dZ·Kᵀ   ((N·H_out·W_out) x (kh·kw·C))
    // col2im: dx = Σ over the windows that saw each pixel of its dcols entries
    // (the transpose of im2col's copy; padding entries are dropped).
    dx->setZero();
    Scalar* out = dx->data();
    window_.for_each_window(dx->rows(), [&](Index p, Index n, Window2D::Span rows, Window2D::Span cols) {
      const Scalar* patch = dcols_.row(p).data();
      const Index run = cols.size() * window_.channels();
      for (Index h = rows.begin; h < rows.end; ++h)
        Run(out + window_.offset(n, h, cols.begin), run) +=
            ConstRun(patch + patch_offset(h - rows.begin + rows.skip, cols.skip), run);
    });
  }

 private:
  // Offset in a cols row of kernel position (i, j): rows are ordered (i, j, c).
  Index patch_offset(Index i, Index j) const { return (i * kernel_size_[1] + j) * window_.channels(); }

  // y = act(im2col(x)·K + b), the product written into y viewed as
  // (N·H_out·W_out) x F.
  void convolve(const Matrix<Scalar>& x, Matrix<Scalar>& y) {
    im2col(x);
    this->apply(cols_, y);
  }

  // cols row p = the window of output position p, in (i, j, c) order. One
  // window row covers cols.size() adjacent pixels, contiguous in x as in cols:
  // each is copied as one run; rows cut by the padding are zero-filled first.
  void im2col(const Matrix<Scalar>& x) {
    detail::checked_size([this] { return this->describe() + ": im2col of the batch (N x positions x kh·kw·C)"; },
                         {x.rows(), window_.positions(), this->kernel().rows()});
    cols_.resize(x.rows() * window_.positions(), this->kernel().rows());
    const Scalar* in = x.data();
    window_.for_each_window(x.rows(), [&](Index p, Index n, Window2D::Span rows, Window2D::Span cols) {
      Scalar* patch = cols_.row(p).data();
      if (rows.size() < kernel_size_[0] || cols.size() < kernel_size_[1]) cols_.row(p).setZero();
      const Index run = cols.size() * window_.channels();
      for (Index h = rows.begin; h < rows.end; ++h)
        std::copy_n(in + window_.offset(n, h, cols.begin), run,
                    patch + patch_offset(h - rows.begin + rows.skip, cols.skip));
    });
  }

  Index filters_;
  std::array<Index, 2> kernel_size_;
  std::array<Index, 2> strides_;
  Padding padding_;
  Window2D window_;  // output size and padding, set by build()
  Matrix<Scalar> cols_;   // (N·H_out·W_out) x (kh·kw·C): im2col of the last forward's input
  Matrix<Scalar> dcols_;        // (N·H_out·W_out) x (kh·kw·C): dLoss/dcols
};

}  // namespace minidl
