// Model and weight files are untrusted input: whatever their bytes, a load
// either gives a model that works or throws a minidl::Error, in time and
// memory proportional to the file, and leaves the model it loads into as it
// was. Each case is a file that once corrupted memory, crashed, allocated
// without bound, read forever or loaded NaNs silently.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <limits>
#include <minidl/io.hpp>
#include <string>
#include <vector>

#include "support.hpp"

using namespace minidl;
using test::bitwise_equal;
using Json = nlohmann::ordered_json;

namespace {

/// The bytes of a model file with this architecture's layers and input shape
/// and the given tensors (float values, one per element).
struct FakeTensor {
  std::string name;
  std::vector<std::int64_t> shape;
  std::vector<float> values;
};
SafetensorsFile model_file(const Json& input_shape, const std::vector<Json>& layers,
                           const std::vector<FakeTensor>& tensors = {}) {
  const Json arch = {{"format", "minidl.Sequential"}, {"version", 1}, {"input_shape", input_shape},
                     {"layers", Json(layers)}};
  std::vector<TensorToWrite> out;
  for (const auto& t : tensors) out.push_back({t.name, DType::F32, t.shape, t.values.data()});
  const std::string bytes =
      encode_safetensors(out, {{"minidl.format", "model"}, {"minidl.architecture", arch.dump()}});
  return parse_safetensors(bytes, "test file");
}
Json layer(const std::string& type, const std::string& name, Json config) {
  return {{"type", type}, {"name", name}, {"frozen", false}, {"config", std::move(config)}};
}
std::string load_error(const SafetensorsFile& file) {
  try {
    load_model<float>(file, "test file");
  } catch (const FormatError& e) {
    return e.what();
  }
  return "no error";
}
bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

Sequential<float> small_model() {
  Sequential<float> m(3);
  m.add(Dense<float>(4, 3));
  m.add(BatchNorm<float>());
  m.add(Dense<float>(3, 2));
  return m;
}

}  // namespace

TEST_CASE("sizes: a shape, kernel or unit count whose product would overflow is a ShapeError, before any allocation") {
  // 3 x 6148914691236517206 x 1 wraps to 2 in 64-bit arithmetic.
  CHECK_THROWS_WITH_AS(Shape({3, 6148914691236517206, 1}),
                       "Shape (None, 3, 6148914691236517206, 1): 3 x 6148914691236517206 x 1 is more than 2^40 "
                       "scalars (minidl's limit for one tensor)",
                       ShapeError);
  CHECK(Shape({Index(1) << 20, Index(1) << 20}).size() == max_elements);
  CHECK_THROWS_AS(Shape({(Index(1) << 20) + 1, Index(1) << 20}), ShapeError);
  CHECK_THROWS_WITH_AS(Dense<float>(Index(1) << 30, Index(1) << 30),
                       "Dense: kernel inputs x units: 1073741824 x 1073741824 is more than 2^40 scalars (minidl's "
                       "limit for one tensor)",
                       ShapeError);
  // A kernel that fits the bound, whose im2col of one sample does not: refused before the kernel is allocated.
  Conv2DOptions same;
  same.padding = Padding::same;
  CHECK_THROWS_WITH_AS(Conv2D<float>(Shape{1 << 20, 1 << 20, 1}, 1, {1 << 20, 1 << 20}, same),
                       "Conv2D: im2col of one sample (positions x kh·kw·C): 1099511627776 x 1099511627776 is more "
                       "than 2^40 scalars (minidl's limit for one tensor)",
                       ShapeError);
  // Strides near 2^63 made the 'same' output size's ceil(L/s) overflow.
  same.strides = {Index(1) << 62, 1};
  CHECK_THROWS_WITH_AS(MaxPooling2D<float>(Shape{4, 4, 1}, {2, 2}, same.strides, Padding::same),
                       "MaxPooling2D: strides must be at most 2^40 each, got 4611686018427387904x1", ValueError);
  same.strides = {max_elements, 1};
  const MaxPooling2D<float> pool(Shape{4, 4, 1}, {2, 2}, same.strides, Padding::same);
  CHECK(pool.output_shape() == Shape{1, 4, 1});
}

TEST_CASE("load_model: an input shape whose size overflows is a FormatError, not a MaxPooling2D writing past the "
          "end of its buffer") {
  const auto file = model_file({3, 6148914691236517206, 1}, {layer("MaxPooling2D", "max_pooling2d",
                                                                   {{"pool_size", {2, 1}},
                                                                    {"strides", {2, 1}},
                                                                    {"padding", "valid"}})});
  const std::string error = load_error(file);
  CHECK(contains(error, "test file: architecture: field 'input_shape' "));
  CHECK(contains(error, "is more than 2^40 scalars"));
  // A Conv2D kernel or stride out of range, from a file.
  const Json image = {4, 4, 1};
  CHECK(contains(load_error(model_file(image, {layer("Conv2D", "c",
                                                      {{"filters", 1},
                                                       {"kernel_size", {1, 1}},
                                                       {"strides", {Index(1) << 62, 1}},
                                                       {"padding", "same"},
                                                       {"activation", "linear"},
                                                       {"use_bias", false},
                                                       {"kernel_initializer", "zeros"},
                                                       {"seed", nullptr}})},
                                        {{"c.kernel", {1, 1, 1, 1}, {1}}})),
                 "strides must be at most 2^40 each"));
}

TEST_CASE("load_model: architecture JSON nested a million levels deep, or of millions of values, is refused "
          "while parsing") {
  const std::string deep = std::string(1000000, '[') + std::string(1000000, ']');
  const std::string bytes = encode_safetensors({}, {{"minidl.format", "model"}, {"minidl.architecture", deep}});
  CHECK(bytes.size() > 2000000);
  const std::string error = load_error(parse_safetensors(bytes, "test file"));
  CHECK(error == "test file: metadata 'minidl.architecture' is nested deeper than 8 levels (the format needs 5)");

  std::string wide = "[0";
  for (int i = 0; i < (1 << 20); ++i) wide += ",0";
  wide += "]";
  const std::string wide_bytes = encode_safetensors({}, {{"minidl.architecture", wide}});
  CHECK(load_error(parse_safetensors(wide_bytes, "test file")) ==
        "test file: metadata 'minidl.architecture' has more than 1048576 JSON values");
}

TEST_CASE("load_model: a layer is checked against the file's tensors before it allocates anything") {
  // ~400-byte files that asked for a 10^12-unit Dense and a 2^31-feature BatchNorm.
  const Json dense_config = {{"units", 1000000000000},       {"activation", "linear"}, {"use_bias", true},
                             {"kernel_initializer", "zeros"}, {"seed", nullptr}};
  const auto dense = model_file({1}, {layer("Dense", "dense", dense_config)});
  CHECK(load_error(dense) ==
        "test file: tensor 'dense.kernel' is missing (Dense 'dense' kernel (inputs x units), expected shape [1, "
        "1000000000000])");
  const Json bn_config = {{"convention", "keras"}, {"momentum", 0.99}, {"epsilon", 0.001},
                          {"cumulative_average", false}, {"frozen_policy", "moving_statistics"}};
  const auto bn = model_file({Index(1) << 31}, {layer("BatchNormalization", "bn", bn_config)});
  CHECK(load_error(bn) == "test file: tensor 'bn.gamma' is missing (BatchNormalization 'bn' gamma, expected shape "
                          "[2147483648])");
  // With the tensors present but of another shape, the same: nothing is built from the config's numbers.
  const auto wrong = model_file({2}, {layer("Dense", "dense", dense_config)},
                                {{"dense.kernel", {2, 1}, {1, 2}}, {"dense.bias", {1}, {0}}});
  CHECK_MESSAGE(contains(load_error(wrong), "layer 0 (Dense 'dense'): config: Dense 'dense': kernel inputs x units: "
                                            "2 x 1000000000000 is more than 2^40 scalars"),
                load_error(wrong));
  Json big = dense_config;  // within minidl's bound for one tensor, beyond the file's
  big["units"] = 1000000;
  const auto short_file = model_file({2}, {layer("Dense", "dense", big)},
                                     {{"dense.kernel", {2, 1}, {1, 2}}, {"dense.bias", {1}, {0}}});
  CHECK_MESSAGE(contains(load_error(short_file), "tensor 'dense.kernel' has shape [2, 1], expected [2, 1000000]"),
                load_error(short_file));
  // And a file that holds what its architecture says loads.
  Json small = dense_config;
  small["units"] = 1;
  const auto good = model_file({2}, {layer("Dense", "dense", small)},
                               {{"dense.kernel", {2, 1}, {1, 2}}, {"dense.bias", {1}, {0.5f}}});
  auto model = load_model<float>(good, "test file");
  CHECK(model.predict(test::matrix<float>(1, 2, {1, 1}))(0, 0) == 3.5f);
}

TEST_CASE("read_safetensors refuses devices and pipes without reading (or blocking on) them") {
  Sequential<float> model = small_model();
  const auto before = model.get_weights();
  CHECK_THROWS_WITH_AS(load_weights(model, "/dev/zero"),
                       "safetensors file '/dev/zero': not a regular file (a character device); read its bytes "
                       "yourself and call parse_safetensors",
                       IOError);
  test::TempDir dir;
  const std::string fifo = dir.file("fifo");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  // Opening a FIFO for reading would wait for a writer forever: it is opened without blocking.
  CHECK_THROWS_WITH_AS(load_model<float>(fifo),
                       ("safetensors file '" + fifo +
                        "': not a regular file (a pipe); read its bytes yourself and call parse_safetensors")
                           .c_str(),
                       IOError);
  CHECK(bitwise_equal(before, model.get_weights()));
}

TEST_CASE_TEMPLATE("load: NaN or Inf weights and negative moving variances are refused, naming the tensor", S, float,
                   double) {
  test::TempDir dir;
  Sequential<double> source(3);
  source.add(Dense<double>(4, 3));
  source.add(BatchNorm<double>());
  source.add(Dense<double>(3, 2));
  const std::string path = dir.file("m.safetensors");
  // Writes the file with one value replaced, through the layer's own views
  // (set_weights would refuse the value).
  const auto save_with = [&](std::size_t layer, const std::string& tensor, Index i, double value) {
    auto copy = source.clone();
    for (const auto& p : detail::layer_tensors(copy.layer(layer)))
      if (p.name == tensor) p.value[i] = value;
    save_model(copy, path, DType::F64);
  };
  Sequential<S> target(9);
  target.add(Dense<S>(4, 3));
  target.add(BatchNorm<S>());
  target.add(Dense<S>(3, 2));
  const auto before = target.get_weights();
  const auto error = [&]() -> std::string {
    try {
      load_weights(target, path);
    } catch (const FormatError& e) {
      return e.what();
    }
    return "no error";
  };

  save_with(0, "kernel", 5, std::numeric_limits<double>::quiet_NaN());
  CHECK(error() == path + ": tensor 'dense.kernel' (Dense 'dense' kernel (inputs x units)): value 5 is nan, expected a "
                          "finite number");
  CHECK_THROWS_AS(load_model<S>(path), FormatError);
  save_with(1, "moving_variance", 1, -0.5);
  CHECK(error() == path + ": tensor 'batch_normalization.moving_variance' (BatchNormalization 'batch_normalization' "
                          "moving_variance): value 1 is -0.5, expected >= 0 (a variance)");
  save_with(0, "bias", 2, -std::numeric_limits<double>::infinity());
  CHECK(contains(error(), "tensor 'dense.bias' (Dense 'dense' bias): value 2 is -inf, expected a finite number"));
  if (std::is_same_v<S, float>) {  // finite in the file, Inf once converted to float
    save_with(2, "kernel", 0, 1e300);
    CHECK(contains(error(), "tensor 'dense_1.kernel' (Dense 'dense_1' kernel (inputs x units)): value 0 is inf"));
  }
  CHECK(bitwise_equal(before, target.get_weights()));

  // set_weights: the same rule, the same contract.
  auto w = target.get_weights();
  w[5][0] = -1;
  CHECK_THROWS_WITH_AS(target.set_weights(w),
                       "Sequential::set_weights: tensor 5 (moving_variance): value 0 is -1, expected >= 0 (a variance)",
                       ValueError);
  w[5][0] = 1;
  w[2][1] = std::numeric_limits<S>::quiet_NaN();
  CHECK_THROWS_AS(target.set_weights(w), ValueError);
  CHECK(bitwise_equal(before, target.get_weights()));
}

TEST_CASE("load_pytorch_state_dict: a NaN running_var is refused like any other tensor") {
  Sequential<float> model;
  model.add(Dense<float>(2, 2));
  model.add(BatchNorm<float>(BatchNormOptions::pytorch()));
  const auto before = model.get_weights();
  const std::vector<float> weight{1, 2, 3, 4}, two{0, 0}, var{1, std::numeric_limits<float>::quiet_NaN()};
  const std::string bytes = encode_safetensors({{"0.weight", DType::F32, {2, 2}, weight.data()},
                                                {"0.bias", DType::F32, {2}, two.data()},
                                                {"1.weight", DType::F32, {2}, two.data()},
                                                {"1.bias", DType::F32, {2}, two.data()},
                                                {"1.running_mean", DType::F32, {2}, two.data()},
                                                {"1.running_var", DType::F32, {2}, var.data()}},
                                               {});
  CHECK_THROWS_WITH_AS(load_pytorch_state_dict(model, parse_safetensors(bytes, "sd"), "sd"),
                       "sd: tensor '1.running_var' (BatchNormalization 'batch_normalization' moving_variance): value 1 "
                       "is nan, expected a finite number",
                       FormatError);
  CHECK(bitwise_equal(before, model.get_weights()));
}

TEST_CASE("messages quote at most a short excerpt of a file's bad values") {
  const std::string huge(20 << 20, 'x');
  const std::string unknown_type = load_error(model_file({2}, {layer(huge, "l", Json::object())}));
  CHECK(contains(unknown_type, "unknown layer type 'xxx"));
  CHECK(unknown_type.size() < 1000);
  const std::string long_name = load_error(model_file({2}, {layer("ReLU", huge, Json::object())}));
  CHECK(contains(long_name, "field 'name' must be a name of 1 to 256 bytes that no other layer has"));
  CHECK(long_name.size() < 1000);
  Json big_array = Json::array();
  for (int i = 0; i < 100000; ++i) big_array.push_back(i);
  const std::string bad_shape = load_error(model_file(big_array, {layer("ReLU", "r", Json::object())}));
  CHECK(contains(bad_shape, "field 'input_shape' must be a list of 1 to 4 sizes, got [0,1,2,"));
  CHECK(bad_shape.size() < 1000);
}
