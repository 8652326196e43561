// Flatten (layers/flatten.hpp): the output is Keras' channels-last flattening
// of an image, the gradient passes through unchanged, shapes now or at build.
#include <doctest/doctest.h>

#include <minidl/gradient_check.hpp>
#include <minidl/layers/dense.hpp>
#include <minidl/layers/flatten.hpp>
#include <minidl/sequential.hpp>
#include <string>

#include "support.hpp"

using minidl::Flatten;
using minidl::Index;
using minidl::Matrix;
using minidl::Phase;
using minidl::Shape;

TEST_CASE_TEMPLATE("Flatten: (H, W, C) -> (H·W·C) in Keras' channels-last order", Scalar, float, double) {
  Flatten<Scalar> flatten(Shape{2, 3, 2});
  CHECK(std::string(flatten.type()) == "Flatten");
  CHECK(flatten.output_shape() == Shape{12});
  // Pixel (h, w), channel c holds 100·h + 10·w + c; Keras' Flatten of an
  // (H, W, C) tensor puts it at (h·W + w)·C + c.
  Matrix<Scalar> x(2, 12);
  for (Index n = 0; n < 2; ++n)
    for (Index h = 0; h < 2; ++h)
      for (Index w = 0; w < 3; ++w)
        for (Index c = 0; c < 2; ++c) x(n, (h * 3 + w) * 2 + c) = Scalar(1000 * n + 100 * h + 10 * w + c);
  for (Phase phase : {Phase::training, Phase::inference}) {
    const Matrix<Scalar>& y = flatten.forward(x, phase);
    CHECK(y(0, 0) == 0);
    CHECK(y(0, 1) == 1);    // (0, 0), channel 1
    CHECK(y(0, 2) == 10);   // (0, 1), channel 0
    CHECK(y(0, 6) == 100);  // (1, 0), channel 0
    CHECK(y(1, 11) == 1121);
    CHECK(y == x);
  }
  const Matrix<Scalar> dy = minidl::test::uniform<Scalar>(2, 12, 3);
  flatten.forward(x, Phase::training);
  CHECK(flatten.backward(x, dy) == dy);  // dx = dy
}

TEST_CASE("Flatten: any rank, built now or by Sequential, gradient check") {
  Flatten<double> dense_input(Shape{5});
  CHECK(dense_input.output_shape() == Shape{5});  // rank 1: the identity, as Keras

  Flatten<double> later;
  CHECK_FALSE(later.built());
  later.build(Shape{4, 3, 2});
  CHECK(later.output_shape() == Shape{24});
  CHECK(minidl::check_gradients(later, minidl::test::uniform(3, 24, 9)).input_error < 1e-8);

  minidl::Sequential<double> model(1);
  model.add(minidl::Dense<double>(6, 6));
  model.add(Flatten<double>());
  CHECK(model.output_shape() == Shape{6});
  later.set_name("flatten");
  CHECK_THROWS_AS(later.build(Shape{24}), minidl::ShapeError);  // already built for (4, 3, 2)
}
