// minidl — PyTorch state_dicts saved as safetensors, loaded into a minidl model
// (load_pytorch_state_dict).
//
// A state_dict saved with safetensors names module i of an nn.Sequential "i.":
//   | PyTorch (shape)                              | minidl layer i                          |
//   |----------------------------------------------|-----------------------------------------|
//   | Linear i.weight (units, inputs), i.bias      | Dense kernel (its transpose), bias      |
//   | Conv2d i.weight (F, C, kh, kw), i.bias       | Conv2D kernel (kh, kw, C, F), bias      |
//   | BatchNorm1d/2d i.weight, i.bias,             | BatchNorm gamma, beta, moving_mean,     |
//   |   i.running_mean, i.running_var              |   moving_variance (pytorch convention)  |
//   | i.num_batches_tracked                        | not loaded: set_num_batches_tracked()   |
// so the minidl model must have one layer per PyTorch module, in order (a
// PyTorch nn.ReLU is a minidl ReLU layer, not a Dense activation), or name each
// layer's module in PyTorchLoadOptions::modules. PyTorch flattens images
// channels first: a Linear or BatchNorm1d reached from a Flatten of an image
// gets its features reordered to minidl's channels-last order on load (the
// inputs themselves must be given channels last: NCHW permuted to NHWC).
// A state_dict holds no padding or stride: a Conv2d with padding=0 is minidl's
// 'valid'; PyTorch's symmetric padding matches 'same' only for odd kernels at
// stride 1. Grouped or dilated convolutions have no minidl counterpart.

#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "weights.hpp"

namespace minidl {

struct PyTorchLoadOptions {
  /// Tensors the model has no use for are an error; false ignores them.
  bool strict = true;
  /// The state_dict prefix of each minidl layer ("features.0"); empty: "0", "1", ... by index.
  std::vector<std::string> modules;
};

namespace detail {

// The (H, W, C) image that a Flatten turned into layer k's input, if the
// features reach layer k only through per-feature layers (BatchNorm,
// activations, Dropout); else nothing.
template <class Scalar>
std::optional<Shape> flattened_image(const Sequential<Scalar>& model, std::size_t k) {
  for (std::size_t j = k; j-- > 0;) {
    const Layer<Scalar>& l = model.layer(j);
    if (dynamic_cast<const Flatten<Scalar>*>(&l))
      return l.input_shape().rank() == 3 ? std::optional<Shape>(l.input_shape()) : std::nullopt;
    const bool per_feature = l.input_shape() == l.output_shape() &&
                             (l.parameter_count() == 0 || dynamic_cast<const BatchNorm<Scalar>*>(&l));
    if (!per_feature) return std::nullopt;
  }
  return std::nullopt;
}

// order[t] = PyTorch's index (c, h, w) of the feature minidl's Flatten puts at t = (h, w, c).
inline std::vector<Index> channels_first_order(const Shape& image) {
  const Index H = image[0], W = image[1], C = image[2];
  std::vector<Index> order(static_cast<std::size_t>(image.size()));
  for (Index h = 0; h < H; ++h)
    for (Index w = 0; w < W; ++w)
      for (Index c = 0; c < C; ++c) order[static_cast<std::size_t>((h * W + w) * C + c)] = (c * H + h) * W + w;
  return order;
}

/// Every tensor of `model` under its PyTorch name and layout; adds the names
/// that are allowed but not loaded (num_batches_tracked) to `ignored`.
template <class Scalar>
std::vector<TensorBinding<Scalar>> pytorch_bindings(const Sequential<Scalar>& model, const PyTorchLoadOptions& options,
                                                    std::set<std::string>& ignored) {
  const char* call = "load_pytorch_state_dict";
  if (!options.modules.empty() && options.modules.size() != model.size())
    throw ValueError(message(call, ": options.modules has ", options.modules.size(),
                             " names, expected one per layer (", model.size(), ") or none"));
  const std::map<std::string, std::string> torch_name{{"kernel", "weight"}, {"bias", "bias"},
                                                      {"gamma", "weight"}, {"beta", "bias"},
                                                      {"moving_mean", "running_mean"},
                                                      {"moving_variance", "running_var"}};
  std::vector<TensorBinding<Scalar>> out;
  for (std::size_t i = 0; i < model.size(); ++i) {
    const Layer<Scalar>& layer = model.layer(i);
    const std::string prefix = (options.modules.empty() ? std::to_string(i) : options.modules[i]) + ".";
    const auto* dense = dynamic_cast<const Dense<Scalar>*>(&layer);
    const auto* conv = dynamic_cast<const Conv2D<Scalar>*>(&layer);
    const auto* bn = dynamic_cast<const BatchNorm<Scalar>*>(&layer);
    const auto tensors = layer_tensors(layer);
    if (!tensors.empty() && !dense && !conv && !bn)
      throw ValueError(message(call, ": layer ", i, " (", layer.describe(), ") has no known PyTorch counterpart"));
    if (bn && bn->options().convention != BatchNormConvention::pytorch)
      throw ValueError(message(call, ": layer ", i, " (", layer.describe(), ") must be made with "
                               "BatchNormOptions::pytorch() (PyTorch's epsilon and update), got the keras convention"));
    if (bn) ignored.insert(prefix + "num_batches_tracked");
    const auto image = flattened_image(model, i);
    const std::vector<Index> order = image ? channels_first_order(*image) : std::vector<Index>{};
    for (const auto& p : tensors) {
      TensorBinding<Scalar> b{prefix + torch_name.at(p.name), {p.size}, layer.describe() + " " + p.name, p, order};
      if (dense && p.name == "kernel") {
        const Index inputs = dense->kernel().rows(), units = dense->kernel().cols();
        b.shape = {units, inputs};
        b.what += " (Linear weight: units x inputs)";
        b.source.resize(static_cast<std::size_t>(p.size));
        for (Index in = 0; in < inputs; ++in)  // kernel[in, u] = weight[u, in'], in' PyTorch's feature index
          for (Index u = 0; u < units; ++u)
            b.source[static_cast<std::size_t>(in * units + u)] =
                u * inputs + (image ? order[static_cast<std::size_t>(in)] : in);
      } else if (conv && p.name == "kernel") {
        const Index F = conv->filters(), C = conv->input_shape()[2];
        const Index kh = conv->kernel_size()[0], kw = conv->kernel_size()[1];
        b.shape = {F, C, kh, kw};
        b.what += " (Conv2d weight: F x C x kh x kw)";
        b.source.resize(static_cast<std::size_t>(p.size));
        for (Index a = 0; a < kh; ++a)  // kernel[a, b, c, f] = weight[f, c, a, b]
          for (Index w = 0; w < kw; ++w)
            for (Index c = 0; c < C; ++c)
              for (Index f = 0; f < F; ++f)
                b.source[static_cast<std::size_t>(((a * kw + w) * C + c) * F + f)] = ((f * C + c) * kh + a) * kw + w;
      } else if (!bn) {
        b.source.clear();  // a Dense or Conv2D bias: one per unit, never reordered
      }
      out.push_back(std::move(b));
    }
  }
  return out;
}

}  // namespace detail

/// Loads a PyTorch state_dict saved as safetensors (F32 or F64) into `model`,
/// built with the same layers in the same order (see the table above). Checks
/// everything first; throws FormatError (the file does not match) or
/// ValueError (the model has a layer PyTorch's names cannot describe), leaving
/// the model unchanged.
template <class Scalar>
void load_pytorch_state_dict(Sequential<Scalar>& model, const SafetensorsFile& file, const std::string& source,
                             PyTorchLoadOptions options = {}) {
  std::set<std::string> ignored;
  const auto bindings = detail::pytorch_bindings(model, options, ignored);
  for (const auto& name : ignored)  // num_batches_tracked is I64: checked, never used
    if (const TensorEntry* entry = file.find(name); entry && entry->element_count() != 1)
      throw FormatError(detail::message(source, ": tensor '", name, "' holds ", entry->end - entry->begin,
                                        " bytes, expected one value (PyTorch's counter)"));
  detail::load_bindings(bindings, file, source, LoadOptions{options.strict}, ignored);
}
/// The same from a file on disk.
template <class Scalar>
void load_pytorch_state_dict(Sequential<Scalar>& model, const std::string& path, PyTorchLoadOptions options = {}) {
  std::set<std::string> ignored;
  detail::pytorch_bindings(model, options, ignored);  // a model PyTorch cannot describe fails before any read
  load_pytorch_state_dict(model, read_safetensors(path), path, std::move(options));
}

}  // namespace minidl
