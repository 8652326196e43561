// minidl — a model's weights in a safetensors file (save_weights / load_weights,
// as Keras's). PyTorch state_dicts: pytorch.hpp.
//
// Tensor names are "<layer name>.<tensor name>", the tensor names being Keras's
// (layer names are unique within a model), each with the shape its layer
// declares (Parameter::shape, Keras's layout):
//   | layer              | tensor                 | shape, C order  | note                              |
//   |--------------------|------------------------|-----------------|-----------------------------------|
//   | Dense              | dense.kernel           | (inputs, units) | Keras; PyTorch's Linear.weight is  |
//   |                    | dense.bias             | (units)         |   (units, inputs)                 |
//   | Conv2D             | conv2d.kernel          | (kh, kw, C, F)  | Keras; PyTorch's is (F, C, kh, kw) |
//   |                    | conv2d.bias            | (F)             |                                   |
//   | BatchNormalization | batch_normalization.gamma, .beta, .moving_mean, .moving_variance   (C)  |
// Other built-in layers have no tensors; a user's layer has the ones it declares. BatchNorm's update counter (PyTorch's
// num_batches_tracked) is not saved, as in Keras, nor are Dropout generators.
// Values are written as F32 or F64 (the model's scalar by default) and
// converted to the model's scalar on load.
//
// A load checks everything before it changes anything: every tensor of the
// model present with its shape, no tensor the model lacks (unless
// LoadOptions::strict is false; a saved optimizer state, "optimizer/...", is
// not the model's weights and is never loaded here: see optimizer_state.hpp).
// A failed load throws FormatError naming the file, the tensor, what was
// expected and what was found, and leaves the model bit for bit as it was.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "../sequential.hpp"
#include "../safetensors/safetensors.hpp"

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
// Tensors under this prefix are a saved optimizer state (optimizer_state.hpp),
// not weights: a weights load leaves them alone.
inline const char* const optimizer_prefix = "optimizer/";

/// One tensor of the model and where its values are in a file.
template <class Scalar>
struct TensorBinding {
  std::string name;                 ///< the tensor's name in the file
  std::vector<std::int64_t> shape;  ///< its shape in the file, C order
  std::string what;                 ///< for messages: "Dense 'dense' kernel (inputs x units)"
  Parameter<Scalar> target;         ///< the model's values
  std::vector<Index> source;        ///< target[i] = file[source[i]]; empty: the same order
};

/// A tensor shape as the file writes it: its dimensions, C order.
inline std::vector<std::int64_t> dims_of(const Shape& shape) {
  std::vector<std::int64_t> out;
  for (int a = 0; a < shape.rank(); ++a) out.push_back(shape[a]);
  return out;
}
/// " (inputs x units)" for messages, or nothing for a tensor without a layout.
inline std::string layout_text(const char* layout) {
  return layout && *layout ? std::string(" (") + layout + ")" : std::string();
}

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
    for (const auto& p : layer_tensors(layer))
      out.push_back({layer.name() + "." + p.name, dims_of(p.shape),
                     layer.describe() + " " + p.name + layout_text(p.layout), p, {}});
  }
  return out;
}

/// Throws FormatError naming `source` unless `file` holds tensor `name` as F32
/// or F64 with exactly `shape` (`what` describes it: "Dense 'dense' kernel
/// (inputs x units)"). Checking this before a layer is built is what bounds a
/// load's memory by the file's size.
inline void check_file_tensor(const SafetensorsFile& file, const std::string& source, const std::string& name,
                              const std::vector<std::int64_t>& shape, const std::string& what) {
  const TensorEntry* entry = file.find(name);
  if (!entry)
    throw FormatError(message(source, ": tensor '", st_short(name), "' is missing (", what, ", expected shape ",
                              shape_text(shape), ")"));
  if (entry->dtype != DType::F32 && entry->dtype != DType::F64)
    throw FormatError(message(source, ": tensor '", st_short(name), "' has dtype ", dtype_name(entry->dtype),
                              ", expected F32 or F64 (", what, ")"));
  if (entry->shape != shape)
    throw FormatError(message(source, ": tensor '", st_short(name), "' has shape ", st_short(shape_text(entry->shape)),
                              ", expected ", shape_text(shape), " (", what, ")"));
}

/// Loads `bindings` from `file`: checks presence and shapes (and, if strict,
/// that the file has nothing else but `ignored` names), reads every value into
/// temporaries and checks them (finite; a variance >= 0), and only then writes
/// the model. Throws FormatError naming `source`.
template <class Scalar>
void load_bindings(const std::vector<TensorBinding<Scalar>>& bindings, const SafetensorsFile& file,
                   const std::string& source, const LoadOptions& options, const std::set<std::string>& ignored = {}) {
  const auto version = file.metadata().find(version_key);
  if (version != file.metadata().end() && version->second != format_version)
    throw FormatError(message(source, ": metadata ", version_key, " is '", st_short(version->second),
                              "', this minidl reads version ", format_version));
  std::set<std::string> expected(ignored);
  for (const auto& b : bindings) {
    expected.insert(b.name);
    check_file_tensor(file, source, b.name, b.shape, b.what);
  }
  if (options.strict)
    for (const auto& entry : file.tensors())
      if (!expected.count(entry.name) && entry.name.rfind(optimizer_prefix, 0) != 0)
        throw FormatError(message(source, ": unexpected tensor '", st_short(entry.name), "' ",
                                  dtype_name(entry.dtype), " ", st_short(shape_text(entry.shape)),
                                  ": the model has no tensor of that name (LoadOptions::strict = false ignores it)"));
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
    // After the conversion to Scalar: a double beyond float's range is Inf here.
    check_tensor_values<FormatError>(b.target, values.back(),
                                     message(source, ": tensor '", b.name, "' (", b.what, ")"));
  }
  for (std::size_t i = 0; i < bindings.size(); ++i) bindings[i].target.values() = values[i];
}

template <class To, class Scalar>
std::vector<To> converted(const Parameter<Scalar>& p) {
  std::vector<To> out(static_cast<std::size_t>(p.size));
  for (Index i = 0; i < p.size; ++i) out[static_cast<std::size_t>(i)] = static_cast<To>(p.value[i]);
  return out;
}

/// Writes `bindings` atomically as `dtype`, and `extra` tensors as they are,
/// with `metadata` plus the format version.
template <class Scalar>
void save_bindings(const std::vector<TensorBinding<Scalar>>& bindings, const std::string& path, DType dtype,
                   std::map<std::string, std::string> metadata, const std::vector<TensorToWrite>& extra = {}) {
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
  tensors.insert(tensors.end(), extra.begin(), extra.end());
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
/// The same from a file already in memory (parse_safetensors); `source` names it in messages.
template <class Scalar>
void load_weights(Sequential<Scalar>& model, const SafetensorsFile& file, const std::string& source,
                  LoadOptions options = {}) {
  detail::load_bindings(detail::minidl_bindings(model, "load_weights"), file, source, options);
}

}  // namespace minidl
