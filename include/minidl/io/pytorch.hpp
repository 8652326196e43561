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
// layer's module in PyTorchLoadOptions::modules. Each layer says which
// state_dict names its tensors have (Layer::pytorch_counterpart()); a layer of
// the user's own gets them from its own override or from
// PyTorchLoadOptions::tensor_names. A tensor's PyTorch layout follows from its
// Keras shape (Parameter::shape), PyTorch's convention for every weight:
//   rank 1 (n)             the same
//   rank 2 (in, out)       (out, in)
//   rank r (k..., in, out) (out, in, k...)          (Conv2D: (kh, kw, C, F) -> (F, C, kh, kw))
// PyTorch flattens images channels first: a weight that reads the features
// of a Flatten of an image (a rank-2 kernel's input axis, or the per-feature
// weights of a layer such as BatchNorm1d that keeps its input's shape) is
// reordered to minidl's channels-last order on load (the inputs themselves
// must be given channels last: NCHW permuted to NHWC).
// A state_dict holds no padding or stride: a Conv2d with padding=0 is minidl's
// 'valid'; PyTorch's symmetric padding matches 'same' only for odd kernels at
// stride 1. Grouped or dilated convolutions have no minidl counterpart.

#pragma once

#include <algorithm>
#include <array>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "weights.hpp"

namespace minidl {

struct PyTorchLoadOptions {
  /// Tensors the model has no use for are an error; false ignores them.
  bool strict = true;
  /// The state_dict prefix of each minidl layer ("features.0"); empty: "0", "1", ... by index.
  std::vector<std::string> modules;
  /// For a layer (by name) without a PyTorch counterpart of its own, or to
  /// override it: each of its tensors' names in the module's state_dict,
  /// e.g. tensor_names["scale"] = {{"scale", "weight"}}.
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> tensor_names;
};

namespace detail {

// A layer that keeps its input's shape and whose every weight has one value
// per feature (BatchNorm, activations, Dropout): features pass through it in order.
template <class Scalar>
bool per_feature(const Layer<Scalar>& layer) {
  if (layer.input_shape() != layer.output_shape()) return false;
  for (const auto& p : layer_tensors(layer))
    if (p.shape.rank() != 1) return false;
  return true;
}

// The (H, W, C) image that a Flatten (a layer without weights from an image
// to as many features) turned into layer k's input, if the features reach
// layer k only through per-feature layers; else nothing.
template <class Scalar>
std::optional<Shape> flattened_image(const Sequential<Scalar>& model, std::size_t k) {
  for (std::size_t j = k; j-- > 0;) {
    const Layer<Scalar>& l = model.layer(j);
    const bool flatten = l.input_shape().rank() == 3 && l.output_shape().rank() == 1 &&
                         l.input_size() == l.output_size() && l.parameter_count() + l.state_count() == 0;
    if (flatten) return l.input_shape();
    if (!per_feature(l)) return std::nullopt;
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

// PyTorch's layout of a Keras-layout weight: the axes of `keras` in PyTorch's
// order (out, in, k...), as indices into `keras`.
inline std::vector<int> pytorch_axes(const Shape& keras) {
  const int r = keras.rank();
  if (r == 1) return {0};
  std::vector<int> axes{r - 1, r - 2};
  for (int a = 0; a < r - 2; ++a) axes.push_back(a);
  return axes;
}

/// The binding of one weight `p` of `layer` to the state_dict tensor `name`:
/// its PyTorch shape, and for each value in minidl's C order its index in
/// the file; `order` (if not empty) reorders the features of a Flatten the
/// weight reads (`reorder_input`: the input axis of a kernel, else every axis).
template <class Scalar>
TensorBinding<Scalar> pytorch_binding(const Layer<Scalar>& layer, const Parameter<Scalar>& p, std::string name,
                                      const std::vector<Index>& order, bool per_feature_layer) {
  const Shape& k = p.shape;
  const std::vector<int> axes = pytorch_axes(k);
  TensorBinding<Scalar> b{std::move(name), {}, layer.describe() + " " + p.name + layout_text(p.layout), p, {}};
  std::vector<Index> stride(static_cast<std::size_t>(k.rank()));  // of each Keras axis in the PyTorch tensor
  Index s = 1;
  for (int j = k.rank(); j-- > 0;) {
    stride[static_cast<std::size_t>(axes[static_cast<std::size_t>(j)])] = s;
    s *= k[axes[static_cast<std::size_t>(j)]];
  }
  for (int axis : axes) b.shape.push_back(k[axis]);
  const bool reorder_input = !order.empty() && k.rank() == 2;
  const bool reorder_all = !order.empty() && k.rank() == 1 && per_feature_layer;
  if (k.rank() == 1 && !reorder_all) return b;  // read in order
  b.source.resize(static_cast<std::size_t>(p.size));
  std::array<Index, Shape::max_rank> at{};  // the Keras index of value i
  for (Index i = 0; i < p.size; ++i) {
    Index source = 0;
    for (int a = 0; a < k.rank(); ++a) {
      Index index = at[static_cast<std::size_t>(a)];
      if ((reorder_input && a == 0) || reorder_all) index = order[static_cast<std::size_t>(index)];
      source += index * stride[static_cast<std::size_t>(a)];
    }
    b.source[static_cast<std::size_t>(i)] = source;
    for (int a = k.rank(); a-- > 0;) {  // the next index in C order
      if (++at[static_cast<std::size_t>(a)] < k[a]) break;
      at[static_cast<std::size_t>(a)] = 0;
    }
  }
  return b;
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
  std::vector<TensorBinding<Scalar>> out;
  for (std::size_t i = 0; i < model.size(); ++i) {
    const Layer<Scalar>& layer = model.layer(i);
    const std::string prefix = (options.modules.empty() ? std::to_string(i) : options.modules[i]) + ".";
    const auto tensors = layer_tensors(layer);
    if (tensors.empty()) continue;
    PyTorchCounterpart counterpart = layer.pytorch_counterpart();
    const auto given = options.tensor_names.find(layer.name());
    if (given != options.tensor_names.end()) counterpart = {given->second, {}, {}};
    if (!counterpart.problem.empty())
      throw ValueError(message(call, ": layer ", i, " (", layer.describe(), ") ", counterpart.problem));
    for (const auto& name : counterpart.unused) ignored.insert(prefix + name);
    const auto image = flattened_image(model, i);
    const std::vector<Index> order = image ? channels_first_order(*image) : std::vector<Index>{};
    for (const auto& p : tensors) {
      const auto named = std::find_if(counterpart.tensors.begin(), counterpart.tensors.end(),
                                      [&](const auto& pair) { return pair.first == p.name; });
      if (named == counterpart.tensors.end())
        throw ValueError(message(call, ": layer ", i, " (", layer.describe(), ") has no known PyTorch name for its "
                                 "tensor '", p.name, "'; give its tensors' state_dict names in "
                                 "PyTorchLoadOptions::tensor_names[\"", layer.name(), "\"] (e.g. {{\"", p.name,
                                 "\", \"weight\"}}) or override Layer::pytorch_counterpart()"));
      out.push_back(pytorch_binding(layer, p, prefix + named->second, order, per_feature(layer)));
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
