// Dense (layers/dense.hpp) and the weight initializers (initializers.hpp):
// hand-computed forward and backward, finite-difference gradients, frozen
// behaviour, initializer limits and determinism, and bad input.
#include <doctest/doctest.h>

#include <cmath>
#include <minidl/gradient_check.hpp>
#include <minidl/layers/dense.hpp>
#include <string>
#include <type_traits>

using minidl::Activation;
using minidl::Dense;
using minidl::DenseOptions;
using minidl::Index;
using minidl::Initializer;
using minidl::Matrix;
using minidl::Phase;
using minidl::Vector;

namespace {

DenseOptions seeded(std::uint64_t seed, bool use_bias = true, Initializer init = Initializer::glorot_uniform) {
  DenseOptions options;
  options.seed = seed;
  options.use_bias = use_bias;
  options.kernel_initializer = init;
  return options;
}

// The layer of the hand-computed examples: 2 inputs, 3 units.
//   W = [[1, 0, 2], [0, 1, −1]],  b = (0.5, −1, 0)
template <class Scalar>
Dense<Scalar> small_dense(Activation activation, bool use_bias = true) {
  Dense<Scalar> layer(2, 3, activation, seeded(1, use_bias));
  Matrix<Scalar> kernel(2, 3);
  kernel << 1, 0, 2, 0, 1, -1;
  layer.set_kernel(kernel);
  if (use_bias) layer.set_bias((Vector<Scalar>(3) << Scalar(0.5), -1, 0).finished());
  return layer;
}

}  // namespace

TEST_CASE_TEMPLATE("Dense forward: hand-computed values in both phases", Scalar, float, double) {
  Matrix<Scalar> x(2, 2);
  x << 1, 2, 3, -4;
  // z = x·W + b: row 0: (1, 2, 2 − 2) + b = (1.5, 1, 0)
  //              row 1: (3, −4, 6 + 4) + b = (3.5, −5, 10)
  Matrix<Scalar> z(2, 3);
  z << Scalar(1.5), 1, 0, Scalar(3.5), -5, 10;

  for (Phase phase : {Phase::training, Phase::inference}) {
    const std::string phase_name = minidl::to_string(phase);
    CAPTURE(phase_name);
    SUBCASE("linear") {
      auto layer = small_dense<Scalar>(Activation::linear);
      CHECK(layer.forward(x, phase) == z);
    }
    SUBCASE("linear without bias") {
      auto layer = small_dense<Scalar>(Activation::linear, false);
      Matrix<Scalar> expected(2, 3);
      expected << 1, 2, 0, 3, -4, 10;
      CHECK(layer.forward(x, phase) == expected);
    }
    SUBCASE("relu") {
      auto layer = small_dense<Scalar>(Activation::relu);
      Matrix<Scalar> expected(2, 3);
      expected << Scalar(1.5), 1, 0, Scalar(3.5), 0, 10;
      CHECK(layer.forward(x, phase) == expected);
    }
    SUBCASE("sigmoid, tanh, softmax against the scalar formulas") {
      for (Activation a : {Activation::sigmoid, Activation::tanh, Activation::softmax}) {
        auto layer = small_dense<Scalar>(a);
        const Matrix<Scalar>& y = layer.forward(x, phase);
        for (Index r = 0; r < 2; ++r) {
          double norm = 0;
          for (Index c = 0; c < 3; ++c) norm += std::exp(static_cast<double>(z(r, c)));
          for (Index c = 0; c < 3; ++c) {
            const double v = static_cast<double>(z(r, c));
            const double expected = a == Activation::sigmoid ? 1 / (1 + std::exp(-v))
                                    : a == Activation::tanh  ? std::tanh(v)
                                                             : std::exp(v) / norm;
            CHECK(static_cast<double>(y(r, c)) == doctest::Approx(expected).epsilon(1e-5));
          }
        }
      }
    }
  }
}

TEST_CASE("Dense backward, linear: hand-computed gradients") {
  auto layer = small_dense<double>(Activation::linear);
  Matrix<double> x(2, 2), dy(2, 3);
  x << 1, 2, 3, 4;
  dy << 1, 0, -1, 2, 1, 0;
  layer.forward(x, Phase::training);
  const Matrix<double>& dx = layer.backward(x, dy);
  // dW = xᵀ·dy = [[1·(1,0,−1) + 3·(2,1,0)], [2·(1,0,−1) + 4·(2,1,0)]]
  CHECK(layer.kernel_gradient() == (Matrix<double>(2, 3) << 7, 3, -1, 10, 4, -2).finished());
  // db = column sums of dy
  CHECK(layer.bias_gradient() == (Vector<double>(3) << 3, 1, -1).finished());
  // dx = dy·Wᵀ: row 0: (1 − 2, 0 + 1) ; row 1: (2, 1)
  CHECK(dx == (Matrix<double>(2, 2) << -1, 1, 2, 1).finished());
}

TEST_CASE("Dense backward, relu: the gradient stops where the unit is off") {
  auto layer = small_dense<double>(Activation::relu);
  Matrix<double> x(1, 2), dy(1, 3);
  x << 3, -4;  // z = (3.5, −5, 10): unit 1 is off
  dy << 1, 1, 1;
  layer.forward(x, Phase::training);
  const Matrix<double> dx = layer.backward(x, dy);
  // dz = (1, 0, 1); dW = xᵀ·dz; dx = dz·Wᵀ = (1 + 2, 0 − 1)
  CHECK(layer.kernel_gradient() == (Matrix<double>(2, 3) << 3, 0, 3, -4, 0, -4).finished());
  CHECK(layer.bias_gradient() == (Vector<double>(3) << 1, 0, 1).finished());
  CHECK(dx == (Matrix<double>(1, 2) << 3, -1).finished());
}

TEST_CASE("Dense backward matches finite differences (every activation, with and without bias)") {
  struct Case {
    Index inputs, units, rows;
  };
  const Case cases[] = {{1, 1, 1}, {3, 2, 4}, {5, 7, 3}, {4, 1, 6}};
  std::uint64_t seed = 100;
  for (Activation a : {Activation::linear, Activation::relu, Activation::sigmoid, Activation::tanh,
                       Activation::softmax}) {
    for (bool use_bias : {true, false}) {
      for (const Case& c : cases) {
        const std::string activation_name = minidl::to_string(a);
        CAPTURE(activation_name);
        CAPTURE(use_bias);
        CAPTURE(c.inputs);
        CAPTURE(c.units);
        Dense<double> layer(c.inputs, c.units, a, seeded(++seed, use_bias));
        // A non-zero bias, so that its effect on the activation is checked too.
        minidl::Rng rng(seed);
        Vector<double> bias(layer.bias().size());
        for (Index i = 0; i < bias.size(); ++i) bias[i] = rng.uniform(-0.5, 0.5);
        layer.set_bias(bias);
        Matrix<double> x(c.rows, c.inputs);
        for (Index i = 0; i < x.size(); ++i) x.data()[i] = rng.uniform(-2, 2);
        // ReLU: keep every pre-activation away from the kink (|z| > 1e-3).
        if (a == Activation::relu) {
          Matrix<double> z = x * layer.kernel();
          if (use_bias) z.rowwise() += layer.bias().transpose();
          REQUIRE(z.cwiseAbs().minCoeff() > 1e-3);
        }
        const auto result = minidl::check_gradients(layer, x);
        CHECK(result.input_error < 1e-8);
        REQUIRE(result.parameter_errors.size() == (use_bias ? 2u : 1u));
        CHECK(result.parameter_errors[0].first == "kernel");
        CHECK(result.parameter_errors[0].second < 1e-8);
        if (use_bias) {
          CHECK(result.parameter_errors[1].first == "bias");
          CHECK(result.parameter_errors[1].second < 1e-8);
        }
      }
    }
  }
}

TEST_CASE("frozen Dense: input gradient computed, kernel and bias gradients untouched") {
  auto layer = small_dense<double>(Activation::tanh);
  Matrix<double> x(2, 2), dy(2, 3);
  x << 0.5, -1, 0.25, 2;
  dy << 1, -2, 0.5, 0.3, 0.1, -1;
  layer.forward(x, Phase::training);
  layer.backward(x, dy);
  const Matrix<double> kernel_grad = layer.kernel_gradient();
  const Vector<double> bias_grad = layer.bias_gradient();
  // The unfrozen input gradient of another upstream gradient, as the reference.
  const Matrix<double> dy2 = -3 * dy;
  layer.forward(x, Phase::training);
  const Matrix<double> expected_dx = layer.backward(x, dy2);
  REQUIRE(layer.kernel_gradient() != kernel_grad);

  layer.backward(x, dy);  // restore the first gradients
  layer.set_frozen(true);
  const Matrix<double> kernel_before = layer.kernel();
  layer.forward(x, Phase::training);
  const Matrix<double>& dx = layer.backward(x, dy2);
  CHECK(dx == expected_dx);
  CHECK(layer.kernel_gradient() == kernel_grad);
  CHECK(layer.bias_gradient() == bias_grad);
  CHECK(layer.kernel() == kernel_before);
  // The checker skips parameters of a frozen layer but checks the input.
  CHECK(minidl::check_gradients(layer, x).input_error < 1e-8);
}

TEST_CASE("Dense parameters, accessors and type") {
  Dense<float> layer(4, 3, Activation::relu, seeded(5));
  CHECK(std::string(layer.type()) == "Dense");
  CHECK(layer.units() == 3);
  CHECK(layer.activation() == Activation::relu);
  CHECK(layer.use_bias());
  CHECK(layer.kernel().rows() == 4);
  CHECK(layer.kernel().cols() == 3);
  CHECK(layer.bias() == Vector<float>::Zero(3));  // bias starts at zero
  CHECK(layer.input_shape() == minidl::Shape{4});
  CHECK(layer.output_shape() == minidl::Shape{3});
  auto params = layer.parameters();
  REQUIRE(params.size() == 2);
  CHECK(params[0].name == "kernel");
  CHECK(params[0].size == 12);
  CHECK(params[0].value == layer.kernel().data());
  CHECK(params[1].name == "bias");
  CHECK(params[1].size == 3);
  CHECK(layer.parameter_count() == 15);
  CHECK(layer.state_count() == 0);

  Dense<float> no_bias(4, 3, Activation::linear, seeded(5, false));
  CHECK(no_bias.bias().size() == 0);
  REQUIRE(no_bias.parameters().size() == 1);
  CHECK(no_bias.parameter_count() == 12);
  // Same seed, same initializer: the same kernel with or without a bias.
  CHECK(no_bias.kernel() == layer.kernel());

  // clone() is a deep copy.
  auto copy = layer.clone();
  Matrix<float> changed = layer.kernel();
  changed(0, 0) += 1;
  layer.set_kernel(changed);
  CHECK(copy->parameters()[0].value[0] == layer.kernel()(0, 0) - 1);
}

TEST_CASE("Dense initializers: Keras limits, distribution and determinism") {
  const Index inputs = 200, units = 100;
  SUBCASE("glorot_uniform: |w| <= sqrt(6 / (fan_in + fan_out)), the whole range used") {
    Dense<double> layer(inputs, units, Activation::linear, seeded(3));
    const double limit = std::sqrt(6.0 / (inputs + units));
    CHECK(layer.kernel().cwiseAbs().maxCoeff() <= limit);
    // 20000 draws: P(all below 0.999 limit) = 0.999^20000 < 1e-8.
    CHECK(layer.kernel().cwiseAbs().maxCoeff() > 0.999 * limit);
    // Uniform mean 0, standard error limit/sqrt(3·20000) ≈ 6e-4: 5 sigma.
    CHECK(std::abs(layer.kernel().mean()) < 5 * limit / std::sqrt(3.0 * 20000));
  }
  SUBCASE("he_uniform: |w| <= sqrt(6 / fan_in)") {
    Dense<float> layer(inputs, units, Activation::relu, seeded(3, true, Initializer::he_uniform));
    const double limit = std::sqrt(6.0 / inputs);
    CHECK(layer.kernel().cwiseAbs().maxCoeff() <= static_cast<float>(limit));
    CHECK(layer.kernel().cwiseAbs().maxCoeff() > static_cast<float>(0.999 * limit));
  }
  SUBCASE("he_normal: truncated at 2 std, variance 2 / fan_in") {
    Dense<double> layer(inputs, units, Activation::relu, seeded(3, true, Initializer::he_normal));
    const double stddev = std::sqrt(2.0 / inputs) / 0.87962566103423978;
    CHECK(layer.kernel().cwiseAbs().maxCoeff() <= 2 * stddev);
    CHECK(layer.kernel().cwiseAbs().maxCoeff() > 1.99 * stddev);
    // The sample variance of n = 20000 draws has a relative standard error
    // below sqrt(2/n) = 1% (a truncated normal has less kurtosis than a
    // normal); 5 sigma is 5%.
    const double variance = layer.kernel().array().square().mean();
    CHECK(variance == doctest::Approx(2.0 / inputs).epsilon(0.05));
  }
  SUBCASE("zeros") {
    Dense<double> layer(inputs, units, Activation::linear, seeded(3, true, Initializer::zeros));
    CHECK(layer.kernel().isZero(0));
  }
  SUBCASE("same seed, same weights (bitwise); another seed, other weights") {
    for (Initializer init : {Initializer::glorot_uniform, Initializer::he_uniform, Initializer::he_normal}) {
      Dense<float> a(8, 5, Activation::linear, seeded(42, true, init));
      Dense<float> b(8, 5, Activation::linear, seeded(42, true, init));
      Dense<float> c(8, 5, Activation::linear, seeded(43, true, init));
      CHECK(a.kernel() == b.kernel());
      CHECK(a.kernel() != c.kernel());
    }
  }
}

TEST_CASE("Dense without a seed: initialized by initialize(rng)") {
  Dense<double> layer(3, 2);
  layer.set_name("d1");
  CHECK_FALSE(layer.initialized());
  Matrix<double> x = Matrix<double>::Ones(2, 3);
  CHECK_THROWS_WITH_AS(layer.forward(x, Phase::training),
                       "Dense 'd1': weights are not initialized; add the layer to a Sequential or call "
                       "initialize(rng) first",
                       minidl::StateError);
  minidl::Rng rng(9), same(9);
  layer.initialize(rng);
  CHECK(layer.initialized());
  CHECK_FALSE(rng == same);  // drew from the given generator
  Dense<double> twin(3, 2);
  twin.initialize(same);
  CHECK(twin.kernel() == layer.kernel());
  CHECK(layer.forward(x, Phase::inference).rows() == 2);

  // A seeded layer ignores the generator: its weights depend on its seed alone.
  Dense<double> seeded_layer(3, 2, Activation::linear, seeded(11));
  const Matrix<double> first = seeded_layer.kernel();
  seeded_layer.set_kernel(Matrix<double>::Zero(3, 2));
  minidl::Rng other(1), untouched(1);
  seeded_layer.initialize(other);
  CHECK(other == untouched);
  CHECK(seeded_layer.kernel() == first);
}

TEST_CASE("Dense bad input: arguments and shapes") {
  CHECK_THROWS_WITH_AS(Dense<float>(4, 0), "Dense: units must be > 0, got 0", minidl::ValueError);
  CHECK_THROWS_WITH_AS(Dense<float>(-1, 3), "Dense: inputs must be > 0, got -1", minidl::ValueError);
  Matrix<float> weights = Matrix<float>::Ones(2, 2);
  minidl::Rng rng(1), same(1);
  CHECK_THROWS_WITH_AS(minidl::initialize_weights(Initializer::he_uniform, weights, 0, 2, rng),
                       "initialize_weights(he_uniform): fan_in and fan_out must be > 0, got 0 and 2",
                       minidl::ValueError);
  CHECK(weights == Matrix<float>::Ones(2, 2));
  CHECK(rng == same);

  Dense<float> layer(4, 2, Activation::relu, seeded(1));
  layer.set_name("d1");
  Matrix<float> wrong = Matrix<float>::Ones(3, 5);
  CHECK_THROWS_WITH_AS(layer.forward(wrong, Phase::training),
                       "Dense 'd1': forward() input has 5 values per sample, expected 4 (input shape (None, 4))",
                       minidl::ShapeError);
  // Backward with a gradient of the wrong width.
  Matrix<float> x = Matrix<float>::Ones(3, 4);
  layer.forward(x, Phase::training);
  const Matrix<float> kernel_grad = layer.kernel_gradient();
  CHECK_THROWS_AS(layer.backward(x, Matrix<float>::Ones(3, 3)), minidl::ShapeError);
  CHECK(layer.kernel_gradient() == kernel_grad);
}

TEST_CASE("Initializer names round-trip") {
  for (Initializer i : {Initializer::glorot_uniform, Initializer::he_uniform, Initializer::he_normal,
                        Initializer::zeros})
    CHECK(minidl::initializer_from_string(minidl::to_string(i)) == i);
  CHECK_THROWS_AS(minidl::initializer_from_string("orthogonal"), minidl::ValueError);
}
