// minidl — the geometry of a 2-D sliding window, shared by Conv2D and the
// pooling layers: output size, padding, and the input pixels each output
// position sees.
//
// Keras semantics (TensorFlow's), for each spatial axis of length L, window k,
// stride s:
//   valid: out = floor((L − k)/s) + 1, no padding (k must fit: k ≤ L);
//   same:  out = ceil(L/s), pad_total = max((out − 1)·s + k − L, 0),
//          pad_before = pad_total/2, the extra row/column (odd pad_total) after.
// PyTorch pads both sides equally; TensorFlow's 'same' puts the odd row at the
// bottom/right, which PyTorch reproduces only with an explicit F.pad.
//
// Batches are row-major N x (H·W·C), channels last, so pixel (n, h, w) of a
// batch starts at offset ((n·H + h)·W + w)·C of its data and its C channels
// are contiguous; so are the pixels of one image row, which lets a window row
// be copied as one run of (window width)·C scalars.
#pragma once

#include <algorithm>
#include <array>
#include <string>

#include "../layer.hpp"

namespace minidl {

/// How a window treats the image border (Keras' `padding`).
enum class Padding { valid, same };

/// Keras' name: "valid" or "same".
inline const char* to_string(Padding padding) { return padding == Padding::valid ? "valid" : "same"; }

/// Two sizes, height then width, as text: "3x3".
inline std::string size_text(const std::array<Index, 2>& size) {
  return std::to_string(size[0]) + "x" + std::to_string(size[1]);
}

/// Throws ValueError ("MaxPooling2D: strides must be positive, got 0x2")
/// unless both sizes are in [1, max_elements] (which keeps the geometry's
/// arithmetic below from overflowing).
inline void check_window_argument(const std::string& layer, const char* argument, const std::array<Index, 2>& size) {
  if (size[0] <= 0 || size[1] <= 0)
    throw ValueError(detail::message(layer, ": ", argument, " must be positive, got ", size_text(size)));
  if (size[0] > max_elements || size[1] > max_elements)
    throw ValueError(detail::message(layer, ": ", argument, " must be at most 2^40 each, got ", size_text(size)));
}

/// Throws ShapeError naming `layer` unless the per-sample shape is an image (H, W, C).
inline void check_image_shape(const std::string& layer, const Shape& input) {
  if (input.rank() != 3)
    throw ShapeError(
        detail::message(layer, ": expects an image input shape (None, height, width, channels), got ", input.str()));
}

class Window2D {
 public:
  /// The input range [begin, end) a window covers along one axis, clipped to
  /// the image; `skip` window positions fell into the padding before it.
  struct Span {
    Index begin, end, skip;
    Index size() const { return end - begin; }
  };

  Window2D() = default;

  /// The geometry of `window` (named `what`: "kernel" or "pool") sliding over
  /// images of per-sample shape `input` (H, W, C). Throws ShapeError naming
  /// `layer` if the input is not (H, W, C) or, with valid padding, the window
  /// does not fit. Window and strides must already be positive.
  Window2D(const std::string& layer, const char* what, const Shape& input, std::array<Index, 2> window,
           std::array<Index, 2> strides, Padding padding)
      : window_(window), strides_(strides) {
    check_image_shape(layer, input);
    in_ = {input[0], input[1]};
    channels_ = input[2];
    if (padding == Padding::valid && (window[0] > in_[0] || window[1] > in_[1]))
      throw ShapeError(detail::message(layer, ": ", what, " ", size_text(window), " does not fit the ", size_text(in_),
                                       " input with valid padding"));
    for (int a = 0; a < 2; ++a) {
      if (padding == Padding::valid) {
        out_[a] = (in_[a] - window[a]) / strides[a] + 1;
        pad_[a] = 0;
      } else {
        out_[a] = in_[a] / strides[a] + (in_[a] % strides[a] != 0);  // ceil, without in + s overflowing
        pad_[a] = std::max<Index>((out_[a] - 1) * strides[a] + window[a] - in_[a], 0) / 2;
      }
    }
  }

  Index out_height() const { return out_[0]; }
  Index out_width() const { return out_[1]; }
  Index channels() const { return channels_; }
  /// Output positions (pixels) per sample: out_height·out_width (at most
  /// H·W, a size the input Shape bounds).
  Index positions() const { return out_[0] * out_[1]; }
  /// Scalars per input sample: H·W·C.
  Index input_size() const { return in_[0] * in_[1] * channels_; }
  /// Padding before the first row and column (top, left).
  std::array<Index, 2> padding_before() const { return pad_; }

  /// Offset of pixel (h, w) of sample n in a batch's data.
  Index offset(Index n, Index h, Index w) const { return ((n * in_[0] + h) * in_[1] + w) * channels_; }

  /// Calls visit(p, n, rows, cols) for every output position of a batch of
  /// `batch` samples, in storage order: p = (n·out_height + oh)·out_width + ow,
  /// and rows/cols are the input ranges its window covers.
  template <class Visit>
  void for_each_window(Index batch, Visit&& visit) const {
    Index p = 0;
    for (Index n = 0; n < batch; ++n)
      for (Index oh = 0; oh < out_[0]; ++oh) {
        const Span rows = span(0, oh);
        for (Index ow = 0; ow < out_[1]; ++ow) visit(p++, n, rows, span(1, ow));
      }
  }

 private:
  Span span(int axis, Index o) const {
    const Index start = o * strides_[axis] - pad_[axis];  // may be < 0 in the padding
    const Index begin = std::max<Index>(start, 0);
    return {begin, std::min(start + window_[axis], in_[axis]), begin - start};
  }

  std::array<Index, 2> window_{}, strides_{}, in_{}, out_{}, pad_{};
  Index channels_ = 0;
};

}  // namespace minidl
