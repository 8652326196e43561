// Activation functions (activation.hpp) and the activation layers
// (layers/activation_layer.hpp): hand-computed forward values in both phases,
// backward against finite differences, softmax normalization and stability.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>
#include <minidl/activation.hpp>
#include <minidl/gradient_check.hpp>
#include <minidl/layers/activation_layer.hpp>
#include <minidl/layers/conv2d.hpp>
#include <minidl/layers/dense.hpp>
#include <minidl/layers/registry.hpp>

#include "support.hpp"

using minidl::Activation;
using minidl::Index;
using minidl::Matrix;
using minidl::Phase;
using minidl::Shape;

namespace {

// Values in ±[0.1, 2): away from ReLU's kink at 0, so finite differences of
// step 1e-6 never straddle it.
Matrix<double> away_from_zero(Index rows, Index cols, std::uint64_t seed) {
  minidl::Rng rng(seed);
  Matrix<double> x(rows, cols);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = (rng.uniform() < 0.5 ? -1 : 1) * rng.uniform(0.1, 2.0);
  return x;
}

// Runs both forward phases of `layer` on x and checks each against `expected`.
template <class Scalar>
void check_both_phases(minidl::Layer<Scalar>& layer, const Matrix<Scalar>& x, const Matrix<Scalar>& expected,
                       double tolerance) {
  for (Phase phase : {Phase::training, Phase::inference}) {
    const std::string phase_name = minidl::to_string(phase);
    CAPTURE(phase_name);
    const Matrix<Scalar>& y = layer.forward(x, phase);
    REQUIRE(y.rows() == expected.rows());
    REQUIRE(y.cols() == expected.cols());
    for (Index i = 0; i < y.size(); ++i)
      CHECK(static_cast<double>(y.data()[i]) ==
            doctest::Approx(static_cast<double>(expected.data()[i])).epsilon(tolerance));
  }
}

// Relative tolerance: a few ulp in double; in float (ulp 6e-8) the vectorized
// exp/tanh/logistic approximations are allowed tens of ulp.
template <class Scalar>
double tolerance() {
  return minidl::test::tolerance<Scalar>(1e-5, 1e-14);
}

}  // namespace

TEST_CASE("Activation names round-trip and unknown names are a ValueError") {
  for (Activation a : minidl::all_activations) CHECK(minidl::activation_from_string(minidl::to_string(a)) == a);
  CHECK(std::string(minidl::to_string(Activation::relu)) == "relu");
  CHECK(std::string(minidl::to_string(Activation::gelu_approximate)) == "gelu_approximate");
  CHECK(std::string(minidl::to_string(Activation::relu6)) == "relu6");
  CHECK(minidl::activation_from_string("swish") == Activation::silu);  // Keras's alias
  CHECK_THROWS_WITH_AS(minidl::activation_from_string("mish"),
                       "unknown activation 'mish', expected one of linear, relu, sigmoid, tanh, softmax, leaky_relu, "
                       "elu, gelu, gelu_approximate, silu, softplus, relu6",
                       minidl::ValueError);
}

TEST_CASE_TEMPLATE("activation layers: hand-computed values in both phases", Scalar, float, double) {
  const double ln2 = std::log(2.0), ln3 = std::log(3.0);
  Matrix<Scalar> x(2, 4);
  x << Scalar(-2), Scalar(-0.5), Scalar(0.5), Scalar(3),  //
      Scalar(0), Scalar(ln2), Scalar(-ln3), Scalar(ln3);
  Matrix<Scalar> expected(2, 4);

  SUBCASE("ReLU: max(x, 0)") {
    minidl::ReLU<Scalar> layer;
    layer.build(Shape{4});
    expected << 0, 0, Scalar(0.5), 3, 0, Scalar(ln2), 0, Scalar(ln3);
    check_both_phases<Scalar>(layer, x, expected, tolerance<Scalar>());
  }
  SUBCASE("Sigmoid: 1/(1+e^-x); sigmoid(±ln 3) = 3/4, 1/4, sigmoid(ln 2) = 2/3") {
    minidl::Sigmoid<Scalar> layer(Shape{4});
    const double e = std::exp(1.0);
    expected << Scalar(1 / (1 + e * e)), Scalar(1 / (1 + std::sqrt(e))), Scalar(1 / (1 + 1 / std::sqrt(e))),
        Scalar(1 / (1 + 1 / (e * e * e))),  //
        Scalar(0.5), Scalar(2.0 / 3), Scalar(0.25), Scalar(0.75);
    check_both_phases<Scalar>(layer, x, expected, tolerance<Scalar>());
  }
  SUBCASE("Tanh: tanh(v) = (e^2v − 1)/(e^2v + 1); tanh(ln 2) = 3/5, tanh(±ln 3) = ±4/5") {
    minidl::Tanh<Scalar> layer(Shape{4});
    const auto tanh_closed = [](double v) { return (std::exp(2 * v) - 1) / (std::exp(2 * v) + 1); };
    expected << Scalar(tanh_closed(-2)), Scalar(tanh_closed(-0.5)), Scalar(tanh_closed(0.5)), Scalar(tanh_closed(3)),
        Scalar(0), Scalar(0.6), Scalar(-0.8), Scalar(0.8);
    check_both_phases<Scalar>(layer, x, expected, tolerance<Scalar>());
  }
  SUBCASE("Linear: identity") {
    minidl::Linear<Scalar> layer(Shape{4});
    CHECK(layer.forward(x, Phase::training) == x);
    CHECK(layer.forward(x, Phase::inference) == x);
  }
  SUBCASE("Softmax: softmax(ln 1, ln 2, ln 3, ln 4) = (0.1, 0.2, 0.3, 0.4), shifted by 7") {
    minidl::Softmax<Scalar> layer(Shape{4});
    x << Scalar(0), Scalar(ln2), Scalar(ln3), Scalar(std::log(4.0)),  //
        Scalar(7), Scalar(7 + ln2), Scalar(7 + ln3), Scalar(7 + std::log(4.0));
    expected << Scalar(0.1), Scalar(0.2), Scalar(0.3), Scalar(0.4), Scalar(0.1), Scalar(0.2), Scalar(0.3), Scalar(0.4);
    check_both_phases<Scalar>(layer, x, expected, tolerance<Scalar>());
  }
}

TEST_CASE_TEMPLATE("Softmax over the last axis of an image shape", Scalar, float, double) {
  // Shape (1, 2, 3): two pixels of three channels; each pixel normalizes alone.
  minidl::Softmax<Scalar> layer;
  layer.build(Shape{1, 2, 3});
  Matrix<Scalar> x(1, 6);
  x << 0, Scalar(std::log(2.0)), 0,  // (1, 2, 1) / 4
      Scalar(std::log(3.0)), Scalar(std::log(3.0)), Scalar(std::log(6.0));  // (3, 3, 6) / 12
  Matrix<Scalar> expected(1, 6);
  expected << Scalar(0.25), Scalar(0.5), Scalar(0.25), Scalar(0.25), Scalar(0.25), Scalar(0.5);
  check_both_phases<Scalar>(layer, x, expected, tolerance<Scalar>());
}

TEST_CASE_TEMPLATE("Softmax rows sum to 1 and huge inputs give no NaN", Scalar, float, double) {
  minidl::Softmax<Scalar> layer(Shape{3});
  Matrix<Scalar> x(4, 3);
  x << Scalar(1e4), 0, Scalar(-1e4),            // one dominant value
      Scalar(1e4), Scalar(1e4), Scalar(-1e4),   // two equal dominant values
      Scalar(-1e4), Scalar(-1e4), Scalar(-1e4),  // all equal, very negative
      Scalar(0.3), Scalar(-1.7), Scalar(2.2);
  const Matrix<Scalar>& y = layer.forward(x, Phase::training);
  CHECK(y.allFinite());
  for (Index r = 0; r < 4; ++r) CHECK(static_cast<double>(y.row(r).sum()) == doctest::Approx(1.0).epsilon(1e-6));
  CHECK(y(0, 0) == Scalar(1));
  CHECK(static_cast<double>(y(0, 1)) == doctest::Approx(0.0));  // e^-1e4, below the smallest denormal
  CHECK(y(1, 0) == Scalar(0.5));
  CHECK(y(1, 1) == Scalar(0.5));
  CHECK(static_cast<double>(y(2, 2)) == doctest::Approx(1.0 / 3).epsilon(1e-6));
  // Backward at saturation stays finite too.
  Matrix<Scalar> dy = Matrix<Scalar>::Ones(4, 3);
  CHECK(layer.backward(x, dy).allFinite());
}

TEST_CASE_TEMPLATE("Sigmoid and Tanh saturate without NaN", Scalar, float, double) {
  Matrix<Scalar> x(1, 4);
  x << Scalar(-1000), Scalar(-50), Scalar(50), Scalar(1000);
  minidl::Sigmoid<Scalar> sigmoid(Shape{4});
  const Matrix<Scalar>& s = sigmoid.forward(x, Phase::inference);
  CHECK(s.allFinite());
  CHECK(static_cast<double>(s(0, 0)) == doctest::Approx(0.0));
  CHECK(static_cast<double>(s(0, 3)) == doctest::Approx(1.0));
  minidl::Tanh<Scalar> tanh(Shape{4});
  const Matrix<Scalar>& t = tanh.forward(x, Phase::inference);
  CHECK(t.allFinite());
  CHECK(static_cast<double>(t(0, 0)) == doctest::Approx(-1.0));
  CHECK(static_cast<double>(t(0, 3)) == doctest::Approx(1.0));
}

TEST_CASE("activation_backward: hand-computed derivatives from the output") {
  // y, dy chosen so that each derivative is a round number.
  Matrix<double> y(1, 4), dy(1, 4), dz(1, 4);
  y << 0.0, 0.5, 0.25, 2.0;
  dy << 1.0, 2.0, 4.0, -1.0;

  minidl::activation_backward(Activation::relu, y, dy, dz);  // [y > 0] dy
  CHECK(dz == (Matrix<double>(1, 4) << 0.0, 2.0, 4.0, -1.0).finished());
  minidl::activation_backward(Activation::linear, y, dy, dz);  // dy
  CHECK(dz == dy);
  Matrix<double> ys(1, 3), dys(1, 3), dzs(1, 3);
  ys << 0.5, 0.25, 0.75;
  dys << 1.0, 2.0, 4.0;
  minidl::activation_backward(Activation::sigmoid, ys, dys, dzs);  // y (1 − y) dy
  CHECK(dzs == (Matrix<double>(1, 3) << 0.25, 0.375, 0.75).finished());
  minidl::activation_backward(Activation::tanh, ys, dys, dzs);  // (1 − y²) dy
  CHECK(dzs == (Matrix<double>(1, 3) << 0.75, 1.875, 1.75).finished());
  // Softmax: y = (0.5, 0.25, 0.25), dy = (1, 2, 4): Σ dy·y = 0.5 + 0.5 + 1 = 2,
  // dz = y ⊙ (dy − 2) = (−0.5, 0, 0.5).
  ys << 0.5, 0.25, 0.25;
  minidl::activation_backward(Activation::softmax, ys, dys, dzs);
  CHECK(dzs == (Matrix<double>(1, 3) << -0.5, 0.0, 0.5).finished());
  // In place: dz may be dy itself.
  minidl::activation_backward(Activation::softmax, ys, dys, dys);
  CHECK(dys == dzs);
}

TEST_CASE("activate works in place") {
  Matrix<double> z(2, 2);
  z << std::log(1.0), std::log(3.0), -1.0, 2.0;
  minidl::activate(Activation::softmax, z, z);
  CHECK(z(0, 0) == doctest::Approx(0.25));
  CHECK(z(0, 1) == doctest::Approx(0.75));
  CHECK(z.row(1).sum() == doctest::Approx(1.0));
  minidl::activate(Activation::relu, z, z);
  CHECK(z(0, 1) == doctest::Approx(0.75));
}

TEST_CASE_TEMPLATE("activation layers: backward matches finite differences", Layer,
                   minidl::ReLU<double>, minidl::Sigmoid<double>, minidl::Tanh<double>,
                   minidl::Softmax<double>, minidl::Linear<double>) {
  const Shape shapes[] = {Shape{1}, Shape{7}, Shape{2, 3, 4}, Shape{3, 2}};
  std::uint64_t seed = 10;
  for (const Shape& shape : shapes) {
    for (Index rows : {1, 5}) {
      CAPTURE(shape);
      CAPTURE(rows);
      Layer layer;
      layer.build(shape);
      const auto result = minidl::check_gradients(layer, away_from_zero(rows, shape.size(), ++seed));
      CHECK(result.input_error < 1e-8);
      CHECK(result.parameter_errors.empty());
    }
  }
}

TEST_CASE("activation layers: types, no weights, shape handling") {
  CHECK(std::string(minidl::ReLU<float>().type()) == "ReLU");
  CHECK(std::string(minidl::Sigmoid<float>().type()) == "Sigmoid");
  CHECK(std::string(minidl::Tanh<float>().type()) == "Tanh");
  CHECK(std::string(minidl::Softmax<float>().type()) == "Softmax");
  CHECK(std::string(minidl::Linear<float>().type()) == "Linear");
  CHECK(minidl::Softmax<float>().activation() == Activation::softmax);

  minidl::ReLU<double> relu;
  relu.set_name("act");
  CHECK_FALSE(relu.built());
  Matrix<double> x = Matrix<double>::Ones(2, 3);
  CHECK_THROWS_AS(relu.forward(x, Phase::training), minidl::StateError);
  relu.build(Shape{3});
  CHECK(relu.output_shape() == Shape{3});
  CHECK(relu.parameter_count() == 0);
  CHECK(relu.parameters().empty());
  CHECK(relu.initialized());
  Matrix<double> wrong = Matrix<double>::Ones(2, 4);
  CHECK_THROWS_WITH_AS(relu.forward(wrong, Phase::training),
                       "ReLU 'act': forward() input has 4 values per sample, expected 3 (input shape (None, 3))",
                       minidl::ShapeError);
  CHECK_THROWS_AS(relu.build(Shape{4}), minidl::ShapeError);

  // Gradients flow through a frozen activation layer unchanged.
  relu.forward(x, Phase::training);
  const Matrix<double> unfrozen = relu.backward(x, x);
  relu.set_frozen(true);
  relu.forward(x, Phase::training);
  CHECK(relu.backward(x, x) == unfrozen);
  auto copy = relu.clone();
  CHECK(std::string(copy->type()) == "ReLU");
  CHECK(copy->input_shape() == Shape{3});
}

namespace {

// Keras's reference formulas (keras/src/activations/activations_test.py and
// keras/src/layers/activations/*_test.py) in long double: the plain forms,
// but softplus's log(1 + e^x) written with log1p, so that the reference keeps
// its own precision for x ≪ 0.
using Reference = std::function<long double(long double)>;
Reference leaky_reference(long double slope) {
  return [slope](long double x) { return x > 0 ? x : slope * x; };
}
Reference elu_reference(long double alpha) {
  return [alpha](long double x) { return (x > 0) * x + (x <= 0) * alpha * (std::exp(x) - 1); };
}
const Reference gelu_reference = [](long double x) { return x * std::erfc(-x / std::sqrt(2.0L)) / 2; };  // x·Φ(x)
const Reference gelu_tanh_reference = [](long double x) {
  const long double pi = 3.141592653589793238462643383279502884L;
  return 0.5L * x * (1 + std::tanh(std::sqrt(2 / pi) * (x + 0.044715L * x * x * x)));
};
const Reference silu_reference = [](long double x) { return x / (1 + std::exp(-x)); };
const Reference softplus_reference = [](long double x) { return std::log1p(std::exp(x)); };
const Reference relu6_reference = [](long double x) { return std::min(std::max(0.0L, x), 6.0L); };

// Chosen points: both sides of 0 and of 6, tiny, saturated and large values.
const double points[] = {-50, -10, -5.9, -3, -1, -0.5, -1e-7, 0, 1e-7, 0.5, 1, 3, 5.9, 6.1, 10, 50};

template <class Scalar>
Matrix<Scalar> point_row() {
  Matrix<Scalar> x(1, static_cast<Index>(std::size(points)));
  for (Index i = 0; i < x.cols(); ++i) x(0, i) = static_cast<Scalar>(points[i]);
  return x;
}
template <class Scalar>
Matrix<Scalar> reference_of(const Matrix<Scalar>& x, const Reference& f) {
  Matrix<Scalar> y(x.rows(), x.cols());
  for (Index i = 0; i < x.size(); ++i) y.data()[i] = static_cast<Scalar>(f(static_cast<long double>(x.data()[i])));
  return y;
}

// Values in ±[0.4, 8), at least 0.1 away from every kink (0, and ReLU6's 6),
// so that central differences of step 1e-6 never straddle one.
Matrix<double> away_from_kinks(Index rows, Index cols, std::uint64_t seed) {
  Matrix<double> x = 4 * away_from_zero(rows, cols, seed);
  for (Index i = 0; i < x.size(); ++i)
    if (std::abs(std::abs(x.data()[i]) - 6) < 0.1) x.data()[i] *= 0.9;
  return x;
}

// Every new layer, with its defaults and with other valid parameters, and its reference.
template <class Scalar>
std::vector<std::pair<std::unique_ptr<minidl::Layer<Scalar>>, Reference>> new_layers() {
  std::vector<std::pair<std::unique_ptr<minidl::Layer<Scalar>>, Reference>> out;
  const auto add = [&out](const auto& layer, Reference f) { out.emplace_back(layer.clone(), std::move(f)); };
  add(minidl::LeakyReLU<Scalar>(), leaky_reference(0.3L));  // the Keras layer's default
  add(minidl::LeakyReLU<Scalar>(0.5), leaky_reference(0.5L));
  add(minidl::LeakyReLU<Scalar>(0.0), leaky_reference(0.0L));
  add(minidl::LeakyReLU<Scalar>(1.5), leaky_reference(1.5L));
  add(minidl::ELU<Scalar>(), elu_reference(1.0L));
  add(minidl::ELU<Scalar>(0.7), elu_reference(0.7L));  // elu_test.py's other alpha
  add(minidl::ELU<Scalar>(0.0), elu_reference(0.0L));
  add(minidl::GELU<Scalar>(), gelu_reference);
  add(minidl::GELU<Scalar>(true), gelu_tanh_reference);
  add(minidl::SiLU<Scalar>(), silu_reference);
  add(minidl::Softplus<Scalar>(), softplus_reference);
  add(minidl::ReLU6<Scalar>(), relu6_reference);
  return out;
}

// The new fused activations, with keras.activations' defaults.
const std::pair<Activation, Reference> fused[] = {
    {Activation::leaky_relu, leaky_reference(0.2L)}, {Activation::elu, elu_reference(1.0L)},
    {Activation::gelu, gelu_reference},               {Activation::gelu_approximate, gelu_tanh_reference},
    {Activation::silu, silu_reference},               {Activation::softplus, softplus_reference},
    {Activation::relu6, relu6_reference}};

// Z = rows·K + b of a Dense or Conv2D: the same layer made linear, with the same weights.
Matrix<double> pre_activation(minidl::Layer<double>& layer, const Matrix<double>& x) {
  minidl::LayerConfig config = layer.config();
  config.set("activation", "linear");
  auto twin = minidl::LayerRegistry<double>::instance().create(layer.type(), config);
  twin->build(layer.input_shape());
  auto from = layer.parameters();
  auto to = twin->parameters();
  for (std::size_t i = 0; i < from.size(); ++i) to[i].values() = from[i].values();
  return twin->forward(x, Phase::inference);
}

}  // namespace

TEST_CASE_TEMPLATE("new activation layers: Keras's reference formulas at chosen points, both phases", Scalar, float,
                   double) {
  const Matrix<Scalar> x = point_row<Scalar>();
  for (auto& [layer, reference] : new_layers<Scalar>()) {
    const std::string type = layer->type();
    CAPTURE(type);
    const std::string parameter =
        layer->config().empty() ? "" : minidl::LayerConfig::text(layer->config().fields()[0].second);
    CAPTURE(parameter);
    layer->build(Shape{x.cols()});
    check_both_phases<Scalar>(*layer, x, reference_of(x, reference), tolerance<Scalar>());
  }
}

TEST_CASE_TEMPLATE("fused activations: keras.activations' defaults at chosen points", Scalar, float, double) {
  const Matrix<Scalar> x = point_row<Scalar>();
  for (const auto& [a, reference] : fused) {
    const std::string name = minidl::to_string(a);
    CAPTURE(name);
    Matrix<Scalar> y(x.rows(), x.cols());
    minidl::activate(a, x, y);
    const Matrix<Scalar> expected = reference_of(x, reference);
    for (Index i = 0; i < y.size(); ++i)
      CHECK(static_cast<double>(y(0, i)) ==
            doctest::Approx(static_cast<double>(expected(0, i))).epsilon(tolerance<Scalar>()));
  }
}

TEST_CASE_TEMPLATE("new activations: hand-computed values", Scalar, float, double) {
  const auto value = [](minidl::Layer<Scalar>&& layer, double x) {
    layer.build(Shape{1});
    return static_cast<double>(layer.forward(Matrix<Scalar>::Constant(1, 1, Scalar(x)), Phase::inference)(0, 0));
  };
  const double eps = tolerance<Scalar>();
  // leaky_relu_test.py: LeakyReLU(negative_slope=0.5) on [-10, -5, 0, 5, 10].
  const double in[] = {-10, -5, 0, 5, 10}, out[] = {-5, -2.5, 0, 5, 10};
  for (int i = 0; i < 5; ++i) CHECK(value(minidl::LeakyReLU<Scalar>(0.5), in[i]) == out[i]);
  CHECK(value(minidl::LeakyReLU<Scalar>(), -10) == doctest::Approx(-3).epsilon(eps));
  CHECK(value(minidl::ELU<Scalar>(), -1) == doctest::Approx(std::exp(-1.0) - 1).epsilon(eps));  // e^x − 1
  CHECK(value(minidl::ELU<Scalar>(), 2) == 2);
  CHECK(value(minidl::GELU<Scalar>(), 1) == doctest::Approx(0.841344746068542949).epsilon(eps));  // Φ(1)
  CHECK(value(minidl::GELU<Scalar>(), -1) == doctest::Approx(-0.158655253931457051).epsilon(eps));
  CHECK(value(minidl::GELU<Scalar>(true), 1) ==
        doctest::Approx(0.5 * (1 + std::tanh(std::sqrt(2 / M_PI) * 1.044715))).epsilon(eps));
  CHECK(value(minidl::SiLU<Scalar>(), std::log(3.0)) == doctest::Approx(0.75 * std::log(3.0)).epsilon(eps));
  CHECK(value(minidl::Softplus<Scalar>(), 0) == doctest::Approx(std::log(2.0)).epsilon(eps));
  CHECK(value(minidl::ReLU6<Scalar>(), 7) == 6);
  CHECK(value(minidl::ReLU6<Scalar>(), -1) == 0);
}

TEST_CASE("new activation layers: backward matches finite differences in double") {
  const Shape shapes[] = {Shape{1}, Shape{7}, Shape{2, 3, 4}};
  std::uint64_t seed = 40;
  for (auto& entry : new_layers<double>()) {
    const minidl::Layer<double>& layer = *entry.first;
    for (const Shape& shape : shapes)
      for (Index rows : {1, 5}) {
        const std::string what = minidl::detail::message(layer.type(), " ", layer.config().fields().size(), " ",
                                                         shape.str(), " x ", rows);
        CAPTURE(what);
        auto built = layer.clone();
        built->build(shape);
        const auto result = minidl::check_gradients(*built, away_from_kinks(rows, shape.size(), ++seed));
        CHECK(result.input_error < 1e-8);
        CHECK(result.parameter_errors.empty());
      }
  }
}

TEST_CASE("new activations: hand-computed derivatives, including at the kinks") {
  // At a kink LeakyReLU and ELU take the slope of their negative side, ReLU6
  // 0 at 0 and at 6: TensorFlow's values.
  const auto derivative = [](minidl::Layer<double>&& layer, double x) {
    layer.build(Shape{1});
    const Matrix<double> in = Matrix<double>::Constant(1, 1, x);
    layer.forward(in, Phase::training);
    return layer.backward(in, Matrix<double>::Ones(1, 1))(0, 0);
  };
  CHECK(derivative(minidl::LeakyReLU<double>(), 0) == 0.3);
  CHECK(derivative(minidl::LeakyReLU<double>(), -2) == 0.3);
  CHECK(derivative(minidl::LeakyReLU<double>(), 2) == 1);
  CHECK(derivative(minidl::LeakyReLU<double>(0.0), -2) == 0);
  CHECK(derivative(minidl::ELU<double>(0.5), 0) == 0.5);
  CHECK(derivative(minidl::ELU<double>(), -1) == doctest::Approx(std::exp(-1.0)).epsilon(1e-14));
  CHECK(derivative(minidl::ReLU6<double>(), 0) == 0);
  CHECK(derivative(minidl::ReLU6<double>(), 6) == 0);
  CHECK(derivative(minidl::ReLU6<double>(), 3) == 1);
  CHECK(derivative(minidl::GELU<double>(), 0) == 0.5);
  CHECK(derivative(minidl::GELU<double>(true), 0) == 0.5);
  CHECK(derivative(minidl::SiLU<double>(), 0) == 0.5);
  CHECK(derivative(minidl::Softplus<double>(), 0) == doctest::Approx(0.5).epsilon(1e-15));
  // Φ(1) + φ(1) for the exact GELU.
  CHECK(derivative(minidl::GELU<double>(), 1) ==
        doctest::Approx(0.841344746068542949 + std::exp(-0.5) / std::sqrt(2 * M_PI)).epsilon(1e-14));
}

TEST_CASE_TEMPLATE("new activations: huge inputs give finite values and derivatives", Scalar, float, double) {
  const double big = sizeof(Scalar) == sizeof(float) ? 1e30 : 1e300;  // x² and x³ overflow
  Matrix<Scalar> x(1, 6);
  x << Scalar(-big), Scalar(-1000), Scalar(-60), Scalar(60), Scalar(1000), Scalar(big);
  for (auto& [layer, reference] : new_layers<Scalar>()) {
    (void)reference;
    const std::string type = layer->type();
    CAPTURE(type);
    layer->build(Shape{6});
    const Matrix<Scalar> y = layer->forward(x, Phase::training);
    const Matrix<Scalar> dx = layer->backward(x, Matrix<Scalar>::Ones(1, 6));
    CHECK(y.allFinite());
    CHECK(dx.allFinite());
    // Far right each is the identity with slope 1 (ReLU6: 6, slope 0).
    const bool relu6 = type == "ReLU6";
    CHECK(static_cast<double>(y(0, 5)) == (relu6 ? 6 : static_cast<double>(x(0, 5))));
    CHECK(static_cast<double>(dx(0, 5)) == (relu6 ? 0 : 1));
  }
}

TEST_CASE("fused activations of Dense and Conv2D: forward and backward against finite differences in double") {
  std::uint64_t seed = 70;
  for (const auto& entry : fused) {
    const Activation a = entry.first;
    for (bool use_bias : {true, false}) {
      const std::string name = minidl::to_string(a);
      CAPTURE(name);
      CAPTURE(use_bias);
      minidl::DenseOptions dense_options;
      dense_options.use_bias = use_bias;
      dense_options.seed = ++seed;
      minidl::Dense<double> dense(4, 3, a, dense_options);
      minidl::Conv2DOptions conv_options;
      conv_options.padding = minidl::Padding::same;
      conv_options.activation = a;
      conv_options.use_bias = use_bias;
      conv_options.seed = ++seed;
      minidl::Conv2D<double> conv(Shape{4, 4, 2}, 3, 3, conv_options);
      if (use_bias) {
        const Matrix<double> b = minidl::test::uniform<double>(3, 1, seed, -0.5, 0.5);
        dense.set_bias(b.col(0));
        conv.set_bias(b.col(0));
      }
      for (minidl::Layer<double>* layer : {static_cast<minidl::Layer<double>*>(&dense),
                                           static_cast<minidl::Layer<double>*>(&conv)}) {
        const std::string type = layer->type();
        CAPTURE(type);
        const Matrix<double> x = minidl::test::uniform<double>(3, layer->input_size(), ++seed, -2, 2);
        // The pre-activations, from the linear twin: for LeakyReLU and ReLU6,
        // away from the kinks at 0 and 6 (ELU with alpha 1 has none in f').
        const Matrix<double> z = pre_activation(*layer, x);
        if (a == Activation::leaky_relu || a == Activation::relu6) {
          REQUIRE(z.array().abs().minCoeff() > 1e-3);
          REQUIRE((z.array() - 6).abs().minCoeff() > 1e-3);
        }
        // The fused forward is the activation of the linear output, bit for bit, in both phases.
        Matrix<double> expected(z.rows(), z.cols());
        minidl::activate(a, z, expected, 3);
        CHECK((layer->forward(x, Phase::inference).array() == expected.array()).all());
        CHECK((layer->forward(x, Phase::training).array() == expected.array()).all());
        const auto result = minidl::check_gradients(*layer, x);
        CHECK(result.input_error < 1e-8);
        REQUIRE(result.parameter_errors.size() == (use_bias ? 2u : 1u));
        for (const auto& p : result.parameter_errors) CHECK(p.second < 1e-8);
      }
    }
  }
}

TEST_CASE("new activation layers: invalid parameters are a ValueError naming the layer, argument and value") {
  CHECK_THROWS_WITH_AS(minidl::LeakyReLU<float>(-0.1),
                       "LeakyReLU: negative_slope must be a finite number >= 0, got -0.1", minidl::ValueError);
  CHECK_THROWS_WITH_AS(minidl::ELU<double>(-1.0), "ELU: alpha must be a finite number >= 0, got -1",
                       minidl::ValueError);
  CHECK_THROWS_WITH_AS(minidl::ELU<double>(std::nan(""), Shape{2}),
                       "ELU: alpha must be a finite number >= 0, got nan", minidl::ValueError);
  minidl::LayerConfig negative;
  negative.set("negative_slope", -2.0);
  CHECK_THROWS_WITH_AS(minidl::LeakyReLU<double>::from_config(negative),
                       "LeakyReLU: negative_slope must be a finite number >= 0, got -2", minidl::ValueError);
  CHECK_THROWS_WITH_AS(minidl::ELU<double>::from_config({}), "field 'alpha' is missing", minidl::ValueError);
  minidl::LayerConfig not_bool;
  not_bool.set("approximate", 1);
  CHECK_THROWS_WITH_AS(minidl::GELU<double>::from_config(not_bool),
                       "field 'approximate' must be true or false, got 1", minidl::ValueError);
  // Slope 0 (ReLU) and slopes above 1 are valid, as in Keras.
  CHECK_NOTHROW(minidl::LeakyReLU<float>(0.0));
  CHECK_NOTHROW(minidl::LeakyReLU<float>(2.0));
}

TEST_CASE("new activation layers: types, parameters and configs") {
  CHECK(std::string(minidl::LeakyReLU<float>().type()) == "LeakyReLU");
  CHECK(std::string(minidl::ELU<float>().type()) == "ELU");
  CHECK(std::string(minidl::GELU<float>(true).type()) == "GELU");
  CHECK(std::string(minidl::SiLU<float>().type()) == "SiLU");
  CHECK(std::string(minidl::Softplus<float>().type()) == "Softplus");
  CHECK(std::string(minidl::ReLU6<float>().type()) == "ReLU6");
  // Layer defaults are Keras's layer defaults; the fused function's are keras.activations'.
  CHECK(minidl::LeakyReLU<float>().function().negative_slope == 0.3);
  CHECK(minidl::LeakyReLU<float>(Shape{2}).function().negative_slope == 0.3);
  CHECK(minidl::ActivationFunction<Activation::leaky_relu>().negative_slope == 0.2);
  CHECK(minidl::ELU<float>().function().alpha == 1.0);
  CHECK_FALSE(minidl::GELU<float>().function().approximate);
  CHECK(minidl::LeakyReLU<float>(0.1).config().at("negative_slope") == minidl::LayerConfig::Value(0.1));
  CHECK(minidl::ELU<double>(0.5).config().at("alpha") == minidl::LayerConfig::Value(0.5));
  CHECK(minidl::GELU<double>(true).config().at("approximate") == minidl::LayerConfig::Value(true));
  CHECK(minidl::SiLU<double>().config().empty());
  for (auto& entry : new_layers<double>()) {
    const minidl::Layer<double>& layer = *entry.first;
    CHECK(layer.parameter_count() == 0);
    CHECK(minidl::LayerRegistry<double>::instance().create(layer.type(), layer.config())->config() == layer.config());
  }
  // Only GELU and SiLU need the input for their derivative.
  for (Activation a : minidl::all_activations)
    CHECK(minidl::backward_reads_input(a) ==
          (a == Activation::gelu || a == Activation::gelu_approximate || a == Activation::silu));
  Matrix<double> y = Matrix<double>::Ones(1, 2), dz(1, 2);
  CHECK_THROWS_WITH_AS(minidl::activation_backward(Activation::silu, y, y, dz),
                       "activation_backward: the derivative of silu needs its input z, not only its output y",
                       minidl::ValueError);
}
