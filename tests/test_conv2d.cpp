// Conv2D (layers/conv2d.hpp): hand-computed forward and backward, the Keras
// kernel layout, finite-difference gradients over shapes, strides, paddings,
// bias and activations, frozen behaviour, initialization, the PyTorch
// fixture, bad input, and a small conv net trained by Sequential.
#include <doctest/doctest.h>

#include <cmath>
#include <minidl/gradient_check.hpp>
#include <minidl/layers/activation_layer.hpp>
#include <minidl/layers/batch_norm.hpp>
#include <minidl/layers/conv2d.hpp>
#include <minidl/layers/dense.hpp>
#include <minidl/layers/flatten.hpp>
#include <minidl/layers/pooling.hpp>
#include <minidl/losses.hpp>
#include <minidl/optimizers/adam.hpp>
#include <minidl/sequential.hpp>
#include <sstream>
#include <string>

#include "conv_fixture.hpp"
#include "support.hpp"

using minidl::Activation;
using minidl::Conv2D;
using minidl::Conv2DOptions;
using minidl::Index;
using minidl::Initializer;
using minidl::Matrix;
using minidl::Padding;
using minidl::Phase;
using minidl::Shape;
using minidl::Vector;
using minidl::test::matrix;

namespace {

Conv2DOptions options(Padding padding = Padding::valid, std::array<Index, 2> strides = {1, 1},
                      Activation activation = Activation::linear, bool use_bias = true, std::uint64_t seed = 1) {
  Conv2DOptions o;
  o.padding = padding;
  o.strides = strides;
  o.activation = activation;
  o.use_bias = use_bias;
  o.seed = seed;
  return o;
}

// The 3x3 one-channel image of the hand-computed cases:
//   1 2 3
//   4 5 6
//   7 8 9
template <class Scalar>
Matrix<Scalar> image_1_to_9() {
  return matrix<Scalar>(1, 9, {1, 2, 3, 4, 5, 6, 7, 8, 9});
}

// A 2x2 kernel of ones over the 3x3 image, one filter.
template <class Scalar>
Conv2D<Scalar> ones_2x2(Conv2DOptions o) {
  Conv2D<Scalar> conv(Shape{3, 3, 1}, 1, 2, o);
  conv.set_kernel(Matrix<Scalar>::Ones(4, 1));
  return conv;
}

}  // namespace

TEST_CASE_TEMPLATE("Conv2D forward: a 2x2 kernel of ones over a 3x3 image, by hand", Scalar, float, double) {
  const Matrix<Scalar> x = image_1_to_9<Scalar>();
  for (Phase phase : {Phase::training, Phase::inference}) {
    const std::string phase_name = minidl::to_string(phase);
    CAPTURE(phase_name);
    SUBCASE("valid, stride 1: the four window sums") {
      auto conv = ones_2x2<Scalar>(options());
      CHECK(conv.output_shape() == Shape{2, 2, 1});
      CHECK(conv.forward(x, phase) == matrix<Scalar>(1, 4, {12, 16, 24, 28}));
    }
    SUBCASE("valid, stride 1, bias 0.5 and relu after it") {
      auto conv = ones_2x2<Scalar>(options(Padding::valid, {1, 1}, Activation::relu));
      conv.set_bias(Vector<Scalar>::Constant(1, Scalar(-13.5)));  // 12 − 13.5 < 0: cut by relu
      CHECK(conv.forward(x, phase) == matrix<Scalar>(1, 4, {0, 2.5, 10.5, 14.5}));
    }
    SUBCASE("same, stride 1: one padding row and column, at the bottom and right (TensorFlow)") {
      auto conv = ones_2x2<Scalar>(options(Padding::same));
      CHECK(conv.output_shape() == Shape{3, 3, 1});
      CHECK(conv.forward(x, phase) == matrix<Scalar>(1, 9, {12, 16, 9, 24, 28, 15, 15, 17, 9}));
    }
    SUBCASE("same, stride 2: ceil(3/2) = 2 outputs per axis") {
      auto conv = ones_2x2<Scalar>(options(Padding::same, {2, 2}));
      CHECK(conv.output_shape() == Shape{2, 2, 1});
      CHECK(conv.forward(x, phase) == matrix<Scalar>(1, 4, {12, 9, 15, 9}));
    }
    SUBCASE("valid, stride 2: floor((3 − 2)/2) + 1 = 1 output per axis") {
      auto conv = ones_2x2<Scalar>(options(Padding::valid, {2, 2}));
      CHECK(conv.output_shape() == Shape{1, 1, 1});
      CHECK(conv.forward(x, phase) == matrix<Scalar>(1, 1, {12}));
    }
  }
}

TEST_CASE_TEMPLATE("Conv2D: a 1x1 kernel is a per-pixel product with the kernel", Scalar, float, double) {
  Conv2D<Scalar> conv(Shape{1, 2, 2}, 3, 1, options());
  conv.set_kernel(matrix<Scalar>(2, 3, {1, 0, -1, 2, 1, 0}));  // 2 channels x 3 filters
  conv.set_bias((Vector<Scalar>(3) << 0, 0, Scalar(0.5)).finished());
  // pixel (1, 2) -> (1 + 4, 2, −1 + 0.5); pixel (3, 4) -> (3 + 8, 4, −3 + 0.5)
  CHECK(conv.forward(matrix<Scalar>(1, 4, {1, 2, 3, 4}), Phase::inference) ==
        matrix<Scalar>(1, 6, {5, 2, -0.5, 11, 4, -2.5}));
}

TEST_CASE("Conv2D kernel rows follow Keras' (kh, kw, C, F) order, the order of the pixels' values") {
  // One 2x2 window over a 2x2x2 image: y = Σ x_k K_k. With x and K both
  // 1..8, only the matching order reaches Σ k² = 204 (rearrangement inequality).
  Conv2D<double> conv(Shape{2, 2, 2}, 1, 2, options(Padding::valid, {1, 1}, Activation::linear, false));
  conv.set_kernel(Matrix<double>(Vector<double>::LinSpaced(8, 1, 8)));
  CHECK(conv.forward(matrix<double>(1, 8, {1, 2, 3, 4, 5, 6, 7, 8}), Phase::inference)(0, 0) == 204);
}

TEST_CASE("Conv2D backward by hand: 2x2 kernel of ones, valid and same with stride 2") {
  const Matrix<double> x = image_1_to_9<double>();
  SUBCASE("valid, stride 1, dy = 1") {
    auto conv = ones_2x2<double>(options());
    conv.forward(x, Phase::training);
    const Matrix<double> dx = conv.backward(x, matrix<double>(1, 4, {1, 1, 1, 1}));
    // dx = how many windows see each pixel; dK(i, j) = Σ_windows x[oh + i, ow + j]; db = Σ dy
    CHECK(dx == matrix<double>(1, 9, {1, 2, 1, 2, 4, 2, 1, 2, 1}));
    CHECK(conv.kernel_gradient() == matrix<double>(4, 1, {12, 16, 24, 28}));
    CHECK(conv.bias_gradient() == (Vector<double>(1) << 4).finished());
  }
  SUBCASE("same, stride 2, dy = (1, 2, 3, 4): padding takes no gradient") {
    auto conv = ones_2x2<double>(options(Padding::same, {2, 2}));
    conv.forward(x, Phase::training);
    const Matrix<double> dx = conv.backward(x, matrix<double>(1, 4, {1, 2, 3, 4}));
    // Windows: rows {0,1} x cols {0,1} -> 1, rows {0,1} x col 2 -> 2, row 2 x cols {0,1} -> 3, (2, 2) -> 4.
    CHECK(dx == matrix<double>(1, 9, {1, 1, 2, 1, 1, 2, 3, 3, 4}));
    // dK(0,0) = 1·1 + 2·3 + 3·7 + 4·9; dK(0,1) = 1·2 + 3·8; dK(1,0) = 1·4 + 2·6; dK(1,1) = 1·5
    CHECK(conv.kernel_gradient() == matrix<double>(4, 1, {64, 26, 16, 5}));
    CHECK(conv.bias_gradient() == (Vector<double>(1) << 10).finished());
  }
}

TEST_CASE("Conv2D backward matches finite differences: shapes, strides, paddings, bias, activations") {
  struct Case {
    Index n, h, w, c, filters, kh, kw, sh, sw;
    Padding padding;
    Activation activation;
    bool use_bias;
  };
  const Case cases[] = {
      {2, 5, 5, 2, 3, 3, 3, 1, 1, Padding::valid, Activation::linear, true},
      {2, 5, 6, 2, 3, 3, 3, 1, 1, Padding::same, Activation::tanh, true},
      {1, 6, 7, 3, 2, 3, 4, 2, 2, Padding::same, Activation::sigmoid, false},
      {3, 4, 4, 1, 2, 2, 2, 2, 2, Padding::valid, Activation::linear, false},
      {2, 5, 5, 2, 2, 2, 2, 2, 2, Padding::valid, Activation::linear, true},
      {2, 4, 5, 2, 3, 2, 2, 1, 1, Padding::same, Activation::softmax, true},
      {2, 7, 5, 2, 3, 3, 1, 2, 1, Padding::same, Activation::relu, true},
      {2, 1, 1, 3, 2, 1, 1, 1, 1, Padding::valid, Activation::tanh, true},
      {1, 2, 3, 1, 2, 3, 3, 2, 3, Padding::same, Activation::linear, true},
  };
  std::uint64_t seed = 300;
  for (const Case& k : cases) {
    for (bool frozen : {false, true}) {
      CAPTURE(k.h);
      CAPTURE(k.w);
      CAPTURE(k.kh);
      CAPTURE(k.sh);
      CAPTURE(frozen);
      Conv2D<double> conv(Shape{k.h, k.w, k.c}, k.filters, {k.kh, k.kw},
                          options(k.padding, {k.sh, k.sw}, k.activation, k.use_bias, ++seed));
      minidl::Rng rng(seed);
      Vector<double> bias(conv.bias().size());
      for (Index i = 0; i < bias.size(); ++i) bias[i] = rng.uniform(-0.5, 0.5);
      conv.set_bias(bias);
      conv.set_frozen(frozen);
      const Matrix<double> x = minidl::test::uniform(k.n, conv.input_size(), seed, -2, 2);
      if (k.activation == Activation::relu) {  // keep every pre-activation away from the kink
        Conv2D<double> linear(Shape{k.h, k.w, k.c}, k.filters, {k.kh, k.kw},
                              options(k.padding, {k.sh, k.sw}, Activation::linear, k.use_bias));
        linear.set_kernel(conv.kernel());
        linear.set_bias(conv.bias());
        REQUIRE(linear.forward(x, Phase::inference).cwiseAbs().minCoeff() > 1e-3);
      }
      const auto result = minidl::check_gradients(conv, x);
      CHECK(result.input_error < 1e-8);
      REQUIRE(result.parameter_errors.size() == (k.use_bias ? 2u : 1u));
      CHECK(result.parameter_errors[0].first == "kernel");
      for (const auto& p : result.parameter_errors) CHECK(p.second < 1e-8);
    }
  }
}

TEST_CASE("a frozen Conv2D computes no parameter gradients, still passes the input gradient") {
  auto conv = ones_2x2<double>(options());
  conv.set_frozen(true);
  const Matrix<double> x = image_1_to_9<double>();
  conv.forward(x, Phase::training);
  CHECK(conv.backward(x, matrix<double>(1, 4, {1, 1, 1, 1})) == matrix<double>(1, 9, {1, 2, 1, 2, 4, 2, 1, 2, 1}));
  CHECK(conv.kernel_gradient().isZero(0));
  CHECK(conv.bias_gradient().isZero(0));
}

TEST_CASE_TEMPLATE("Conv2D matches PyTorch's conv2d (TensorFlow 'same' padding via F.pad)", Scalar, float, double) {
  const auto cases = minidl::test::read_conv_fixture("Conv2D");
  REQUIRE(cases.size() == 7);
  const double tol = minidl::test::conv_tolerance<Scalar>();
  for (const auto& c : cases) {
    CAPTURE(c.name);
    const bool use_bias = c.option("use_bias") == "true";
    Conv2DOptions o =
        options(c.padding(), c.pair("strides"), minidl::activation_from_string(c.option("activation")), use_bias);
    Conv2D<Scalar> conv(c.input_shape(), static_cast<Index>(c.at("filters")(0, 0)), c.pair("kernel_size"), o);
    REQUIRE(conv.kernel().rows() == c.at("kernel").rows());
    REQUIRE(conv.kernel().cols() == c.at("kernel").cols());
    conv.set_kernel(c.at("kernel").template cast<Scalar>());
    if (use_bias) conv.set_bias(c.at("bias").row(0).transpose().template cast<Scalar>());
    const Matrix<Scalar> x = c.at("x").template cast<Scalar>();
    CHECK(minidl::test::max_error(conv.forward(x, Phase::inference), c.at("y")) <= tol);
    CHECK(minidl::test::max_error(conv.forward(x, Phase::training), c.at("y")) <= tol);
    CHECK(minidl::test::max_error(conv.backward(x, c.at("dy").template cast<Scalar>()), c.at("dx")) <= tol);
    CHECK(minidl::test::max_error(conv.kernel_gradient(), c.at("dkernel")) <= tol);
    if (use_bias) CHECK(minidl::test::max_error(conv.bias_gradient(), c.at("dbias")) <= tol);
  }
}

TEST_CASE("Conv2D initialization: Keras' convolution fans, seeded and unseeded") {
  SUBCASE("glorot_uniform limit sqrt(6 / (kh·kw·C + kh·kw·F))") {
    Conv2D<double> conv(Shape{8, 8, 4}, 16, 3, options());
    const double limit = std::sqrt(6.0 / (3 * 3 * 4 + 3 * 3 * 16));  // 0.1826
    CHECK(conv.kernel().rows() == 36);
    CHECK(conv.kernel().cols() == 16);
    CHECK(conv.kernel().cwiseAbs().maxCoeff() <= limit);
    CHECK(conv.kernel().cwiseAbs().maxCoeff() > 0.95 * limit);  // 576 draws reach close to it
    CHECK(conv.bias().isZero(0));
  }
  SUBCASE("he_uniform limit sqrt(6 / (kh·kw·C))") {
    Conv2DOptions o = options();
    o.kernel_initializer = Initializer::he_uniform;
    Conv2D<double> conv(Shape{8, 8, 4}, 16, 3, o);
    const double limit = std::sqrt(6.0 / 36);
    CHECK(conv.kernel().cwiseAbs().maxCoeff() <= limit);
    CHECK(conv.kernel().cwiseAbs().maxCoeff() > 0.95 * limit);
  }
  SUBCASE("the same seed gives the same kernel, with or without a shape at construction") {
    Conv2D<float> now(Shape{5, 5, 2}, 3, 3, options(Padding::same, {1, 1}, Activation::linear, true, 9));
    Conv2D<float> later(3, 3, options(Padding::same, {1, 1}, Activation::linear, true, 9));
    CHECK_FALSE(later.initialized());
    later.build(Shape{5, 5, 2});
    CHECK(later.initialized());
    CHECK(now.kernel() == later.kernel());
    Conv2D<float> other(Shape{5, 5, 2}, 3, 3, options(Padding::same, {1, 1}, Activation::linear, true, 10));
    CHECK(now.kernel() != other.kernel());
    minidl::Rng rng(1), untouched(1);
    now.initialize(rng);  // a seeded layer redraws its own kernel and leaves rng alone
    CHECK(now.kernel() == later.kernel());
    CHECK(rng == untouched);
  }
  SUBCASE("without a seed: not initialized until initialize(rng), which needs the shape") {
    Conv2DOptions o;
    Conv2D<float> conv(4, 3, o);
    CHECK_FALSE(conv.initialized());
    minidl::Rng rng(5);
    CHECK_THROWS_AS(conv.initialize(rng), minidl::StateError);
    conv.build(Shape{6, 6, 1});
    CHECK_FALSE(conv.initialized());
    CHECK_THROWS_AS(conv.forward(Matrix<float>::Zero(1, 36), Phase::inference), minidl::StateError);
    conv.initialize(rng);
    CHECK(conv.initialized());
    CHECK(conv.kernel().cwiseAbs().maxCoeff() > 0);
  }
}

TEST_CASE("Conv2D accessors and parameters") {
  Conv2D<float> conv(Shape{9, 8, 3}, 5, {3, 2}, options(Padding::same, {2, 1}, Activation::relu, false));
  CHECK(std::string(conv.type()) == "Conv2D");
  CHECK(conv.filters() == 5);
  CHECK(conv.kernel_size() == std::array<Index, 2>{3, 2});
  CHECK(conv.strides() == std::array<Index, 2>{2, 1});
  CHECK(conv.padding() == Padding::same);
  CHECK(conv.activation() == Activation::relu);
  CHECK(conv.output_shape() == Shape{5, 8, 5});  // ceil(9/2), ceil(8/1)
  const auto params = conv.parameters();
  REQUIRE(params.size() == 1);  // no bias
  CHECK(params[0].name == "kernel");
  CHECK(params[0].size == 3 * 2 * 3 * 5);
  // A braced input shape and a braced or single kernel size both read naturally.
  CHECK(Conv2D<float>({28, 28, 1}, 32, 3).output_shape() == Shape{26, 26, 32});
  CHECK(Conv2D<float>({28, 28, 1}, 32, {5, 3}).output_shape() == Shape{24, 26, 32});
  CHECK(Conv2D<float>(8, {1, 1}).kernel_size() == std::array<Index, 2>{1, 1});
}

TEST_CASE("Conv2D bad input: clear errors, nothing changed") {
  SUBCASE("hyper-parameters") {
    CHECK_THROWS_WITH_AS(Conv2D<float>(0, 3), "Conv2D: filters must be > 0, got 0", minidl::ValueError);
    CHECK_THROWS_WITH_AS(Conv2D<float>(4, {3, 0}), "Conv2D: kernel_size must be positive, got 3x0", minidl::ValueError);
    CHECK_THROWS_WITH_AS(Conv2D<float>(4, -1), "Conv2D: kernel_size must be positive, got -1x-1", minidl::ValueError);
    CHECK_THROWS_WITH_AS(Conv2D<float>(4, 3, options(Padding::valid, {0, 1})),
                         "Conv2D: strides must be positive, got 0x1", minidl::ValueError);
  }
  SUBCASE("input shapes") {
    CHECK_THROWS_WITH_AS(Conv2D<float>(Shape{3, 3, 1}, 32, 5),
                         "Conv2D: kernel 5x5 does not fit the 3x3 input with valid padding", minidl::ShapeError);
    CHECK_THROWS_WITH_AS(Conv2D<float>(Shape{784}, 32, 3),
                         "Conv2D: expects an image input shape (None, height, width, channels), got (None, 784)",
                         minidl::ShapeError);
    Conv2D<float> conv(32, 5, options());
    conv.set_name("conv2d");
    CHECK_THROWS_WITH_AS(conv.build(Shape{3, 3, 1}),
                         "Conv2D 'conv2d': kernel 5x5 does not fit the 3x3 input with valid padding",
                         minidl::ShapeError);
    CHECK_THROWS_WITH_AS(conv.build(Shape{7, 4, 1}),
                         "Conv2D 'conv2d': kernel 5x5 does not fit the 7x4 input with valid padding",
                         minidl::ShapeError);
    CHECK_FALSE(conv.built());  // a failed build changes nothing
    CHECK(conv.kernel().size() == 0);
    conv.build(Shape{5, 5, 2});  // and the layer can still be built
    CHECK(conv.output_shape() == Shape{1, 1, 32});
    CHECK(conv.kernel().rows() == 50);
    // 'same' fits any kernel: a 5x5 kernel over 3x3 gives 3x3.
    CHECK(Conv2D<float>(Shape{3, 3, 1}, 2, 5, options(Padding::same)).output_shape() == Shape{3, 3, 2});
  }
  SUBCASE("batches of the wrong width") {
    Conv2D<float> conv(Shape{4, 4, 2}, 3, 3, options());
    conv.set_name("conv2d");
    CHECK_THROWS_AS(conv.forward(Matrix<float>::Zero(2, 31), Phase::training), minidl::ShapeError);
    CHECK_THROWS_AS(conv.backward(Matrix<float>::Zero(2, 32), Matrix<float>::Zero(2, 12)), minidl::StateError);
  }
}

namespace {

// Conv2D(same) → BatchNorm → ReLU → MaxPooling2D → (Flatten or
// GlobalAveragePooling2D) → Dense(softmax), built by Sequential::add.
template <class Scalar>
minidl::Sequential<Scalar> conv_net(Shape input, Index filters, bool global_pool, std::uint64_t seed) {
  minidl::Sequential<Scalar> model(seed);
  Conv2DOptions o;
  o.padding = Padding::same;
  model.add(Conv2D<Scalar>(input, filters, 3, o));
  model.add(minidl::BatchNorm<Scalar>());
  model.add(minidl::ReLU<Scalar>());
  model.add(minidl::MaxPooling2D<Scalar>());
  if (global_pool) {
    model.add(minidl::GlobalAveragePooling2D<Scalar>());
  } else {
    model.add(minidl::Flatten<Scalar>());
  }
  model.add(minidl::Dense<Scalar>(model.output_shape().size(), 3, Activation::softmax));
  return model;
}

}  // namespace

TEST_CASE_TEMPLATE("a small conv net trains in Sequential: the loss decreases", Scalar, float, double) {
  for (bool global_pool : {false, true}) {
    CAPTURE(global_pool);
    auto model = conv_net<Scalar>(Shape{8, 8, 2}, 4, global_pool, 7);
    model.compile(minidl::CategoricalCrossentropy{}, minidl::Adam<Scalar>(Scalar(0.01)));
    const Matrix<Scalar> x = minidl::test::uniform<Scalar>(16, 128, 11);
    Matrix<Scalar> y = Matrix<Scalar>::Zero(16, 3);
    for (Index i = 0; i < 16; ++i) y(i, i % 3) = 1;  // random images, arbitrary labels: memorize them
    const Scalar first = model.train_on_batch(x, y);
    Scalar last = first;
    for (int step = 0; step < 30; ++step) last = model.train_on_batch(x, y);
    CHECK(std::isfinite(static_cast<double>(last)));
    CHECK(last < Scalar(0.8) * first);
    CHECK(model.evaluate(x, y) < first);
  }
}

TEST_CASE("summary of a conv net shows image shapes and Keras' parameter counts") {
  auto model = conv_net<float>(Shape{28, 28, 1}, 32, false, 1);
  std::ostringstream out;
  model.summary(out);
  const std::string text = out.str();
  CAPTURE(text);
  CHECK(text.find("(Conv2D)") != std::string::npos);
  CHECK(text.find("(MaxPooling2D)") != std::string::npos);
  CHECK(text.find("(Flatten)") != std::string::npos);
  CHECK(text.find("(None, 28, 28, 32)") != std::string::npos);
  CHECK(text.find("(None, 14, 14, 32)") != std::string::npos);
  CHECK(text.find("(None, 6272)") != std::string::npos);
  CHECK(text.find("(None, 3)") != std::string::npos);
  // Conv2D: 3·3·1·32 + 32 = 320; BatchNorm: 4·32 = 128; Dense: 6272·3 + 3 = 18,819.
  CHECK(text.find("320") != std::string::npos);
  CHECK(text.find("128") != std::string::npos);
  CHECK(text.find("18,819") != std::string::npos);
  CHECK(text.find("Total params: 19,267") != std::string::npos);

  auto global = conv_net<float>(Shape{28, 28, 1}, 32, true, 1);
  std::ostringstream global_out;
  global.summary(global_out);
  CHECK(global_out.str().find("(GlobalAveragePooling2D)") != std::string::npos);
  CHECK(global_out.str().find("(None, 32)") != std::string::npos);
}
