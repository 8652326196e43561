// load_pytorch_state_dict against PyTorch: state_dicts of a trained MLP and a
// small CNN (scripts/make_pytorch_fixture.py) loaded into the same
// architectures built in minidl predict what PyTorch predicted in eval mode.
#include <doctest/doctest.h>
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <minidl/io/pytorch.hpp>
#include <minidl/minidl.hpp>
#include <string>
#include <type_traits>

#include "support.hpp"

#ifndef MINIDL_TEST_DATA_DIR
#error "MINIDL_TEST_DATA_DIR must name the tests/data directory"
#endif

using namespace minidl;
using test::bitwise_equal;

namespace {

std::string data(const std::string& name) { return std::string(MINIDL_TEST_DATA_DIR) + "/" + name; }

template <class S>
std::string state_dict(const std::string& model) {
  return data("pytorch_" + model + (std::is_same_v<S, float> ? "_f32" : "_f64") + ".safetensors");
}

/// A tensor of the reference file as an N x (the rest) matrix.
Matrix<double> reference(const std::string& name) {
  static const SafetensorsFile file = read_safetensors(data("pytorch_reference.safetensors"));  // F64 only
  const TensorEntry* entry = file.find(name);
  REQUIRE_MESSAGE(entry != nullptr, name);
  Matrix<double> m(entry->shape[0], entry->element_count() / entry->shape[0]);
  file.read(*entry, m.data());
  return m;
}

// 0 Linear(8, 16), 1 BatchNorm1d(16), 2 ReLU, 3 Dropout(0.2), 4 Linear(16, 3)
template <class S>
Sequential<S> mlp() {
  Sequential<S> model(9);
  model.add(Dense<S>(8, 16));
  model.add(BatchNorm<S>(BatchNormOptions::pytorch()));
  model.add(ReLU<S>());
  model.add(Dropout<S>(0.2));
  model.add(Dense<S>(16, 3));
  return model;
}

// 0 Conv2d(2, 4, 3), 1 BatchNorm2d(4), 2 ReLU, 3 MaxPool2d(2), 4 Flatten, 5 BatchNorm1d(16), 6 Linear(16, 3)
template <class S>
Sequential<S> cnn() {
  Sequential<S> model(9);
  model.add(Conv2D<S>(Shape{6, 6, 2}, 4, 3));
  model.add(BatchNorm<S>(BatchNormOptions::pytorch()));
  model.add(ReLU<S>());
  model.add(MaxPooling2D<S>());
  model.add(Flatten<S>());
  model.add(BatchNorm<S>(BatchNormOptions::pytorch()));
  model.add(Dense<S>(16, 3));
  return model;
}

/// The largest relative error of a sample's outputs, max_n ‖got_n − want_n‖∞ / ‖want_n‖∞
/// (relative to each sample's output scale, so an output near 0 does not blow it up).
template <class S>
double max_relative_error(const Matrix<S>& got, const Matrix<double>& want) {
  REQUIRE(got.rows() == want.rows());
  REQUIRE(got.cols() == want.cols());
  double worst = 0;
  for (Index n = 0; n < want.rows(); ++n)
    worst = std::max(worst, (got.row(n).template cast<double>() - want.row(n)).cwiseAbs().maxCoeff() /
                                want.row(n).cwiseAbs().maxCoeff());
  return worst;
}

template <class S>
void check_parity(Sequential<S>& model, const std::string& name) {
  const bool single = std::is_same_v<S, float>;
  const Matrix<S> x = reference(name + "_x").cast<S>();  // float32 values: exact in both types
  const Matrix<double> want = reference(name + (single ? "_y32" : "_y64"));
  REQUIRE(want.rowwise().lpNorm<Eigen::Infinity>().minCoeff() > 0.1);  // outputs of a sensible scale
  const double error = max_relative_error(model.predict(x), want);
  const std::string what = name + (single ? " float" : " double") + ": max relative error against PyTorch ";
  MESSAGE(what << error);
  CHECK(error < (single ? 1e-5 : 1e-6));
}

}  // namespace

TEST_CASE_TEMPLATE("PyTorch parity: an MLP with BatchNorm1d and Dropout, trained in PyTorch", S, float, double) {
  auto model = mlp<S>();
  load_pytorch_state_dict(model, state_dict<S>("mlp"));
  check_parity(model, "mlp");
}

TEST_CASE_TEMPLATE("PyTorch parity: Conv2d, BatchNorm2d, MaxPool2d, Flatten, BatchNorm1d, Linear", S, float, double) {
  auto model = cnn<S>();
  load_pytorch_state_dict(model, state_dict<S>("cnn"));
  check_parity(model, "cnn");
}

/// A PyTorch file, read as it is: its I64 counters (num_batches_tracked) are
/// the only tensors that are neither F32 nor F64.
static SafetensorsFile read_pytorch(const std::string& path, std::size_t batch_norms) {
  SafetensorsFile file = read_safetensors(path);
  std::size_t counters = 0;
  for (const auto& entry : file.tensors())
    if (entry.dtype != DType::F32 && entry.dtype != DType::F64) {
      CHECK(entry.dtype == DType::I64);
      CHECK(entry.name.size() > 20);
      CHECK(entry.name.substr(entry.name.size() - 20) == ".num_batches_tracked");
      ++counters;
    }
  CHECK(counters == batch_norms);
  return file;
}

TEST_CASE("PyTorch parity: an F64 state_dict loads into a float model (rounded once on load)") {
  auto model = mlp<float>();
  load_pytorch_state_dict(model, state_dict<double>("mlp"));
  const Matrix<float> x = reference("mlp_x").cast<float>();
  const double error = max_relative_error(model.predict(x), reference("mlp_y64"));
  MESSAGE("mlp, F64 file into float: max relative error against PyTorch " << error);
  CHECK(error < 1e-5);
}

TEST_CASE("load_pytorch_state_dict: where each PyTorch value lands") {
  const SafetensorsFile file = read_pytorch(data("pytorch_cnn_f64.safetensors"), 2);
  const auto tensor = [&](const std::string& name) {
    Vector<double> v(file.find(name)->element_count());
    file.read(*file.find(name), v.data());
    return v;
  };
  auto model = cnn<double>();
  load_pytorch_state_dict(model, data("pytorch_cnn_f64.safetensors"));
  // Conv2d weight (F, C, kh, kw) -> kernel (kh, kw, C, F).
  const Vector<double> w = tensor("0.weight");
  const auto& conv = dynamic_cast<const Conv2D<double>&>(model.layer(0));
  for (Index f = 0; f < 4; ++f)
    for (Index c = 0; c < 2; ++c)
      for (Index a = 0; a < 3; ++a)
        for (Index b = 0; b < 3; ++b) CHECK(conv.kernel()((a * 3 + b) * 2 + c, f) == w[((f * 2 + c) * 3 + a) * 3 + b]);
  const auto& bn2d = dynamic_cast<const BatchNorm<double>&>(model.layer(1));
  CHECK(bn2d.gamma() == tensor("1.weight"));
  CHECK(bn2d.beta() == tensor("1.bias"));
  CHECK(bn2d.moving_mean() == tensor("1.running_mean"));
  CHECK(bn2d.moving_variance() == tensor("1.running_var"));
  // After Flatten, PyTorch's feature (c, h, w) of the 2 x 2 x 4 image is minidl's feature (h, w, c).
  const auto& bn1d = dynamic_cast<const BatchNorm<double>&>(model.layer(5));
  const Vector<double> mean = tensor("5.running_mean");
  const Vector<double> w6 = tensor("6.weight");  // (3, 16)
  const auto& dense = dynamic_cast<const Dense<double>&>(model.layer(6));
  for (Index h = 0; h < 2; ++h)
    for (Index x = 0; x < 2; ++x)
      for (Index c = 0; c < 4; ++c) {
        const Index ours = (h * 2 + x) * 4 + c, theirs = (c * 2 + h) * 2 + x;
        CHECK(bn1d.moving_mean()[ours] == mean[theirs]);
        for (Index u = 0; u < 3; ++u) CHECK(dense.kernel()(ours, u) == w6[u * 16 + theirs]);
      }
}

TEST_CASE("load_pytorch_state_dict: a Linear weight (units, inputs) is the transposed kernel (inputs, units)") {
  const SafetensorsFile file = read_pytorch(data("pytorch_mlp_f64.safetensors"), 1);
  Vector<double> w(16 * 8);
  file.read(*file.find("0.weight"), w.data());
  auto model = mlp<double>();
  load_pytorch_state_dict(model, data("pytorch_mlp_f64.safetensors"));
  const auto& dense = dynamic_cast<const Dense<double>&>(model.layer(0));
  for (Index in = 0; in < 8; ++in)
    for (Index u = 0; u < 16; ++u) CHECK(dense.kernel()(in, u) == w[u * 8 + in]);
}

TEST_CASE_TEMPLATE("load_pytorch_state_dict: module names when the layers do not follow PyTorch's indices", S,
                   float, double) {
  // Without PyTorch's Dropout module 3 (the identity in eval mode) minidl's last layer is PyTorch's module 4.
  Sequential<S> model(3);
  model.add(Dense<S>(8, 16));
  model.add(BatchNorm<S>(BatchNormOptions::pytorch()));
  model.add(ReLU<S>());
  model.add(Dense<S>(16, 3));
  CHECK_THROWS_WITH_AS(load_pytorch_state_dict(model, state_dict<S>("mlp")),
                       doctest::Contains("tensor '3.weight' is missing"), FormatError);
  PyTorchLoadOptions options;
  options.modules = {"0", "1", "2"};
  CHECK_THROWS_WITH_AS(load_pytorch_state_dict(model, state_dict<S>("mlp"), options),
                       doctest::Contains("options.modules has 3 names, expected one per layer (4)"), ValueError);
  options.modules = {"0", "1", "2", "4"};
  load_pytorch_state_dict(model, state_dict<S>("mlp"), options);
  check_parity(model, "mlp");
}

TEST_CASE_TEMPLATE("load_pytorch_state_dict checks everything first and changes nothing on failure", S, float,
                   double) {
  SUBCASE("a Linear of another size") {
    Sequential<S> model(3);
    model.add(Dense<S>(8, 15));
    model.add(BatchNorm<S>(BatchNormOptions::pytorch()));
    const auto before = model.get_weights();
    CHECK_THROWS_WITH_AS(load_pytorch_state_dict(model, state_dict<S>("mlp")),
                         doctest::Contains("tensor '0.weight' has shape [16, 8], expected [15, 8]"), FormatError);
    CHECK(bitwise_equal(model.get_weights(), before));
  }
  SUBCASE("tensors of modules the model lacks, unless strict is false") {
    Sequential<S> model(3);
    model.add(Dense<S>(8, 16));
    model.add(BatchNorm<S>(BatchNormOptions::pytorch()));
    const auto before = model.get_weights();
    CHECK_THROWS_WITH_AS(load_pytorch_state_dict(model, state_dict<S>("mlp")),
                         doctest::Contains("unexpected tensor '4.weight'"), FormatError);
    CHECK(bitwise_equal(model.get_weights(), before));
    PyTorchLoadOptions lenient;
    lenient.strict = false;
    load_pytorch_state_dict(model, state_dict<S>("mlp"), lenient);
    auto full = mlp<S>();
    load_pytorch_state_dict(full, state_dict<S>("mlp"));
    const auto expected = full.get_weights();
    CHECK(bitwise_equal(model.get_weights(), {expected[0], expected[1], expected[2], expected[3], expected[4],
                                              expected[5]}));
  }
  SUBCASE("a BatchNorm with Keras's convention (epsilon 1e-3) would silently differ: refused") {
    Sequential<S> model(3);
    model.add(Dense<S>(8, 16));
    model.add(BatchNorm<S>());
    const auto before = model.get_weights();
    CHECK_THROWS_WITH_AS(load_pytorch_state_dict(model, state_dict<S>("mlp"), {false, {}, {}}),
                         doctest::Contains("BatchNormOptions::pytorch()"), ValueError);
    CHECK(bitwise_equal(model.get_weights(), before));
  }
  SUBCASE("an integer tensor where a weight belongs") {
    // A valid file whose 0.weight is I32 (the same bytes as the F32 values).
    const std::vector<float> w(16 * 8, 0.5f), b(16, 0.25f);
    std::string bytes = encode_safetensors({{"0.weight", DType::F32, {16, 8}, w.data()},
                                            {"0.bias", DType::F32, {16}, b.data()}}, {});
    bytes.replace(bytes.find("\"F32\""), 5, "\"I32\"");
    const test::TempDir dir("minidl_pytorch");
    const std::string path = dir.file("int.safetensors");
    write_file_atomically(path, bytes);
    Sequential<S> model(3);
    model.add(Dense<S>(8, 16));
    const auto before = model.get_weights();
    CHECK_THROWS_WITH_AS(load_pytorch_state_dict(model, path),
                         doctest::Contains("tensor '0.weight' has dtype I32, expected F32 or F64"), FormatError);
    CHECK(bitwise_equal(model.get_weights(), before));
  }
}
