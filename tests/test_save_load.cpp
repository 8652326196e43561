// save_weights / load_weights and save_model / load_model: names and layouts
// in the file, bitwise round trips, dtype conversion, and failed loads that
// leave the model unchanged.
#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <minidl/io/model.hpp>
#include <minidl/minidl.hpp>
#include <sstream>
#include <string>
#include <type_traits>

#include "support.hpp"

using namespace minidl;
using test::bitwise_equal;

namespace {


// Every kind of layer with weights or state, and the options save_model must keep.
template <class S>
Sequential<S> dense_model(std::uint64_t seed) {
  Sequential<S> model(seed);
  model.add(Dense<S>(5, 7, Activation::relu, DenseOptions{Initializer::he_normal, true, std::nullopt}));
  BatchNormOptions keras = BatchNormOptions::keras();
  keras.momentum = 0.9;
  keras.epsilon = 0.0125;
  model.add(BatchNorm<S>(keras));
  model.add(Dropout<S>(0.3, 11));
  model.add(Dense<S>(7, 6, Activation::tanh, DenseOptions{Initializer::he_uniform, false, 42}));
  model.add(Sigmoid<S>());
  model.add(Tanh<S>());
  model.add(Linear<S>());
  model.add(ReLU<S>());
  model.add(Dense<S>(6, 3, Activation::softmax));
  model.add(Softmax<S>());
  return model;
}

template <class S>
Sequential<S> conv_model(std::uint64_t seed) {
  Sequential<S> model(seed);
  Conv2DOptions conv;
  conv.strides = {2, 1};
  conv.padding = Padding::same;
  conv.activation = Activation::tanh;
  model.add(Conv2D<S>(Shape{7, 6, 2}, 3, {3, 2}, conv));
  BatchNormOptions torch = BatchNormOptions::pytorch();
  torch.cumulative_average = true;
  model.add(BatchNorm<S>(torch));
  model.add(MaxPooling2D<S>({2, 2}, std::array<Index, 2>{1, 1}, Padding::same));
  Conv2DOptions plain;
  plain.use_bias = false;
  plain.seed = 3;
  model.add(Conv2D<S>(2, 2, plain));
  model.add(AveragePooling2D<S>({2, 1}));
  model.add(Flatten<S>());
  model.add(Dense<S>(model.output_shape().size(), 4));
  return model;
}

template <class S>
Sequential<S> pooled_model(std::uint64_t seed) {
  Sequential<S> model(seed);
  model.add(Conv2D<S>(Shape{4, 4, 1}, 3, 3));
  model.add(GlobalAveragePooling2D<S>());
  model.add(Dense<S>(3, 2));
  return model;
}

/// A few training steps so that every weight and statistic is far from its initial value.
template <class S>
void train(Sequential<S>& model, std::uint64_t seed) {
  model.compile(MeanSquaredError{}, SGD<S>{S(0.05)});
  const Index in = model.input_shape().size(), out = model.output_shape().size();
  for (int step = 0; step < 3; ++step)
    model.train_on_batch(test::uniform<S>(8, in, seed + step), test::uniform<S>(8, out, seed + 100 + step));
}

template <class S>
Matrix<S> inputs(const Sequential<S>& model, std::uint64_t seed) {
  return test::uniform<S>(9, model.input_shape().size(), seed);
}

/// The file's tensors as double, row-major.
Vector<double> file_tensor(const SafetensorsFile& file, const std::string& name) {
  const TensorEntry* entry = file.find(name);
  REQUIRE_MESSAGE(entry != nullptr, name);
  Vector<double> v(entry->element_count());
  file.read(*entry, v.data());
  return v;
}

/// Rewrites a model file with its architecture JSON changed by `edit`.
template <class Edit>
void edit_architecture(const std::string& path, Edit edit) {
  const SafetensorsFile file = read_safetensors(path);
  auto metadata = file.metadata();
  auto arch = nlohmann::json::parse(metadata.at("minidl.architecture"));
  edit(arch);
  metadata["minidl.architecture"] = arch.dump();
  std::vector<Vector<double>> values;
  std::vector<TensorToWrite> tensors;
  for (const auto& entry : file.tensors()) values.push_back(file_tensor(file, entry.name));
  for (std::size_t i = 0; i < values.size(); ++i)
    tensors.push_back({file.tensors()[i].name, DType::F64, file.tensors()[i].shape, values[i].data()});
  write_safetensors(path, tensors, metadata);
}

template <class S>
std::string load_error(Sequential<S>& model, const std::string& path, LoadOptions options = {}) {
  const auto before = model.get_weights();
  std::string message;
  try {
    load_weights(model, path, options);
  } catch (const FormatError& e) {
    message = e.what();
  }
  CHECK(bitwise_equal(model.get_weights(), before));  // a failed load changes nothing
  return message;
}

std::string model_error(const std::string& path) {
  try {
    load_model<double>(path);
  } catch (const FormatError& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE_TEMPLATE("save_weights: Keras names, shapes and layouts, the model's dtype, format metadata", S, float,
                   double) {
  const test::TempDir dir("minidl_save_load");
  auto model = conv_model<S>(1);
  train(model, 5);
  save_weights(model, dir.file("w.safetensors"));
  const SafetensorsFile file = read_safetensors(dir.file("w.safetensors"));
  CHECK(file.metadata().at("minidl.format") == "weights");
  CHECK(file.metadata().at("minidl.format_version") == "1");
  std::vector<std::string> names;
  for (const auto& entry : file.tensors()) {
    names.push_back(entry.name);
    CHECK(entry.dtype == (std::is_same_v<S, float> ? DType::F32 : DType::F64));
  }
  CHECK(names == std::vector<std::string>{"conv2d.kernel", "conv2d.bias", "batch_normalization.gamma",
                                          "batch_normalization.beta", "batch_normalization.moving_mean",
                                          "batch_normalization.moving_variance", "conv2d_1.kernel", "dense.kernel",
                                          "dense.bias"});
  CHECK(file.find("conv2d.kernel")->shape == std::vector<std::int64_t>{3, 2, 2, 3});  // (kh, kw, C, F)
  CHECK(file.find("conv2d_1.kernel")->shape == std::vector<std::int64_t>{2, 2, 3, 2});
  CHECK(file.find("batch_normalization.moving_variance")->shape == std::vector<std::int64_t>{3});
  const auto& dense = dynamic_cast<const Dense<S>&>(model.layer(6));
  CHECK(file.find("dense.kernel")->shape == std::vector<std::int64_t>{dense.kernel().rows(), 4});  // inputs x units
  // Element (i, j, c, f) of the conv kernel in C order is minidl's kernel(((i·kw + j)·C + c), f).
  const auto& conv = dynamic_cast<const Conv2D<S>&>(model.layer(0));
  const Vector<double> k = file_tensor(file, "conv2d.kernel");
  for (Index i = 0; i < 3; ++i)
    for (Index j = 0; j < 2; ++j)
      for (Index c = 0; c < 2; ++c)
        for (Index f = 0; f < 3; ++f)
          CHECK(k[((i * 2 + j) * 2 + c) * 3 + f] == static_cast<double>(conv.kernel()((i * 2 + j) * 2 + c, f)));
  const Vector<double> d = file_tensor(file, "dense.kernel");
  CHECK(d[1 * 4 + 2] == static_cast<double>(dense.kernel()(1, 2)));
  const auto& bn = dynamic_cast<const BatchNorm<S>&>(model.layer(1));
  CHECK(file_tensor(file, "batch_normalization.moving_mean") == bn.moving_mean().template cast<double>());
}

TEST_CASE_TEMPLATE("save_weights then load_weights restores every tensor bit for bit", S, float, double) {
  const test::TempDir dir("minidl_save_load");
  for (int which = 0; which < 3; ++which) {
    auto make = [&](std::uint64_t seed) {
      return which == 0 ? dense_model<S>(seed) : which == 1 ? conv_model<S>(seed) : pooled_model<S>(seed);
    };
    auto model = make(1);
    train(model, 10);
    save_weights(model, dir.file("w.safetensors"));
    auto other = make(2);  // other initial weights
    REQUIRE_FALSE(bitwise_equal(other.get_weights(), model.get_weights()));
    load_weights(other, dir.file("w.safetensors"));
    CHECK(bitwise_equal(other.get_weights(), model.get_weights()));
    CHECK(other.predict(inputs(model, 3)) == model.predict(inputs(model, 3)));
    // A save_model file holds the same tensors: load_weights reads it too.
    save_model(model, dir.file("m.safetensors"));
    auto third = make(3);
    load_weights(third, dir.file("m.safetensors"));
    CHECK(bitwise_equal(third.get_weights(), model.get_weights()));
  }
}

TEST_CASE_TEMPLATE("save_weights converts to the requested dtype, load_weights converts to the model's scalar", S,
                   float, double) {
  const test::TempDir dir("minidl_save_load");
  auto model = dense_model<S>(1);
  train(model, 20);
  // F64: a float model's values are exact in double, so they come back bit for bit.
  save_weights(model, dir.file("w64.safetensors"), DType::F64);
  CHECK(read_safetensors(dir.file("w64.safetensors")).tensors().front().dtype == DType::F64);
  auto back = dense_model<S>(2);
  load_weights(back, dir.file("w64.safetensors"));
  CHECK(bitwise_equal(back.get_weights(), model.get_weights()));
  // F32: values rounded to float once, whichever scalar reads them.
  save_weights(model, dir.file("w32.safetensors"), DType::F32);
  auto as_double = dense_model<double>(3);
  load_weights(as_double, dir.file("w32.safetensors"));
  const auto original = model.get_weights();
  const auto loaded = as_double.get_weights();
  REQUIRE(loaded.size() == original.size());
  for (std::size_t t = 0; t < loaded.size(); ++t)
    CHECK(loaded[t] == original[t].template cast<float>().template cast<double>());
}

TEST_CASE_TEMPLATE("a load that does not match the model throws, names the tensor, and changes nothing", S, float,
                   double) {
  const test::TempDir dir("minidl_save_load");
  auto model = pooled_model<S>(1);
  save_weights(model, dir.file("w.safetensors"));
  SUBCASE("a tensor of the wrong shape") {
    Sequential<S> wider(5);
    wider.add(Conv2D<S>(Shape{4, 4, 1}, 3, 3));
    wider.add(GlobalAveragePooling2D<S>());
    wider.add(Dense<S>(3, 5));
    const std::string error = load_error(wider, dir.file("w.safetensors"));
    CHECK(error.find("'dense.kernel'") != std::string::npos);
    CHECK(error.find("[3, 2], expected [3, 5]") != std::string::npos);
  }
  SUBCASE("a missing tensor: a layer of another name") {
    auto renamed = pooled_model<S>(5);
    renamed.layer(2).set_name("head");
    const std::string error = load_error(renamed, dir.file("w.safetensors"));
    CHECK(error.find("'head.kernel' is missing") != std::string::npos);
  }
  SUBCASE("a tensor the model does not have, unless strict is false") {
    Sequential<S> base(5);
    base.add(Conv2D<S>(Shape{4, 4, 1}, 3, 3));
    const std::string error = load_error(base, dir.file("w.safetensors"));
    CHECK(error.find("unexpected tensor 'dense.kernel'") != std::string::npos);
    load_weights(base, dir.file("w.safetensors"), LoadOptions{false});
    CHECK(bitwise_equal(base.get_weights(), {model.get_weights()[0], model.get_weights()[1]}));
  }
  SUBCASE("not a safetensors file, or no file at all") {
    {
      std::ofstream out(dir.file("junk"));
      out << "not a safetensors file";
    }
    auto other = pooled_model<S>(5);
    CHECK_FALSE(load_error(other, dir.file("junk")).empty());
    const auto before = other.get_weights();
    CHECK_THROWS_AS(load_weights(other, dir.file("absent.safetensors")), IOError);
    CHECK(bitwise_equal(other.get_weights(), before));
  }
  SUBCASE("a format version this minidl does not know") {
    const auto w = model.get_weights();
    write_safetensors(dir.file("v2.safetensors"),
                      {{"conv2d.kernel", dtype_of<S>(), {3, 3, 1, 3}, w[0].data()}},
                      {{"minidl.format_version", "2"}});
    auto other = pooled_model<S>(5);
    CHECK(load_error(other, dir.file("v2.safetensors")).find("format_version is '2'") != std::string::npos);
  }
}

TEST_CASE("save_weights rejects layers that share a name, writing nothing") {
  const test::TempDir dir("minidl_save_load");
  Sequential<float> model(1);
  model.add(Dense<float>(2, 2));
  model.add(Dense<float>(2, 2)).set_name("dense");
  CHECK_THROWS_WITH_AS(save_weights(model, dir.file("w.safetensors")),
                       doctest::Contains("layer 1 (Dense 'dense') needs a name of its own, layer 0 has the same"),
                       ValueError);
  CHECK_FALSE(std::filesystem::exists(dir.file("w.safetensors")));
}

// ---- whole models -------------------------------------------------------

template <class S>
void check_same_layers(const Sequential<S>& a, const Sequential<S>& b) {
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CAPTURE(i);
    CHECK(std::string(a.layer(i).type()) == b.layer(i).type());
    CHECK(a.layer(i).name() == b.layer(i).name());
    CHECK(a.layer(i).frozen() == b.layer(i).frozen());
    CHECK(a.layer(i).input_shape() == b.layer(i).input_shape());
    CHECK(a.layer(i).output_shape() == b.layer(i).output_shape());
    // Layer configuration as layer_config.hpp writes it, compared field by field.
    CHECK(detail::layer_json(a.layer(i), i) == detail::layer_json(b.layer(i), i));
  }
}

TEST_CASE_TEMPLATE("save_model then load_model: same layers, options, frozen flags, weights and predictions", S,
                   float, double) {
  const test::TempDir dir("minidl_save_load");
  for (int which = 0; which < 3; ++which) {
    CAPTURE(which);
    auto model = which == 0 ? dense_model<S>(1) : which == 1 ? conv_model<S>(1) : pooled_model<S>(1);
    train(model, 30);
    model.layer(0).set_frozen(true);
    model.set_frozen_batchnorm_policy(FrozenBatchNormPolicy::batch_statistics);
    save_model(model, dir.file("m.safetensors"));
    auto loaded = load_model<S>(dir.file("m.safetensors"));
    CHECK_FALSE(loaded.compiled());
    check_same_layers(model, loaded);
    CHECK(bitwise_equal(loaded.get_weights(), model.get_weights()));
    const Matrix<S> x = inputs(model, 4);
    CHECK(loaded.predict(x) == model.predict(x));  // bitwise
    // Compiled again, it trains.
    loaded.compile(MeanSquaredError{}, SGD<S>{S(0.05)});
    const Matrix<S> y = test::uniform<S>(9, model.output_shape().size(), 1);
    CHECK(std::isfinite(static_cast<double>(loaded.train_on_batch(x, y))));
  }
}

// Every new activation, fused into Dense and Conv2D (keras.activations'
// defaults) and as a layer with parameters other than its defaults.
template <class S>
Sequential<S> activations_model(std::uint64_t seed) {
  Sequential<S> model(seed);
  Conv2DOptions conv;
  conv.padding = Padding::same;
  for (Activation a : {Activation::gelu, Activation::silu}) {
    conv.activation = a;
    if (model.size() == 0) model.add(Conv2D<S>(Shape{4, 4, 2}, 3, 3, conv));
    else model.add(Conv2D<S>(3, 2, conv));
  }
  model.add(GELU<S>(true));
  model.add(Flatten<S>());
  model.add(Dense<S>(model.output_shape().size(), 6, Activation::gelu_approximate));
  model.add(LeakyReLU<S>(0.1));
  model.add(Dense<S>(6, 6, Activation::leaky_relu));
  model.add(ELU<S>(0.5));
  model.add(Dense<S>(6, 6, Activation::elu));
  model.add(GELU<S>());
  model.add(SiLU<S>());
  model.add(Dense<S>(6, 6, Activation::softplus));
  model.add(Softplus<S>());
  model.add(Dense<S>(6, 5, Activation::relu6));
  model.add(ReLU6<S>());
  model.add(LeakyReLU<S>());
  model.add(ELU<S>());
  return model;
}

TEST_CASE_TEMPLATE("save_model then load_model: the new activations, fused and as layers, bit for bit", S, float,
                   double) {
  const test::TempDir dir("minidl_save_load");
  auto model = activations_model<S>(2);
  train(model, 40);
  save_model(model, dir.file("a.safetensors"));
  auto loaded = load_model<S>(dir.file("a.safetensors"));
  check_same_layers(model, loaded);
  CHECK(bitwise_equal(loaded.get_weights(), model.get_weights()));
  const Matrix<S> x = inputs(model, 5);
  CHECK(loaded.predict(x) == model.predict(x));  // bitwise
  CHECK(dynamic_cast<const Conv2D<S>&>(loaded.layer(1)).activation() == Activation::silu);
  CHECK(dynamic_cast<const GELU<S>&>(loaded.layer(2)).function().approximate);
  CHECK(dynamic_cast<const Dense<S>&>(loaded.layer(4)).activation() == Activation::gelu_approximate);
  CHECK(dynamic_cast<const LeakyReLU<S>&>(loaded.layer(5)).function().negative_slope == 0.1);
  CHECK(dynamic_cast<const ELU<S>&>(loaded.layer(7)).function().alpha == 0.5);
  CHECK_FALSE(dynamic_cast<const GELU<S>&>(loaded.layer(9)).function().approximate);
  CHECK(dynamic_cast<const LeakyReLU<S>&>(loaded.layer(15)).function().negative_slope == 0.3);
  // The file keeps the parameters under Keras's names, the fused activations by name.
  const auto arch = nlohmann::json::parse(read_safetensors(dir.file("a.safetensors")).metadata().at(
      "minidl.architecture"));
  CHECK(arch["layers"][5]["config"] == nlohmann::json::parse(R"({"negative_slope": 0.1})"));
  CHECK(arch["layers"][2]["config"] == nlohmann::json::parse(R"({"approximate": true})"));
  CHECK(arch["layers"][10]["config"] == nlohmann::json::object());
  CHECK(arch["layers"][4]["config"]["activation"] == "gelu_approximate");
  // summary names every layer by its type.
  std::ostringstream summary;
  loaded.summary(summary);
  for (const char* type : {"(GELU)", "(LeakyReLU)", "(ELU)", "(SiLU)", "(Softplus)", "(ReLU6)"})
    CHECK_MESSAGE(summary.str().find(type) != std::string::npos, type);
}

TEST_CASE("load_model: an invalid activation parameter is a FormatError naming the layer and the value") {
  const test::TempDir dir("minidl_save_load");
  const std::string path = dir.file("a.safetensors");
  save_model(activations_model<double>(1), path);
  edit_architecture(path, [](nlohmann::json& a) { a["layers"][5]["config"]["negative_slope"] = -0.5; });
  const std::string error = model_error(path);
  CHECK_MESSAGE(error.find("layer 5 (LeakyReLU 'leaky_re_lu'): config: LeakyReLU: negative_slope must be a finite "
                           "number >= 0, got -0.5") != std::string::npos,
                error);
}

TEST_CASE("save_model keeps every option: BatchNorm conventions and policies, seeds, initializers, padding") {
  const test::TempDir dir("minidl_save_load");
  auto model = conv_model<double>(1);
  model.layer(1).set_frozen(true);
  save_model(model, dir.file("m.safetensors"));
  auto loaded = load_model<double>(dir.file("m.safetensors"));
  const auto& bn = dynamic_cast<const BatchNorm<double>&>(loaded.layer(1));
  CHECK(bn.options().convention == BatchNormConvention::pytorch);
  CHECK(bn.options().momentum == 0.1);
  CHECK(bn.options().epsilon == 1e-5);
  CHECK(bn.options().cumulative_average);
  CHECK(bn.frozen());
  const auto& conv = dynamic_cast<const Conv2D<double>&>(loaded.layer(0));
  CHECK(conv.strides() == std::array<Index, 2>{2, 1});
  CHECK(conv.kernel_size() == std::array<Index, 2>{3, 2});
  CHECK(conv.padding() == Padding::same);
  CHECK(conv.activation() == Activation::tanh);
  const auto& second = dynamic_cast<const Conv2D<double>&>(loaded.layer(3));
  CHECK_FALSE(second.use_bias());
  CHECK(second.seed() == std::optional<std::uint64_t>(3));
  const auto& pool = dynamic_cast<const MaxPooling2D<double>&>(loaded.layer(2));
  CHECK(pool.strides() == std::array<Index, 2>{1, 1});
  CHECK(pool.padding() == Padding::same);
  auto dense = dense_model<float>(1);
  save_model(dense, dir.file("d.safetensors"));
  auto dense_loaded = load_model<float>(dir.file("d.safetensors"));
  const auto& first = dynamic_cast<const Dense<float>&>(dense_loaded.layer(0));
  CHECK(first.kernel_initializer() == Initializer::he_normal);
  CHECK(first.activation() == Activation::relu);
  const auto& keras = dynamic_cast<const BatchNorm<float>&>(dense_loaded.layer(1));
  CHECK(keras.options().convention == BatchNormConvention::keras);
  CHECK(keras.options().momentum == 0.9);
  CHECK(keras.options().epsilon == 0.0125);
  CHECK(keras.frozen_policy() == FrozenBatchNormPolicy::moving_statistics);
  const auto& dropout = dynamic_cast<const Dropout<float>&>(dense_loaded.layer(2));
  CHECK(dropout.rate() == 0.3);
  CHECK(dropout.seed() == std::optional<std::uint64_t>(11));
}

TEST_CASE("a model saved as F32 loads into double as the float-rounded model, F64 into float rounds once") {
  const test::TempDir dir("minidl_save_load");
  auto model = conv_model<double>(1);
  train(model, 40);
  save_model(model, dir.file("m32.safetensors"), DType::F32);
  auto loaded = load_model<double>(dir.file("m32.safetensors"));
  auto rounded = model.clone();
  auto weights = model.get_weights();
  for (auto& w : weights) w = w.cast<float>().cast<double>();
  rounded.set_weights(weights);
  const Matrix<double> x = inputs(model, 5);
  CHECK(loaded.predict(x) == rounded.predict(x));  // bitwise
  save_model(model, dir.file("m64.safetensors"));
  auto as_float = load_model<float>(dir.file("m64.safetensors"));
  const auto got = as_float.get_weights();
  for (std::size_t t = 0; t < got.size(); ++t) CHECK(got[t] == model.get_weights()[t].cast<float>());
}

TEST_CASE("load_model: a malformed or unknown architecture is a FormatError naming the layer and the field") {
  const test::TempDir dir("minidl_save_load");
  const std::string path = dir.file("m.safetensors");
  auto check = [&](auto edit, const std::string& expected) {
    save_model(dense_model<double>(1), path);
    edit_architecture(path, edit);
    const std::string error = model_error(path);
    CHECK_MESSAGE(error.find(expected) != std::string::npos, error);
  };
  using Json = nlohmann::json;
  check([](Json& a) { a["layers"][3]["type"] = "Dense3D"; },
        "layer 3 (Dense3D 'dense_1'): config: unknown layer type 'Dense3D'");
  check([](Json& a) { a["layers"][0]["config"].erase("units"); },
        "layer 0 (Dense 'dense'): config: field 'units' is missing");
  check([](Json& a) { a["layers"][0]["config"]["units"] = "seven"; }, "field 'units' must be an integer > 0");
  check([](Json& a) { a["layers"][2]["config"]["rate"] = 1.5; }, "layer 2 (Dropout 'dropout'): config: Dropout");
  check([](Json& a) { a["layers"][1]["config"]["convention"] = "caffe"; },
        "field 'convention' must be one of keras, pytorch, got 'caffe'");
  check([](Json& a) { a["layers"][0]["config"]["activation"] = "mish"; }, "field 'activation' must be one of");
  check([](Json& a) { a["layers"][0]["config"]["seed"] = -4; }, "field 'seed' must be null or an integer >= 0");
  check([](Json& a) { a["layers"][4]["frozen"] = "yes"; }, "layer 4: field 'frozen' must be true or false");
  check([](Json& a) { a["layers"][5]["name"] = "dense"; },
        "layer 5: field 'name' must be a name of 1 to 256 bytes that no other layer has, got 'dense'");
  check([](Json& a) { a["input_shape"] = Json::array({5, 0}); }, "field 'input_shape' must hold integers > 0");
  check([](Json& a) { a["version"] = 2; }, "field 'version' must be 1, got 2");
  check([](Json& a) { a.erase("layers"); }, "architecture: field 'layers' is missing");
  check([](Json& a) { a["layers"][0]["config"]["units"] = 8; },
        "tensor 'dense.kernel' has shape [5, 7], expected [5, 8]");
  check([](Json& a) { a["layers"][3]["type"] = "Conv2D"; },
        "layer 3 (Conv2D 'dense_1'): config: field 'filters' is missing");
  // A shape the first layer does not take.
  check([](Json& a) { a["input_shape"] = Json::array({5, 1}); },
        "layer 0 (Dense 'dense'): config: Dense 'dense': expects input shape (None, inputs), got (None, 5, 1)");
  // Not JSON at all, and no architecture.
  save_model(dense_model<double>(1), path);
  {
    const SafetensorsFile file = read_safetensors(path);
    auto metadata = file.metadata();
    metadata["minidl.architecture"] = "{\"layers\": [";
    write_safetensors(path, {}, metadata);
  }
  CHECK(model_error(path).find("'minidl.architecture' is not valid JSON") != std::string::npos);
  save_weights(dense_model<double>(1), path);
  CHECK(model_error(path).find("no 'minidl.architecture' metadata") != std::string::npos);
}

namespace {
// A layer type of the user's own, not registered: save_weights handles it, save_model cannot describe it.
struct Doubler : LayerBase<Doubler, float> {
  Doubler() : LayerBase<Doubler, float>(Shape{2}, Shape{2}) {}
  const char* type() const override { return "Doubler"; }

 protected:
  void forward_training(const Matrix<float>& x, Matrix<float>& y) override { y = 2 * x; }
  void forward_inference(const Matrix<float>& x, Matrix<float>& y) override { y = 2 * x; }
  void backward_impl(const Matrix<float>&, const Matrix<float>& dy, Matrix<float>* dx) override {
    if (dx) *dx = 2 * dy;
  }
};
}  // namespace

TEST_CASE("save_model refuses a model it cannot describe, writing nothing") {
  const test::TempDir dir("minidl_save_load");
  Sequential<float> empty;
  CHECK_THROWS_AS(save_model(empty, dir.file("m.safetensors")), StateError);
  Sequential<float> custom(1);
  custom.add(Dense<float>(2, 2));
  custom.add(Doubler());
  CHECK_THROWS_WITH_AS(save_model(custom, dir.file("m.safetensors")),
                       doctest::Contains("layer 1 (Doubler 'doubler') is of type 'Doubler', which is not registered"),
                       ValueError);
  CHECK_FALSE(std::filesystem::exists(dir.file("m.safetensors")));
  save_weights(custom, dir.file("w.safetensors"));
  CHECK(read_safetensors(dir.file("w.safetensors")).tensors().size() == 2);
  Sequential<float> model(1);
  model.add(Dense<float>(2, 2));
  model.add(Dense<float>(2, 2)).set_name("dense");
  CHECK_THROWS_AS(save_model(model, dir.file("m.safetensors")), ValueError);
  CHECK_FALSE(std::filesystem::exists(dir.file("m.safetensors")));
}
