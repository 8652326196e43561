// minidl — a model's weights in a safetensors file (save_weights / load_weights,
// as Keras's), and PyTorch state_dicts saved as safetensors.
//
// Tensor names are "<layer name>.<tensor name>", the tensor names being Keras's
// (layer names are unique within a model):
//   | layer              | tensor                 | shape, C order  | note                              |
//   |--------------------|------------------------|-----------------|-----------------------------------|
//   | Dense              | dense.kernel           | (inputs, units) | Keras; PyTorch's Linear.weight is  |
//   |                    | dense.bias             | (units)         |   (units, inputs)                 |
//   | Conv2D             | conv2d.kernel          | (kh, kw, C, F)  | Keras; PyTorch's is (F, C, kh, kw) |
//   |                    | conv2d.bias            | (F)             |                                   |
//   | BatchNormalization | batch_normalization.gamma, .beta, .moving_mean, .moving_variance   (C)  |
// Other layers have no tensors. BatchNorm's update counter (PyTorch's
// num_batches_tracked) is not saved, as in Keras, nor are Dropout generators.
// Values are written as F32 or F64 (the model's scalar by default) and
// converted to the model's scalar on load.
//
// A load checks everything before it changes anything: every tensor of the
// model present with its shape, no tensor the model lacks (unless
// LoadOptions::strict is false). A failed load throws FormatError naming the
// file, the tensor, what was expected and what was found, and leaves the model
// bit for bit as it was.
#pragma once

#include <cstdint>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "../layers/activation_layer.hpp"
#include "../layers/batch_norm.hpp"
#include "../layers/conv2d.hpp"
#include "../layers/dense.hpp"
#include "../layers/dropout.hpp"
#include "../layers/flatten.hpp"
#include "../sequential.hpp"
#include "safetensors.hpp"

namespace minidl {

struct LoadOptions {
  /// Tensors in the file that the model does not have are an error; false ignores them.
  bool strict = true;
};

/// The file dtype of a scalar type: F32 for float, F64 for double.
template <class Scalar>
constexpr DType dtype_of() {
  static_assert(std::is_same_v<Scalar, float> || std::is_same_v<Scalar, double>, "minidl stores float or double");
  return std::is_same_v<Scalar, float> ? DType::F32 : DType::F64;
}

namespace detail {

// Metadata every file minidl writes carries: what it is, and the layout version.
inline const char* const format_key = "minidl.format";  // "weights" or "model"
inline const char* const version_key = "minidl.format_version";
inline const char* const format_version = "1";

/// One tensor of the model and where its values are in a file.
template <class Scalar>
struct TensorBinding {
  std::string name;                 ///< the tensor's name in the file
  std::vector<std::int64_t> shape;  ///< its shape in the file, C order
  std::string what;                 ///< for messages: "Dense 'dense' kernel (inputs x units)"
  Parameter<Scalar> target;         ///< the model's values
  std::vector<Index> source;        ///< target[i] = file[source[i]]; empty: the same order
};

// The tensors of a layer: parameters() then state(). Collecting only takes
// addresses, so a const model can be viewed (save_weights only reads them).
template <class Scalar>
std::vector<Parameter<Scalar>> layer_tensors(const Layer<Scalar>& layer) {
  auto& l = const_cast<Layer<Scalar>&>(layer);
  auto out = l.parameters();
  for (const auto& p : l.state()) out.push_back(p);
  return out;
}

/// Every tensor of `model` under minidl's names, in get_weights() order.
/// Throws ValueError (naming `call`) if two layers share a name.
template <class Scalar>
std::vector<TensorBinding<Scalar>> minidl_bindings(const Sequential<Scalar>& model, const char* call) {
  std::vector<TensorBinding<Scalar>> out;
  std::map<std::string, std::size_t> names;  // layer name -> index
  for (std::size_t i = 0; i < model.size(); ++i) {
    const Layer<Scalar>& layer = model.layer(i);
    const auto [it, fresh] = names.emplace(layer.name(), i);
    if (!fresh || layer.name().empty())
      throw ValueError(message(call, ": layer ", i, " (", layer.describe(), ") needs a name of its own",
                               fresh ? "" : message(", layer ", it->second, " has the same name"),
                               "; tensors are named '<layer name>.<tensor>'; rename it with set_name()"));
    for (const auto& p : layer_tensors(layer)) {
      std::vector<std::int64_t> shape{p.size};
      std::string layout;
      if (const auto* dense = dynamic_cast<const Dense<Scalar>*>(&layer); dense && p.name == "kernel") {
        shape = {dense->kernel().rows(), dense->kernel().cols()};
        layout = " (inputs x units)";
      } else if (const auto* conv = dynamic_cast<const Conv2D<Scalar>*>(&layer); conv && p.name == "kernel") {
        shape = {conv->kernel_size()[0], conv->kernel_size()[1], conv->input_shape()[2], conv->filters()};
        layout = " (kh x kw x C x F)";
      }
      out.push_back({layer.name() + "." + p.name, shape, layer.describe() + " " + p.name + layout, p, {}});
    }
  }
  return out;
}

/// Loads `bindings` from `file`: checks presence and shapes (and, if strict,
/// that the file has nothing else but `ignored` names), reads every value into
/// temporaries, and only then writes the model. Throws FormatError naming `source`.
template <class Scalar>
void load_bindings(const std::vector<TensorBinding<Scalar>>& bindings, const SafetensorsFile& file,
                   const std::string& source, const LoadOptions& options, const std::set<std::string>& ignored = {}) {
  const auto version = file.metadata().find(version_key);
  if (version != file.metadata().end() && version->second != format_version)
    throw FormatError(message(source, ": metadata ", version_key, " is '", version->second,
                              "', this minidl reads version ", format_version));
  std::set<std::string> expected(ignored);
  for (const auto& b : bindings) {
    expected.insert(b.name);
    const TensorEntry* entry = file.find(b.name);
    if (!entry)
      throw FormatError(message(source, ": tensor '", b.name, "' is missing (", b.what, ", expected shape ",
                                shape_text(b.shape), ")"));
    if (entry->shape != b.shape)
      throw FormatError(message(source, ": tensor '", b.name, "' has shape ", shape_text(entry->shape),
                                ", expected ", shape_text(b.shape), " (", b.what, ")"));
  }
  if (options.strict)
    for (const auto& entry : file.tensors())
      if (!expected.count(entry.name))
        throw FormatError(message(source, ": unexpected tensor '", entry.name, "' ", dtype_name(entry.dtype), " ",
                                  shape_text(entry.shape), ": the model has no tensor of that name (",
                                  "LoadOptions::strict = false ignores it)"));
  std::vector<Vector<Scalar>> values;
  Vector<Scalar> raw;
  for (const auto& b : bindings) {
    values.emplace_back(b.target.size);
    raw.resize(b.target.size);
    file.read(*file.find(b.name), raw.data());
    if (b.source.empty())
      values.back() = raw;
    else
      for (Index i = 0; i < raw.size(); ++i) values.back()[i] = raw[b.source[static_cast<std::size_t>(i)]];
  }
  for (std::size_t i = 0; i < bindings.size(); ++i) bindings[i].target.values() = values[i];
}

template <class To, class Scalar>
std::vector<To> converted(const Parameter<Scalar>& p) {
  std::vector<To> out(static_cast<std::size_t>(p.size));
  for (Index i = 0; i < p.size; ++i) out[static_cast<std::size_t>(i)] = static_cast<To>(p.value[i]);
  return out;
}

/// Writes `bindings` atomically as `dtype`, with `metadata` plus the format version.
template <class Scalar>
void save_bindings(const std::vector<TensorBinding<Scalar>>& bindings, const std::string& path, DType dtype,
                   std::map<std::string, std::string> metadata) {
  metadata[version_key] = format_version;
  std::vector<std::vector<float>> floats(bindings.size());  // converted copies, when dtype is not Scalar's
  std::vector<std::vector<double>> doubles(bindings.size());
  std::vector<TensorToWrite> tensors;
  for (std::size_t i = 0; i < bindings.size(); ++i) {
    const auto& p = bindings[i].target;
    const void* data = p.value;
    if (dtype != dtype_of<Scalar>()) {
      if (dtype == DType::F32) data = (floats[i] = converted<float>(p)).data();
      else data = (doubles[i] = converted<double>(p)).data();
    }
    tensors.push_back({bindings[i].name, dtype, bindings[i].shape, data});
  }
  write_safetensors(path, tensors, metadata);
}

}  // namespace detail

/// Writes every weight and statistics tensor of `model` to `path` (atomically:
/// a failure leaves an existing file as it was), as `dtype`.
template <class Scalar>
void save_weights(const Sequential<Scalar>& model, const std::string& path, DType dtype = dtype_of<Scalar>()) {
  detail::save_bindings(detail::minidl_bindings(model, "save_weights"), path, dtype,
                        {{detail::format_key, "weights"}});
}

/// Loads into `model` the tensors save_weights (or save_model) wrote for a
/// model of the same architecture and layer names; F32 or F64, converted to Scalar.
template <class Scalar>
void load_weights(Sequential<Scalar>& model, const std::string& path, LoadOptions options = {}) {
  const auto bindings = detail::minidl_bindings(model, "load_weights");
  detail::load_bindings(bindings, read_safetensors(path), path, options);
}

// ---- PyTorch state_dicts --------------------------------------------------
//
// A state_dict saved with safetensors names module i of an nn.Sequential "i.":
//   | PyTorch (shape)                              | minidl layer i                          |
//   |----------------------------------------------|-----------------------------------------|
//   | Linear i.weight (units, inputs), i.bias      | Dense kernel (its transpose), bias      |
//   | Conv2d i.weight (F, C, kh, kw), i.bias       | Conv2D kernel (kh, kw, C, F), bias      |
//   | BatchNorm1d/2d i.weight, i.bias,             | BatchNorm gamma, beta, moving_mean,     |
//   |   i.running_mean, i.running_var              |   moving_variance (pytorch convention)  |
//   | i.num_batches_tracked                        | ignored (minidl cannot set its counter) |
// so the minidl model must have one layer per PyTorch module, in order (a
// PyTorch nn.ReLU is a minidl ReLU layer, not a Dense activation), or name each
// layer's module in PyTorchLoadOptions::modules. PyTorch flattens images
// channels first: a Linear or BatchNorm1d reached from a Flatten of an image
// gets its features reordered to minidl's channels-last order on load (the
// inputs themselves must be given channels last: NCHW permuted to NHWC).
// A state_dict holds no padding or stride: a Conv2d with padding=0 is minidl's
// 'valid'; PyTorch's symmetric padding matches 'same' only for odd kernels at
// stride 1. Grouped or dilated convolutions have no minidl counterpart.

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

/// read_safetensors(path), except that tensors of a dtype minidl does not read
/// (PyTorch's BatchNorm counter num_batches_tracked is I64) are relabelled as
/// F64 (or F32) values of the same byte size, so the rest of the file is
/// validated and read as usual; `others` maps their names to their dtype.
/// Their values must not be used.
inline SafetensorsFile read_with_other_dtypes(const std::string& path, std::map<std::string, std::string>& others) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::uint64_t n = 0;
  for (std::size_t k = 8; in && bytes.size() >= 8 && k-- > 0;) n = n << 8 | static_cast<unsigned char>(bytes[k]);
  if (!in || bytes.size() < 8 || n > bytes.size() - 8) return read_safetensors(path);  // its error names the cause
  auto header = nlohmann::ordered_json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(n),
                                              nullptr, false);
  if (header.is_object())
    for (auto& [name, t] : header.items()) {
      if (name == "__metadata__" || !t.is_object() || !t.contains("dtype") || !t["dtype"].is_string() ||
          t["dtype"] == "F32" || t["dtype"] == "F64" || !t.contains("data_offsets"))
        continue;
      const auto& offsets = t["data_offsets"];
      if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
          !offsets[1].is_number_unsigned() || offsets[1].get<std::uint64_t>() < offsets[0].get<std::uint64_t>())
        continue;  // left for read_safetensors to reject
      const std::uint64_t size = offsets[1].get<std::uint64_t>() - offsets[0].get<std::uint64_t>();
      if (size % 4 != 0) continue;
      others[name] = t["dtype"].get<std::string>();
      t["dtype"] = size % 8 == 0 ? "F64" : "F32";
      t["shape"] = {size % 8 == 0 ? size / 8 : size / 4};
    }
  if (others.empty()) return parse_safetensors(std::move(bytes), path);
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');
  std::string file(8, '\0');
  for (std::size_t k = 0; k < 8; ++k) file[k] = static_cast<char>((json.size() >> (8 * k)) & 0xFF);
  return parse_safetensors(file + json + bytes.substr(8 + n), path);
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
void load_pytorch_state_dict(Sequential<Scalar>& model, const std::string& path, PyTorchLoadOptions options = {}) {
  std::set<std::string> ignored;
  const auto bindings = detail::pytorch_bindings(model, options, ignored);
  std::map<std::string, std::string> others;  // tensors of other dtypes: only ignored ones may have one
  const SafetensorsFile file = detail::read_with_other_dtypes(path, others);
  for (const auto& b : bindings)
    if (others.count(b.name))
      throw FormatError(detail::message(path, ": tensor '", b.name, "' has dtype ", others[b.name],
                                        ", expected F32 or F64 (", b.what, ")"));
  for (const auto& name : ignored)
    if (const TensorEntry* entry = file.find(name); entry && entry->element_count() != 1)
      throw FormatError(detail::message(path, ": tensor '", name, "' holds ", entry->end - entry->begin,
                                        " bytes, expected one value (PyTorch's counter)"));
  detail::load_bindings(bindings, file, path, LoadOptions{options.strict}, ignored);
}

}  // namespace minidl
