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
// defined, to save these very models as the seed corpus.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <minidl/io.hpp>
#include <new>
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
void try_model(const ModelSpec<S>& spec, const minidl::SafetensorsFile& file, const char* scalar) {
  Sequential<S> model = spec.make();
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

template <class S>
void try_all(const minidl::SafetensorsFile& file, const char* scalar) {
  for (const auto& spec : model_specs<S>()) try_model(spec, file, scalar);
}

}  // namespace load_fuzz

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
#endif
