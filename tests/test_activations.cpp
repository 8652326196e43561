// Activation functions (activation.hpp) and the activation layers
// (layers/activation_layer.hpp): hand-computed forward values in both phases,
// backward against finite differences, softmax normalization and stability.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <type_traits>
#include <minidl/activation.hpp>
#include <minidl/gradient_check.hpp>
#include <minidl/layers/activation_layer.hpp>

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
  for (Activation a : {Activation::linear, Activation::relu, Activation::sigmoid, Activation::tanh,
                       Activation::softmax})
    CHECK(minidl::activation_from_string(minidl::to_string(a)) == a);
  CHECK(std::string(minidl::to_string(Activation::relu)) == "relu");
  CHECK_THROWS_WITH_AS(minidl::activation_from_string("gelu"),
                       "unknown activation 'gelu', expected one of linear, relu, sigmoid, tanh, softmax",
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
