// MaxPooling2D, AveragePooling2D and GlobalAveragePooling2D
// (layers/pooling.hpp): hand-computed forward and backward (ties, overlapping
// windows, 'same' padding that never counts), finite-difference gradients,
// the PyTorch fixture, constructors and bad input.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <minidl/gradient_check.hpp>
#include <minidl/layers/pooling.hpp>
#include <string>

#include "conv_fixture.hpp"
#include "support.hpp"

using minidl::AveragePooling2D;
using minidl::GlobalAveragePooling2D;
using minidl::Index;
using minidl::Matrix;
using minidl::MaxPooling2D;
using minidl::Padding;
using minidl::Phase;
using minidl::Shape;
using minidl::test::matrix;

TEST_CASE_TEMPLATE("MaxPooling2D forward by hand: per channel, strides, 'same' ignores the padding", Scalar, float,
                   double) {
  for (Phase phase : {Phase::training, Phase::inference}) {
    const std::string phase_name = minidl::to_string(phase);
    CAPTURE(phase_name);
    SUBCASE("2x2 pool over a 2x4 image with two channels: each channel separately") {
      MaxPooling2D<Scalar> pool(Shape{2, 4, 2});
      CHECK(pool.output_shape() == Shape{1, 2, 2});
      // channel 0:  1 5 2 0    channel 1:  -1 -5 -2 -9
      //             3 4 8 6                -3 -4 -8 -6
      const Matrix<Scalar> x = matrix<Scalar>(1, 16, {1, -1, 5, -5, 2, -2, 0, -9, 3, -3, 4, -4, 8, -8, 6, -6});
      CHECK(pool.forward(x, phase) == matrix<Scalar>(1, 4, {5, -1, 8, -2}));
    }
    SUBCASE("2x2 pool, stride 2, 'same' over 3x3 negative values: the padding is not a zero") {
      MaxPooling2D<Scalar> pool(Shape{3, 3, 1}, {2, 2}, std::nullopt, Padding::same);
      CHECK(pool.output_shape() == Shape{2, 2, 1});
      // windows {−1, −2, −4, −5}, {−3, −6}, {−7, −8}, {−9}
      CHECK(pool.forward(matrix<Scalar>(1, 9, {-1, -2, -3, -4, -5, -6, -7, -8, -9}), phase) ==
            matrix<Scalar>(1, 4, {-1, -3, -7, -9}));
    }
    SUBCASE("a NaN in a window makes its maximum NaN, first or not (as PyTorch)") {
      MaxPooling2D<Scalar> pool(Shape{2, 2, 1});
      const Scalar nan = std::numeric_limits<Scalar>::quiet_NaN();
      for (Index at = 0; at < 4; ++at) {
        Matrix<Scalar> x = matrix<Scalar>(1, 4, {1, 5, 2, 3});
        x(0, at) = nan;
        CHECK(std::isnan(pool.forward(x, phase)(0, 0)));
      }
    }
  }
}

TEST_CASE("MaxPooling2D backward: the gradient goes to the first maximum, overlapping windows add up") {
  SUBCASE("ties: the first maximum in row-major window order") {
    MaxPooling2D<double> pool(Shape{2, 4, 1});
    // windows: {1, 1, 1, 1} -> first; {0, 3, 3, 1} -> (0, 3), not (1, 2)
    const Matrix<double> x = matrix<double>(1, 8, {1, 1, 0, 3, 1, 1, 3, 1});
    pool.forward(x, Phase::training);
    CHECK(pool.backward(x, matrix<double>(1, 2, {2, 5})) == matrix<double>(1, 8, {2, 0, 0, 5, 0, 0, 0, 0}));
  }
  SUBCASE("pool 1x2, stride 1: one maximum shared by two windows gets both gradients") {
    MaxPooling2D<double> pool(Shape{1, 3, 1}, {1, 2}, {{1, 1}});
    const Matrix<double> x = matrix<double>(1, 3, {1, 5, 2});
    CHECK(pool.forward(x, Phase::training) == matrix<double>(1, 2, {5, 5}));
    CHECK(pool.backward(x, matrix<double>(1, 2, {1, 2})) == matrix<double>(1, 3, {0, 3, 0}));
  }
  SUBCASE("backward follows the last training forward; an inference forward in between is rejected") {
    MaxPooling2D<double> pool(Shape{2, 2, 1});
    const Matrix<double> x = matrix<double>(1, 4, {0, 0, 4, 0});
    pool.forward(x, Phase::training);
    pool.forward(matrix<double>(1, 4, {9, 0, 0, 0}), Phase::inference);
    CHECK_THROWS_AS(pool.backward(x, matrix<double>(1, 1, {1})), minidl::StateError);  // needs a training forward
    pool.forward(x, Phase::training);
    CHECK(pool.backward(x, matrix<double>(1, 1, {7})) == matrix<double>(1, 4, {0, 0, 7, 0}));
  }
}

TEST_CASE_TEMPLATE("AveragePooling2D by hand: 'same' divides by the input pixels in the window (Keras)", Scalar, float,
                   double) {
  const Matrix<Scalar> x = matrix<Scalar>(1, 9, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  SUBCASE("2x2, stride 2, same over 3x3") {
    AveragePooling2D<Scalar> pool(Shape{3, 3, 1}, {2, 2}, std::nullopt, Padding::same);
    // windows {1, 2, 4, 5} / 4, {3, 6} / 2, {7, 8} / 2, {9} / 1
    for (Phase phase : {Phase::inference, Phase::training})
      CHECK(pool.forward(x, phase) == matrix<Scalar>(1, 4, {3, 4.5, 7.5, 9}));
    // dx = dy / count of the one window that covers each pixel
    CHECK(pool.backward(x, matrix<Scalar>(1, 4, {1, 1, 1, 1})) ==
          matrix<Scalar>(1, 9, {0.25, 0.25, 0.5, 0.25, 0.25, 0.5, 0.5, 0.5, 1}));
  }
  SUBCASE("2x2, stride 1, valid: overlapping windows add up") {
    AveragePooling2D<Scalar> pool(Shape{3, 3, 1}, {2, 2}, {{1, 1}});
    CHECK(pool.forward(x, Phase::training) == matrix<Scalar>(1, 4, {3, 4, 6, 7}));
    CHECK(pool.backward(x, matrix<Scalar>(1, 4, {4, 4, 4, 4})) == matrix<Scalar>(1, 9, {1, 2, 1, 2, 4, 2, 1, 2, 1}));
  }
}

TEST_CASE_TEMPLATE("GlobalAveragePooling2D by hand: the mean of each channel", Scalar, float, double) {
  GlobalAveragePooling2D<Scalar> pool(Shape{2, 2, 2});
  CHECK(pool.output_shape() == Shape{2});
  // channel 0: 1, 3, 5, 7 -> 4; channel 1: 2, 4, 6, 12 -> 6; second sample: −x
  const Matrix<Scalar> x = matrix<Scalar>(2, 8, {1, 2, 3, 4, 5, 6, 7, 12, -1, -2, -3, -4, -5, -6, -7, -12});
  for (Phase phase : {Phase::training, Phase::inference})
    CHECK(pool.forward(x, phase) == matrix<Scalar>(2, 2, {4, 6, -4, -6}));
  pool.forward(x, Phase::training);
  // dx = dy / (H·W), the same for every pixel
  CHECK(pool.backward(x, matrix<Scalar>(2, 2, {4, 8, -2, 0})) ==
        matrix<Scalar>(2, 8, {1, 2, 1, 2, 1, 2, 1, 2, -0.5, 0, -0.5, 0, -0.5, 0, -0.5, 0}));
}

TEST_CASE("pooling backward matches finite differences: pool sizes, strides, paddings, odd and even sizes") {
  struct Case {
    Index n, h, w, c, ph, pw, sh, sw;
    Padding padding;
  };
  const Case cases[] = {
      {2, 4, 4, 2, 2, 2, 2, 2, Padding::valid}, {2, 5, 5, 1, 2, 2, 2, 2, Padding::valid},
      {2, 5, 5, 2, 2, 2, 2, 2, Padding::same},  {1, 6, 5, 3, 3, 3, 2, 2, Padding::same},
      {2, 7, 7, 1, 3, 3, 2, 2, Padding::valid}, {2, 4, 7, 2, 2, 3, 1, 2, Padding::valid},
      {1, 4, 4, 2, 3, 3, 1, 1, Padding::same},  {2, 3, 3, 1, 4, 4, 3, 3, Padding::same},
      {1, 1, 1, 3, 1, 1, 1, 1, Padding::valid},
  };
  std::uint64_t seed = 500;
  for (const Case& k : cases) {
    CAPTURE(k.h);
    CAPTURE(k.w);
    CAPTURE(k.ph);
    CAPTURE(k.sh);
    const Shape shape{k.h, k.w, k.c};
    const Matrix<double> x = minidl::test::uniform(k.n, shape.size(), ++seed, -2, 2);
    for (bool frozen : {false, true}) {  // no weights: frozen changes nothing
      MaxPooling2D<double> max_pool(shape, {k.ph, k.pw}, {{k.sh, k.sw}}, k.padding);
      AveragePooling2D<double> avg_pool(shape, {k.ph, k.pw}, {{k.sh, k.sw}}, k.padding);
      max_pool.set_frozen(frozen);
      avg_pool.set_frozen(frozen);
      const auto max_result = minidl::check_gradients(max_pool, x);
      const auto avg_result = minidl::check_gradients(avg_pool, x);
      CHECK(max_result.input_error < 1e-8);
      CHECK(avg_result.input_error < 1e-8);
      CHECK(max_result.parameter_errors.empty());
      CHECK(avg_result.parameter_errors.empty());
    }
  }
  for (const Shape& shape : {Shape{3, 4, 2}, Shape{1, 1, 3}, Shape{5, 2, 1}}) {
    GlobalAveragePooling2D<double> pool(shape);
    CHECK(minidl::check_gradients(pool, minidl::test::uniform(3, shape.size(), ++seed)).input_error < 1e-8);
  }
}

TEST_CASE_TEMPLATE("pooling matches PyTorch (max_pool2d, Keras' average, adaptive_avg_pool2d)", Scalar, float, double) {
  const double tol = minidl::test::conv_tolerance<Scalar>();
  auto check = [&](minidl::Layer<Scalar>& layer, const minidl::test::ConvCase& c) {
    const Matrix<Scalar> x = c.at("x").template cast<Scalar>();
    CHECK(minidl::test::max_error(layer.forward(x, Phase::inference), c.at("y")) <= tol);
    CHECK(minidl::test::max_error(layer.forward(x, Phase::training), c.at("y")) <= tol);
    CHECK(minidl::test::max_error(layer.backward(x, c.at("dy").template cast<Scalar>()), c.at("dx")) <= tol);
  };
  for (const std::string layer : {"MaxPooling2D", "AveragePooling2D"}) {
    const auto cases = minidl::test::read_conv_fixture(layer);
    REQUIRE(cases.size() == 6);
    for (const auto& c : cases) {
      CAPTURE(layer);
      CAPTURE(c.name);
      if (layer == "MaxPooling2D") {
        MaxPooling2D<Scalar> pool(c.input_shape(), c.pair("pool_size"), c.pair("strides"), c.padding());
        check(pool, c);
      } else {
        AveragePooling2D<Scalar> pool(c.input_shape(), c.pair("pool_size"), c.pair("strides"), c.padding());
        check(pool, c);
      }
    }
  }
  const auto cases = minidl::test::read_conv_fixture("GlobalAveragePooling2D");
  REQUIRE(cases.size() == 2);
  for (const auto& c : cases) {
    CAPTURE(c.name);
    GlobalAveragePooling2D<Scalar> pool(c.input_shape());
    check(pool, c);
  }
}

TEST_CASE("pooling constructors: Keras defaults, shapes now or at build") {
  MaxPooling2D<float> defaults;
  CHECK(defaults.pool_size() == std::array<Index, 2>{2, 2});
  CHECK(defaults.strides() == std::array<Index, 2>{2, 2});  // strides default to the pool size
  CHECK(defaults.padding() == Padding::valid);
  CHECK_FALSE(defaults.built());
  defaults.build(Shape{28, 28, 32});
  CHECK(defaults.output_shape() == Shape{14, 14, 32});

  MaxPooling2D<float> three({3, 3});  // a braced pair alone is the pool size
  CHECK(three.pool_size() == std::array<Index, 2>{3, 3});
  CHECK(three.strides() == std::array<Index, 2>{3, 3});
  CHECK_FALSE(three.built());

  AveragePooling2D<float> now({7, 7, 4}, {3, 3}, {{2, 2}}, Padding::same);  // a braced triple is the input shape
  CHECK(now.output_shape() == Shape{4, 4, 4});
  CHECK(std::string(now.type()) == "AveragePooling2D");
  CHECK(std::string(MaxPooling2D<float>().type()) == "MaxPooling2D");

  GlobalAveragePooling2D<float> global;
  global.build(Shape{7, 7, 64});
  CHECK(global.output_shape() == Shape{64});
  CHECK(std::string(global.type()) == "GlobalAveragePooling2D");
}

TEST_CASE("pooling bad input: clear errors, nothing changed") {
  CHECK_THROWS_WITH_AS(MaxPooling2D<float>({0, 2}), "MaxPooling2D: pool_size must be positive, got 0x2",
                       minidl::ValueError);
  CHECK_THROWS_WITH_AS(AveragePooling2D<float>({2, 2}, {{2, -1}}),
                       "AveragePooling2D: strides must be positive, got 2x-1", minidl::ValueError);
  CHECK_THROWS_WITH_AS(MaxPooling2D<float>(Shape{10}),
                       "MaxPooling2D: expects an image input shape (None, height, width, channels), got (None, 10)",
                       minidl::ShapeError);
  CHECK_THROWS_WITH_AS(GlobalAveragePooling2D<float>(Shape{4, 4}),
                       "GlobalAveragePooling2D: expects an image input shape (None, height, width, channels), got "
                       "(None, 4, 4)",
                       minidl::ShapeError);

  MaxPooling2D<float> pool({3, 3});
  pool.set_name("max_pooling2d");
  CHECK_THROWS_WITH_AS(pool.build(Shape{2, 2, 1}),
                       "MaxPooling2D 'max_pooling2d': pool 3x3 does not fit the 2x2 input with valid padding",
                       minidl::ShapeError);
  CHECK_FALSE(pool.built());
  pool.build(Shape{3, 3, 1});
  CHECK(pool.output_shape() == Shape{1, 1, 1});
  CHECK(MaxPooling2D<float>(Shape{2, 2, 1}, {3, 3}, std::nullopt, Padding::same).output_shape() == Shape{1, 1, 1});

  GlobalAveragePooling2D<float> global;
  global.set_name("gap");
  CHECK_THROWS_WITH_AS(global.build(Shape{16}),
                       "GlobalAveragePooling2D 'gap': expects an image input shape (None, height, width, channels), "
                       "got (None, 16)",
                       minidl::ShapeError);
  CHECK_FALSE(global.built());
}
