// libFuzzer target: load_weights and load_pytorch_state_dict (the overloads
// taking a SafetensorsFile) on arbitrary bytes, into fixed models built in
// code that between them hold every layer type, then predict on what loaded.
// Every input is tried on every model, in float and double, with
// strict = true and false. The promises checked:
//   - a load throws nothing but a minidl::Error (std::bad_alloc included: a
//     load costs memory proportional to the file, and these models are small);
//   - a load that throws leaves every weight bit for bit as it was;
//   - a load that succeeds (minidl's names) put into each tensor exactly the
//     file's values, converted to the model's scalar;
//   - a load that succeeds leaves only finite weights and moving variances
//     >= 0 (the loader rejects NaN, Inf and negative variances);
//   - predict on 2 finite rows then gives 2 x output-size values, and finite
//     ones for the "bounded" model (see bounded_model for why they must be);
//     predict never throws on a model that loaded.
// Any broken promise, crash, sanitizer report, leak, hang or huge allocation
// is a failure. Build and run: bash tests/fuzz/run.sh [SECONDS]
//
// make_load_corpus.cpp includes this file with MINIDL_FUZZ_MODELS_ONLY
// defined, to save these very models as the seed corpus; fuzz_load_model.cpp
// with MINIDL_FUZZ_NO_TARGET, for the mutator.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iterator>
#include <minidl/io.hpp>
#include <new>
#include <random>
#include <string>
#include <vector>

namespace load_fuzz {

using minidl::Activation;
using minidl::Index;
using minidl::Padding;
using minidl::Sequential;
using minidl::Shape;
// Pool sizes and strides as this type: MaxPooling2D({2, 2}, std::array<Index, 2>{1, 1})
// would pick the constructor whose first argument is the input shape.
using Size2 = std::array<Index, 2>;

// Layers get fixed names (the tensors in the seed files are named after them).
template <class L>
L named(L layer, const char* name) {
  layer.set_name(name);
  return layer;
}

inline minidl::DenseOptions no_bias() {
  minidl::DenseOptions o;
  o.use_bias = false;
  return o;
}

inline minidl::Conv2DOptions conv(Padding padding, Activation activation, Index stride = 1, bool use_bias = true) {
  minidl::Conv2DOptions o;
  o.strides = {stride, stride};
  o.padding = padding;
  o.activation = activation;
  o.use_bias = use_bias;
  return o;
}

// Dense with and without bias and with each activation, every activation
// layer, Dropout, BatchNormalization in both conventions. Input: 4 values.
template <class S>
Sequential<S> dense_model() {
  using namespace minidl;
  Sequential<S> m(1);
  m.add(named(Dense<S>(4, 3, Activation::relu), "dense_relu"));
  m.add(named(BatchNorm<S>(BatchNormOptions::keras()), "bn_keras"));
  m.add(named(ReLU<S>(), "relu"));
  m.add(named(Dropout<S>(0.25, 7), "dropout"));
  m.add(named(Dense<S>(3, 3, Activation::sigmoid, no_bias()), "dense_sigmoid_nobias"));
  m.add(named(Sigmoid<S>(), "sigmoid"));
  m.add(named(Dense<S>(3, 3, Activation::tanh), "dense_tanh"));
  m.add(named(Tanh<S>(), "tanh"));
  m.add(named(Dense<S>(3, 2, Activation::linear, no_bias()), "dense_linear_nobias"));
  m.add(named(Linear<S>(), "linear"));
  m.add(named(BatchNorm<S>(BatchNormOptions::pytorch()), "bn_pytorch"));
  m.add(named(Dense<S>(2, 3, Activation::softmax), "dense_softmax"));
  m.add(named(Softmax<S>(), "softmax"));
  return m;
}

// Conv2D valid and same, MaxPooling2D, BatchNormalization over channels,
// Flatten into Dense. Input: 6 x 6 x 2.
template <class S>
Sequential<S> conv_model() {
  using namespace minidl;
  Sequential<S> m(2);
  m.add(named(Conv2D<S>(Shape{6, 6, 2}, 3, 3, conv(Padding::valid, Activation::relu)), "conv_valid"));  // 4x4x3
  m.add(named(MaxPooling2D<S>(Size2{2, 2}), "max_pool"));                                               // 2x2x3
  m.add(named(Conv2D<S>(2, {2, 2}, conv(Padding::same, Activation::tanh, 1, false)), "conv_same"));     // 2x2x2
  m.add(named(BatchNorm<S>(BatchNormOptions::keras()), "bn_image"));
  m.add(named(Flatten<S>(), "flatten"));  // 8
  m.add(named(Dense<S>(8, 2, Activation::softmax), "dense_head"));
  return m;
}

// Strided Conv2D, AveragePooling2D and MaxPooling2D with same padding,
// BatchNormalization (pytorch) over channels, GlobalAveragePooling2D.
// Input: 7 x 7 x 1.
template <class S>
Sequential<S> pool_model() {
  using namespace minidl;
  Sequential<S> m(3);
  m.add(named(Conv2D<S>(Shape{7, 7, 1}, 2, {3, 3}, conv(Padding::same, Activation::sigmoid, 2)), "conv_strided"));
  m.add(named(AveragePooling2D<S>(Size2{2, 2}, Size2{1, 1}, Padding::same), "avg_pool"));   // 4x4x2
  m.add(named(MaxPooling2D<S>(Size2{3, 3}, Size2{2, 2}, Padding::same), "max_pool_same"));  // 2x2x2
  m.add(named(BatchNorm<S>(BatchNormOptions::pytorch()), "bn_image_pytorch"));
  m.add(named(GlobalAveragePooling2D<S>(), "global_avg_pool"));  // 2
  m.add(named(Dense<S>(2, 1), "dense_out"));
  return m;
}

// A model whose outputs are finite for any finite weights and any input in
// [-1, 1] (the target feeds it such values), so a non-finite output is a bug:
//   tanh:    z = x·w + b with one input: |x·w| <= |w| is finite, adding b can
//            round to ±Inf but never gives NaN, and tanh(±Inf) = ±1;
//   relu:    keeps values in [0, 1];
//   sigmoid: the same argument as tanh: output in [0, 1];
//   softmax: z = y·w without bias, |z| <= |w| finite; softmax subtracts the
//            row's maximum, so every exponent is <= 0 and the sum is >= 1;
//   linear, Softmax: finite in, finite (and for Softmax bounded) out.
// Input: 1 value.
template <class S>
Sequential<S> bounded_model() {
  using namespace minidl;
  Sequential<S> m(4);
  m.add(named(Dense<S>(1, 1, Activation::tanh), "bounded_tanh"));
  m.add(named(ReLU<S>(), "bounded_relu"));
  m.add(named(Dense<S>(1, 1, Activation::sigmoid), "bounded_sigmoid"));
  m.add(named(Dropout<S>(0.5, 3), "bounded_dropout"));
  m.add(named(Dense<S>(1, 3, Activation::softmax, no_bias()), "bounded_softmax"));
  m.add(named(Linear<S>(), "bounded_linear"));
  m.add(named(Softmax<S>(), "bounded_softmax_layer"));
  return m;
}

// PyTorch-shaped (one layer per nn module, numbered 0, 1, ...): Conv2d,
// BatchNorm2d, ReLU, MaxPool2d, Flatten, BatchNorm1d and Linear after the
// Flatten of an image (both reordered from channels first), ReLU, Dropout,
// Linear. Input: 4 x 4 x 2.
template <class S>
Sequential<S> torch_cnn_model() {
  using namespace minidl;
  Sequential<S> m(5);
  m.add(named(Conv2D<S>(Shape{4, 4, 2}, 3, {2, 2}), "conv"));       // 0: 3x3x3
  m.add(named(BatchNorm<S>(BatchNormOptions::pytorch()), "bn2d"));  // 1
  m.add(named(ReLU<S>(), "relu1"));                                 // 2
  m.add(named(MaxPooling2D<S>(Size2{2, 2}, Size2{1, 1}), "pool"));  // 3: 2x2x3
  m.add(named(Flatten<S>(), "flatten"));                            // 4: 12
  m.add(named(BatchNorm<S>(BatchNormOptions::pytorch()), "bn1d"));  // 5
  m.add(named(Dense<S>(12, 4), "fc1"));                             // 6
  m.add(named(ReLU<S>(), "relu2"));                                 // 7
  m.add(named(Dropout<S>(0.5, 11), "drop"));                        // 8
  m.add(named(Dense<S>(4, 2), "fc2"));                              // 9
  return m;
}

// A PyTorch MLP whose modules are named (PyTorchLoadOptions::modules).
// Input: 3 values.
template <class S>
Sequential<S> torch_mlp_model() {
  using namespace minidl;
  Sequential<S> m(6);
  m.add(named(Dense<S>(3, 4), "fc1"));
  m.add(named(BatchNorm<S>(BatchNormOptions::pytorch()), "bn"));
  m.add(named(ReLU<S>(), "relu"));
  m.add(named(Dropout<S>(0.1, 13), "drop"));
  m.add(named(Dense<S>(4, 2, Activation::softmax), "fc2"));
  return m;
}
inline const std::vector<std::string> torch_mlp_modules = {"features.0", "features.1", "features.2", "classifier.0",
                                                           "classifier.1"};

template <class S>
struct ModelSpec {
  const char* name;
  Sequential<S> (*make)();
  bool pytorch;                      // load_pytorch_state_dict rather than load_weights
  bool bounded;                      // outputs must be finite (bounded_model)
  std::vector<std::string> modules;  // PyTorchLoadOptions::modules
};

template <class S>
std::vector<ModelSpec<S>> model_specs() {
  return {{"dense", dense_model<S>, false, false, {}},
          {"conv", conv_model<S>, false, false, {}},
          {"pool", pool_model<S>, false, false, {}},
          {"bounded", bounded_model<S>, false, true, {}},
          {"torch_cnn", torch_cnn_model<S>, true, false, {}},
          {"torch_mlp", torch_mlp_model<S>, true, false, torch_mlp_modules}};
}

}  // namespace load_fuzz

#ifndef MINIDL_FUZZ_MODELS_ONLY
// The mutator of both load targets (fuzz_load_model.cpp includes this file
// with MINIDL_FUZZ_NO_TARGET defined to get it). A safetensors file starts
// with the length of its JSON header, and the header's offsets must tile the
// data exactly, so libFuzzer's own mutations, which insert and erase bytes,
// nearly always give a file the parser rejects before any model is built or
// any tensor matched. This one mostly decodes the file, changes it as a whole
// tensor or metadata entry (a name, a dimension, the dtype, one value set to
// NaN, Inf, a huge or negative number, a tensor dropped or copied, a
// metadata string such as the architecture JSON mutated as plain text) and
// encodes it again with consistent offsets; else it mutates the header text
// or the data with the length written again, or now and then the raw bytes,
// length included. Only how inputs are made changes: the targets still take
// arbitrary bytes.
extern "C" std::size_t LLVMFuzzerMutate(std::uint8_t* data, std::size_t size, std::size_t max_size);

namespace load_fuzz {

using Json = nlohmann::ordered_json;

struct FuzzTensor {
  std::string name, dtype;
  std::vector<std::int64_t> shape;
  std::string bytes;
};
struct FuzzFile {
  Json metadata;  // null when the file has none
  std::vector<FuzzTensor> tensors;
};

inline std::uint64_t header_length(const std::uint8_t* data, std::size_t size) {
  std::uint64_t n = 0;
  for (int k = 7; size >= 8 && k >= 0; --k) n = (n << 8) | data[k];
  return n;
}

// The file's parts, if its layout is sound (the library's checks beyond that
// are left to the library: names, dtypes and shapes are taken as they are).
inline bool decode(const std::uint8_t* data, std::size_t size, FuzzFile& file) {
  const std::uint64_t n = header_length(data, size);
  if (size < 8 || n > size - 8) return false;
  const char* begin = reinterpret_cast<const char*>(data) + 8;
  const std::string rest(begin + n, size - 8 - static_cast<std::size_t>(n));
  try {
    const Json header = Json::parse(begin, begin + n);
    if (!header.is_object()) return false;
    for (const auto& [key, value] : header.items()) {
      if (key == "__metadata__") {
        file.metadata = value;
        continue;
      }
      // Types checked first: nlohmann's get<>() converts a float to an
      // integer type, which is undefined for one out of range.
      const Json &offsets = value.at("data_offsets"), &shape = value.at("shape"), &dtype = value.at("dtype");
      if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
          !offsets[1].is_number_unsigned() || !shape.is_array() || !dtype.is_string())
        return false;
      FuzzTensor t{key, dtype.get<std::string>(), {}, {}};
      for (const Json& d : shape) {
        if (!d.is_number_integer()) return false;
        t.shape.push_back(d.get<std::int64_t>());
      }
      const auto b = offsets[0].get<std::uint64_t>(), e = offsets[1].get<std::uint64_t>();
      if (b > e || e > rest.size()) return false;
      t.bytes = rest.substr(b, e - b);
      file.tensors.push_back(std::move(t));
    }
  } catch (const Json::exception&) {
    return false;
  }
  return true;
}

// The bytes of `file` laid out as safetensors into `out`; 0 if over max_size.
inline std::size_t encode(const FuzzFile& file, std::uint8_t* out, std::size_t max_size) {
  Json header = Json::object();
  if (!file.metadata.is_null()) header["__metadata__"] = file.metadata;
  std::size_t offset = 0;
  for (const FuzzTensor& t : file.tensors) {
    header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  std::string text = header.dump(-1, ' ', false, Json::error_handler_t::replace);
  text.append((8 - text.size() % 8) % 8, ' ');
  const std::size_t total = 8 + text.size() + offset;
  if (total > max_size) return 0;
  for (int k = 0; k < 8; ++k) out[k] = static_cast<std::uint8_t>(std::uint64_t{text.size()} >> (8 * k));
  std::memcpy(out + 8, text.data(), text.size());
  std::size_t at = 8 + text.size();
  for (const FuzzTensor& t : file.tensors) {
    std::memcpy(out + at, t.bytes.data(), t.bytes.size());
    at += t.bytes.size();
  }
  return total;
}

inline std::size_t element_size(const std::string& dtype) {
  if (dtype == "F64" || dtype == "I64" || dtype == "U64") return 8;
  if (dtype == "F32" || dtype == "I32" || dtype == "U32") return 4;
  if (dtype == "F16" || dtype == "BF16" || dtype == "I16" || dtype == "U16") return 2;
  return 1;
}

// Resizes a tensor's bytes to what its dtype and shape need (repeating its
// old bytes, so the values stay plausible); false if that is over `room`.
inline bool fit_bytes(FuzzTensor& t, std::size_t room) {
  double count = 1;
  for (std::int64_t d : t.shape) count *= d < 0 ? 0.0 : static_cast<double>(d);
  const double bytes = count * static_cast<double>(element_size(t.dtype));
  if (bytes > static_cast<double>(t.bytes.size() + room)) return false;
  const std::string old = t.bytes.empty() ? std::string("\x3f\x80\x00\x00", 4) : t.bytes;
  t.bytes.resize(static_cast<std::size_t>(bytes));
  for (std::size_t k = old.size(); k < t.bytes.size(); ++k) t.bytes[k] = old[k % old.size()];
  return true;
}

// Mutates `text` with libFuzzer's mutations, growing it by at most `room` bytes.
inline void mutate_text(std::string& text, std::size_t room) {
  if (text.empty()) text = "0";
  const std::size_t size = text.size();
  text.resize(size + room);
  text.resize(LLVMFuzzerMutate(reinterpret_cast<std::uint8_t*>(text.data()), size, size + room));
}

// One structured change to `file`; false if none applied.
template <class Rng>
bool mutate_structure(FuzzFile& file, Rng& rng, std::size_t room) {
  const auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
  const unsigned op = static_cast<unsigned>(rng() % 8);
  if (op == 0 && file.metadata.is_object() && !file.metadata.empty()) {  // a metadata value as text
    auto it = file.metadata.begin();
    std::advance(it, static_cast<std::ptrdiff_t>(pick(file.metadata.size())));
    if (!it->is_string()) return false;
    mutate_text(it->get_ref<std::string&>(), room);
    return true;
  }
  if (file.tensors.empty()) return false;
  FuzzTensor& t = file.tensors[pick(file.tensors.size())];
  switch (op) {
    case 1: {  // a value: NaN, ±Inf, huge, negative, zero, tiny
      const std::size_t size = element_size(t.dtype);
      if ((t.dtype != "F32" && t.dtype != "F64") || t.bytes.size() < size) return false;
      static const double specials[] = {std::nan(""), HUGE_VAL, -HUGE_VAL, -1.0,     0.0,     -0.0,  3.0e38,
                                        -3.0e38,      1.0e-45,  1.0e300,   -1.0e300, 65504.0, 1.0e10};
      const double v = specials[pick(sizeof specials / sizeof specials[0])];
      const std::size_t at = pick(t.bytes.size() / size) * size;
      if (size == 4) {
        const float f = static_cast<float>(v);
        std::memcpy(&t.bytes[at], &f, 4);
      } else {
        std::memcpy(&t.bytes[at], &v, 8);
      }
      return true;
    }
    case 2: {  // a dimension
      if (t.shape.empty()) return false;
      std::int64_t& d = t.shape[pick(t.shape.size())];
      const auto u = static_cast<std::uint64_t>(d);  // wraps where d ± 1 or 2d would overflow
      const std::int64_t choices[] = {static_cast<std::int64_t>(u + 1),
                                      static_cast<std::int64_t>(u - 1),
                                      0,
                                      1,
                                      static_cast<std::int64_t>(2 * u),
                                      d / 2};
      d = choices[pick(6)];
      return fit_bytes(t, room);
    }
    case 3:  // the rank
      if (t.shape.size() > 4 || (rng() % 2 == 0 && !t.shape.empty())) {
        t.shape.erase(t.shape.begin() + static_cast<std::ptrdiff_t>(pick(t.shape.size())));
      } else {
        t.shape.insert(t.shape.begin() + static_cast<std::ptrdiff_t>(pick(t.shape.size() + 1)), 1 + pick(3));
      }
      return fit_bytes(t, room);
    case 4: {  // the dtype
      static const char* const dtypes[] = {"F32", "F64", "F16", "BF16", "I64", "I32", "U8", "BOOL"};
      t.dtype = dtypes[pick(8)];
      return fit_bytes(t, room);
    }
    case 5: {  // the name
      mutate_text(t.name, 16);
      for (const FuzzTensor& other : file.tensors)
        if (&other != &t && other.name == t.name) return false;
      return true;
    }
    case 6:  // drop a tensor
      file.tensors.erase(file.tensors.begin() + (&t - file.tensors.data()));
      return true;
    default: {  // copy a tensor under another's name prefix, or move it to the end
      FuzzTensor copy = t;
      const FuzzTensor& other = file.tensors[pick(file.tensors.size())];
      const std::size_t dot = other.name.rfind('.'), own = t.name.rfind('.');
      if (rng() % 2 == 0 && dot != std::string::npos && own != std::string::npos)
        copy.name = other.name.substr(0, dot) + t.name.substr(own);
      if (copy.bytes.size() > room) return false;
      for (const FuzzTensor& u : file.tensors)
        if (u.name == copy.name) {
          file.tensors.erase(file.tensors.begin() + (&t - file.tensors.data()));
          file.tensors.push_back(std::move(copy));  // moved to the end: another layout
          return true;
        }
      file.tensors.push_back(std::move(copy));
      return true;
    }
  }
}

// Every node of `json`, parents before children.
inline void collect_nodes(Json& json, std::vector<Json*>& out) {
  out.push_back(&json);
  if (json.is_structured())
    for (auto& child : json) collect_nodes(child, out);
}

// One change to a JSON document such as the architecture, keeping it JSON: a
// number set to a size that overflows or allocates a lot (or to 0, -1, ...),
// a string set to one of the format's names, an array element copied,
// dropped or moved, an object member dropped. false if none applied.
template <class Rng>
bool mutate_json(Json& json, Rng& rng) {
  std::vector<Json*> nodes;
  collect_nodes(json, nodes);
  const auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
  Json& node = *nodes[pick(nodes.size())];
  if (node.is_number()) {
    static const std::uint64_t sizes[] = {0, 1, 2, 3, 65536, 2147483647, 2147483648u, 4294967296u, 1000000000000u,
                                          4611686018427387904u, 6148914691236517206u, 9223372036854775807u,
                                          18446744073709551615u};
    static const double reals[] = {-1.0, 0.5, -0.0, 1.0, 1e-300, 1e308, 0.999999999};
    const std::size_t k = pick(std::size(sizes) + std::size(reals));
    node = k < std::size(sizes) ? Json(sizes[k]) : Json(reals[k - std::size(sizes)]);
    return true;
  }
  if (node.is_string()) {
    static const char* const names[] = {"Dense", "Conv2D", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D",
                                        "Flatten", "Dropout", "BatchNormalization", "ReLU", "Sigmoid", "Tanh",
                                        "Softmax", "Linear", "linear", "relu", "sigmoid", "tanh", "softmax",
                                        "glorot_uniform", "he_uniform", "he_normal", "zeros", "valid", "same", "keras",
                                        "pytorch", "moving_statistics", "batch_statistics", "", "minidl.Sequential"};
    node = names[pick(std::size(names))];
    return true;
  }
  if (node.is_array() && !node.empty()) {
    const std::size_t i = pick(node.size());
    switch (rng() % 3) {
      case 0: {
        const Json copy = node[i];
        node.insert(node.begin() + static_cast<std::ptrdiff_t>(pick(node.size() + 1)), copy);
        return true;
      }
      case 1:
        node.erase(i);
        return true;
      default: {
        const std::size_t j = pick(node.size());
        std::swap(node[i], node[j]);
        return i != j;
      }
    }
  }
  if (node.is_object() && !node.empty()) {
    auto it = node.begin();
    std::advance(it, static_cast<std::ptrdiff_t>(pick(node.size())));
    node.erase(it);
    return true;
  }
  return false;
}

// Mutates the header text or the data with the length written again.
inline std::size_t mutate_part(std::uint8_t* data, std::size_t size, std::size_t max_size, bool header_part) {
  const std::uint64_t n = header_length(data, size);
  std::string header(reinterpret_cast<const char*>(data) + 8, static_cast<std::size_t>(n));
  std::string rest(reinterpret_cast<const char*>(data) + 8 + n, size - 8 - static_cast<std::size_t>(n));
  std::string& part = header_part || rest.empty() ? header : rest;
  mutate_text(part, max_size - size);
  for (int k = 0; k < 8; ++k) data[k] = static_cast<std::uint8_t>(std::uint64_t{header.size()} >> (8 * k));
  std::memcpy(data + 8, header.data(), header.size());
  std::memcpy(data + 8 + header.size(), rest.data(), rest.size());
  return 8 + header.size() + rest.size();
}

/// libFuzzer's custom mutator for both targets. `text_key`, if given, names a
/// metadata string that gets a third of the mutations (fuzz_load_model's
/// architecture JSON).
inline std::size_t mutate(std::uint8_t* data, std::size_t size, std::size_t max_size, unsigned int seed,
                          const char* text_key = nullptr) {
  std::minstd_rand rng(seed);
  const unsigned choice = static_cast<unsigned>(rng() % 9);
  const std::uint64_t n = header_length(data, size);
  if (choice == 0 || size < 8 || n > size - 8 || max_size < size) return LLVMFuzzerMutate(data, size, max_size);
  if (choice <= 2) return mutate_part(data, size, max_size, choice == 1);
  FuzzFile file;
  if (decode(data, size, file)) {
    bool changed = false;
    if (text_key && choice <= 5 && file.metadata.is_object() && file.metadata.contains(text_key) &&
        file.metadata[text_key].is_string()) {
      std::string& text = file.metadata[text_key].get_ref<std::string&>();
      // Half the time as JSON (the values that matter), else as bytes.
      if (rng() % 2 == 0) {
        try {
          Json json = Json::parse(text);
          if (mutate_json(json, rng)) {
            text = json.dump(-1, ' ', false, Json::error_handler_t::replace);
            changed = true;
          }
        } catch (const Json::exception&) {
        }
      }
      if (!changed) mutate_text(text, max_size - size);
      changed = true;
    } else {
      const int changes = 1 + static_cast<int>(rng() % 2);
      for (int k = 0; k < changes; ++k) changed = mutate_structure(file, rng, max_size - size) || changed;
    }
    if (changed)
      if (const std::size_t total = encode(file, data, max_size)) return total;
  }
  return mutate_part(data, size, max_size, rng() % 2 == 0);
}

}  // namespace load_fuzz
#endif

#if !defined(MINIDL_FUZZ_MODELS_ONLY) && !defined(MINIDL_FUZZ_NO_TARGET)
namespace load_fuzz {

[[noreturn]] void fail(const std::string& model, const char* scalar, bool strict, const std::string& what) {
  std::fprintf(stderr, "fuzz_load_weights: model '%s' (%s, strict %d): %s\n", model.c_str(), scalar, strict ? 1 : 0,
               what.c_str());
  std::abort();
}

// Bitwise, so that NaN payloads and the sign of zero count.
template <class S>
bool same_bits(const std::vector<minidl::Vector<S>>& a, const std::vector<minidl::Vector<S>>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].size() != b[i].size() ||
        std::memcmp(a[i].data(), b[i].data(), static_cast<std::size_t>(a[i].size()) * sizeof(S)) != 0)
      return false;
  return true;
}

// Deterministic finite inputs in [-0.9, 0.9], never all zero.
template <class S>
minidl::Matrix<S> fixed_input(Index rows, Index cols) {
  minidl::Matrix<S> x(rows, cols);
  for (Index i = 0; i < rows; ++i)
    for (Index j = 0; j < cols; ++j) x(i, j) = static_cast<S>((i * 31 + j * 17) % 19 - 9) / S(10);
  return x;
}

// Every loaded tensor finite, every moving variance >= 0.
template <class S>
void check_loaded_values(Sequential<S>& model, const std::string& name, const char* scalar, bool strict) {
  for (std::size_t i = 0; i < model.size(); ++i) {
    minidl::Layer<S>& layer = model.layer(i);
    std::vector<minidl::Parameter<S>> tensors = layer.parameters();
    for (const auto& p : layer.state()) tensors.push_back(p);
    for (const auto& p : tensors) {
      if (!p.values().allFinite())
        fail(name, scalar, strict, "loaded a NaN or Inf into " + layer.name() + "." + p.name);
      if (p.name == "moving_variance" && (p.values().array() < S(0)).any())
        fail(name, scalar, strict, "loaded a negative moving variance into " + layer.name());
    }
  }
}

// After a successful load_weights: each tensor holds the file's values (C
// order, the model's flat layout), converted to S.
template <class S>
void check_values_match_file(Sequential<S>& model, const minidl::SafetensorsFile& file, const std::string& name,
                             const char* scalar, bool strict) {
  for (std::size_t i = 0; i < model.size(); ++i) {
    minidl::Layer<S>& layer = model.layer(i);
    std::vector<minidl::Parameter<S>> tensors = layer.parameters();
    for (const auto& p : layer.state()) tensors.push_back(p);
    for (const auto& p : tensors) {
      const minidl::TensorEntry* entry = file.find(layer.name() + "." + p.name);
      if (!entry || entry->element_count() != p.size)
        fail(name, scalar, strict, "loaded, but the file has no tensor of " + layer.name() + "." + p.name + "'s size");
      minidl::Vector<S> expected(p.size);
      file.read(*entry, expected.data());
      if (std::memcmp(expected.data(), p.value, static_cast<std::size_t>(p.size) * sizeof(S)) != 0)
        fail(name, scalar, strict, "loaded values differ from the file's in " + layer.name() + "." + p.name);
    }
  }
}

template <class S>
void try_model(const ModelSpec<S>& spec, Sequential<S>& model, const minidl::SafetensorsFile& file,
               const char* scalar) {
  for (bool strict : {true, false}) {
    const auto before = model.get_weights();
    try {
      if (spec.pytorch) {
        minidl::PyTorchLoadOptions options;
        options.strict = strict;
        options.modules = spec.modules;
        minidl::load_pytorch_state_dict(model, file, "fuzz input", options);
      } else {
        minidl::LoadOptions options;
        options.strict = strict;
        minidl::load_weights(model, file, "fuzz input", options);
      }
    } catch (const minidl::Error&) {
      if (!same_bits(before, model.get_weights())) fail(spec.name, scalar, strict, "a failed load changed the model");
      continue;
    } catch (const std::bad_alloc&) {
      fail(spec.name, scalar, strict, "std::bad_alloc from a load");
    } catch (const std::exception& e) {
      fail(spec.name, scalar, strict, std::string("an exception that is not a minidl::Error: ") + e.what());
    }
    check_loaded_values(model, spec.name, scalar, strict);
    if (!spec.pytorch) check_values_match_file(model, file, spec.name, scalar, strict);
    const minidl::Matrix<S> x = fixed_input<S>(2, model.input_shape().size());
    minidl::Matrix<S> y;
    try {
      y = model.predict(x);
    } catch (const std::exception& e) {
      fail(spec.name, scalar, strict, std::string("predict threw on a model that loaded: ") + e.what());
    }
    if (y.rows() != 2 || y.cols() != model.output_shape().size())
      fail(spec.name, scalar, strict, "predict's output has the wrong shape");
    if (spec.bounded && !y.allFinite()) fail(spec.name, scalar, strict, "predict gave a NaN or Inf");
  }
}

// The models, built once: building them for every input would cost more
// than the loads (allocations are slow under AddressSanitizer). Each input
// starts from the weights they were built with, so that it alone decides
// what happens (and a failure reproduces from that input).
template <class S>
struct Fixture {
  ModelSpec<S> spec;
  Sequential<S> model;
  std::vector<minidl::Vector<S>> built_weights;
};
template <class S>
std::vector<Fixture<S>>& fixtures() {
  static std::vector<Fixture<S>> all = [] {
    std::vector<Fixture<S>> out;
    for (auto& spec : model_specs<S>()) {
      Sequential<S> model = spec.make();
      auto weights = model.get_weights();
      out.push_back({std::move(spec), std::move(model), std::move(weights)});
    }
    return out;
  }();
  return all;
}

template <class S>
void try_all(const minidl::SafetensorsFile& file, const char* scalar) {
  for (Fixture<S>& f : fixtures<S>()) {
    f.model.set_weights(f.built_weights);
    try_model(f.spec, f.model, file, scalar);
  }
}

}  // namespace load_fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  load_fuzz::fixtures<float>();
  load_fuzz::fixtures<double>();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  minidl::SafetensorsFile file;
  try {
    file = minidl::parse_safetensors(data, size, "fuzz input");
  } catch (const minidl::Error&) {
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_load_weights: parse_safetensors threw a non-minidl exception: %s\n", e.what());
    std::abort();
  }
  load_fuzz::try_all<float>(file, "float");
  load_fuzz::try_all<double>(file, "double");
  return 0;
}

extern "C" std::size_t LLVMFuzzerCustomMutator(std::uint8_t* data, std::size_t size, std::size_t max_size,
                                               unsigned int seed) {
  return load_fuzz::mutate(data, size, max_size, seed);
}
#endif
