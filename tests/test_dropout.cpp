// Dropout (layers/dropout.hpp): inverted dropout statistics, the identity in
// inference, the backward mask, seeding, the frozen flag and bad rates.
#include <doctest/doctest.h>

#include <cmath>
#include <minidl/gradient_check.hpp>
#include <minidl/layers/dropout.hpp>
#include <minidl/threads.hpp>
#include <string>

using minidl::Dropout;
using minidl::Index;
using minidl::Matrix;
using minidl::Phase;
using minidl::Shape;

namespace {

// Values in [1, 2): none is zero, so y != 0 exactly where the value was kept.
template <class Scalar>
Matrix<Scalar> nonzero_batch(Index rows, Index cols, std::uint64_t seed) {
  minidl::Rng rng(seed);
  Matrix<Scalar> x(rows, cols);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<Scalar>(rng.uniform(1, 2));
  return x;
}

template <class Scalar>
Dropout<Scalar> built(double rate, std::uint64_t seed, const Shape& shape) {
  Dropout<Scalar> layer(rate, seed);
  layer.build(shape);
  return layer;
}

}  // namespace

TEST_CASE_TEMPLATE("Dropout training phase: kept fraction 1 − rate, mean preserved", Scalar, float, double) {
  for (double rate : {0.1, 0.3, 0.5, 0.8}) {
    CAPTURE(rate);
    // n = 20000 values of 1. The kept count is Binomial(n, 1 − rate): its
    // fraction has standard error s = sqrt(rate (1 − rate) / n) ≤ 0.0036, and
    // the output mean (kept fraction / (1 − rate)) has s / (1 − rate).
    // 5-sigma bounds: a correct layer fails with probability < 1e-6.
    const Index rows = 100, cols = 200;
    const double n = rows * cols, s = std::sqrt(rate * (1 - rate) / n);
    auto layer = built<Scalar>(rate, 7, Shape{cols});
    const Matrix<Scalar> x = Matrix<Scalar>::Ones(rows, cols);
    const Matrix<Scalar>& y = layer.forward(x, Phase::training);
    const auto scale = static_cast<Scalar>(1 / (1 - rate));
    Index kept = 0;
    bool only_zero_or_scale = true;
    for (Index i = 0; i < y.size(); ++i) {
      if (y.data()[i] == scale) ++kept;
      else if (y.data()[i] != Scalar(0)) only_zero_or_scale = false;
    }
    CHECK(only_zero_or_scale);
    CHECK(std::abs(static_cast<double>(kept) / n - (1 - rate)) < 5 * s);
    CHECK(std::abs(static_cast<double>(y.template cast<double>().mean()) - 1) < 5 * s / (1 - rate));
  }
}

TEST_CASE_TEMPLATE("Dropout keeps values scaled by 1/(1 − rate), identity in inference", Scalar, float, double) {
  const double rate = 0.25;
  auto layer = built<Scalar>(rate, 3, Shape{2, 3, 4});
  const Matrix<Scalar> x = nonzero_batch<Scalar>(5, 24, 1);
  const Matrix<Scalar> y = layer.forward(x, Phase::training);
  Index dropped = 0;
  for (Index i = 0; i < x.size(); ++i) {
    if (y.data()[i] == Scalar(0)) {
      ++dropped;
    } else {
      CHECK(static_cast<double>(y.data()[i]) ==
            doctest::Approx(static_cast<double>(x.data()[i]) / (1 - rate)).epsilon(1e-6));
    }
  }
  CHECK(dropped > 0);
  CHECK(dropped < x.size());
  CHECK(layer.forward(x, Phase::inference) == x);  // bitwise identity
}

TEST_CASE_TEMPLATE("Dropout backward: the gradient is scaled at exactly the kept positions", Scalar, float, double) {
  const double rate = 0.4;
  auto layer = built<Scalar>(rate, 11, Shape{30});
  const Matrix<Scalar> x = nonzero_batch<Scalar>(8, 30, 2);
  const Matrix<Scalar> dy = nonzero_batch<Scalar>(8, 30, 3) * Scalar(-1);
  const Matrix<Scalar> y = layer.forward(x, Phase::training);
  const Matrix<Scalar>& dx = layer.backward(x, dy);
  for (Index i = 0; i < x.size(); ++i) {
    if (y.data()[i] == Scalar(0)) {
      CHECK(dx.data()[i] == Scalar(0));
    } else {
      CHECK(static_cast<double>(dx.data()[i]) ==
            doctest::Approx(static_cast<double>(dy.data()[i]) / (1 - rate)).epsilon(1e-6));
    }
  }
  // The stored mask is what was applied.
  CHECK(layer.mask().rows() == 8);
  CHECK((layer.mask().array() == Scalar(0)).count() == (y.array() == Scalar(0)).count());
}

TEST_CASE("Dropout backward matches finite differences") {
  for (double rate : {0.0, 0.2, 0.6}) {
    CAPTURE(rate);
    for (const Shape& shape : {Shape{1}, Shape{13}, Shape{2, 2, 3}}) {
      CAPTURE(shape);
      auto layer = built<double>(rate, 5, shape);
      const auto result = minidl::check_gradients(layer, nonzero_batch<double>(4, shape.size(), 9));
      CHECK(result.input_error < 1e-8);
      CHECK(result.parameter_errors.empty());
    }
  }
}

TEST_CASE_TEMPLATE("Dropout seeding: same seed, same mask (bitwise)", Scalar, float, double) {
  const Matrix<Scalar> x = nonzero_batch<Scalar>(16, 10, 4);
  auto a = built<Scalar>(0.5, 42, Shape{10});
  auto b = built<Scalar>(0.5, 42, Shape{10});
  auto c = built<Scalar>(0.5, 43, Shape{10});
  const Matrix<Scalar> ya = a.forward(x, Phase::training);
  CHECK(ya == b.forward(x, Phase::training));
  CHECK(ya != c.forward(x, Phase::training));
  // The next call draws a new mask; the twin draws the same one.
  const Matrix<Scalar> ya2 = a.forward(x, Phase::training);
  CHECK(ya2 != ya);
  CHECK(ya2 == b.forward(x, Phase::training));
  // A clone carries the generator state along.
  auto clone = a.clone();
  CHECK(clone->forward(x, Phase::training) == a.forward(x, Phase::training));
  b.forward(x, Phase::training);  // a has drawn three masks: b too
  // An inference call draws nothing: the streams stay in step.
  a.forward(x, Phase::inference);
  CHECK(a.forward(x, Phase::training) == b.forward(x, Phase::training));
}

TEST_CASE("Dropout's mask is the same on one thread and on several, and neighbours are independent") {
  // 256 x 512 values: enough for the mask to be drawn in parallel chunks
  // when OpenMP is on (without it both runs use one thread and agree trivially).
  const Index rows = 256, cols = 512;
  const Matrix<float> x = Matrix<float>::Ones(rows, cols);
  const int before = minidl::num_threads();
  auto one = built<float>(0.5, 99, Shape{cols});
  auto two = built<float>(0.5, 99, Shape{cols});
  minidl::set_num_threads(1);
  const Matrix<float> mask_one = one.forward(x, Phase::training);
  minidl::set_num_threads(2);
  const Matrix<float> mask_two = two.forward(x, Phase::training);
  minidl::set_num_threads(before);
  CHECK(mask_one == mask_two);

  // Each value is drawn from its own position: a pair of neighbours (and of
  // values one row apart) is kept together with probability 1/4. With
  // n = 65535 pairs the fraction has standard error sqrt(3/16 / n) < 0.0017;
  // 5-sigma bounds.
  const double n = static_cast<double>(x.size() - cols), s = std::sqrt(3.0 / 16.0 / n);
  const auto kept_together = [&](Index distance) {
    Index both = 0;
    for (Index i = 0; i + distance < x.size(); ++i)
      both += mask_one.data()[i] != 0 && mask_one.data()[i + distance] != 0;
    return static_cast<double>(both) / static_cast<double>(x.size() - distance);
  };
  CHECK(std::abs(kept_together(1) - 0.25) < 5 * s);
  CHECK(std::abs(kept_together(cols) - 0.25) < 5 * s);
}

TEST_CASE("Dropout without a seed: initialized by initialize(rng)") {
  Dropout<double> layer(0.5);
  layer.set_name("drop");
  layer.build(Shape{6});
  CHECK_FALSE(layer.initialized());
  const Matrix<double> x = nonzero_batch<double>(4, 6, 5);
  CHECK_THROWS_AS(layer.forward(x, Phase::training), minidl::StateError);
  minidl::Rng rng(8), same(8);
  layer.initialize(rng);
  CHECK(layer.initialized());
  CHECK_FALSE(rng == same);  // a seed was split from the given generator
  Dropout<double> twin(0.5);
  twin.build(Shape{6});
  twin.initialize(same);
  CHECK(layer.forward(x, Phase::training) == twin.forward(x, Phase::training));

  // A seeded layer restarts from its own seed and leaves the generator alone.
  auto seeded = built<double>(0.5, 21, Shape{6});
  const Matrix<double> first = seeded.forward(x, Phase::training);
  minidl::Rng other(1), untouched(1);
  seeded.initialize(other);
  CHECK(other == untouched);
  CHECK(seeded.forward(x, Phase::training) == first);
}

TEST_CASE("Dropout ignores the frozen flag") {
  const Matrix<double> x = nonzero_batch<double>(6, 9, 6);
  const Matrix<double> dy = nonzero_batch<double>(6, 9, 7);
  auto free = built<double>(0.3, 17, Shape{9});
  auto frozen = built<double>(0.3, 17, Shape{9});
  frozen.set_frozen(true);
  CHECK(frozen.forward(x, Phase::training) == free.forward(x, Phase::training));
  CHECK(frozen.backward(x, dy) == free.backward(x, dy));
  CHECK(frozen.forward(x, Phase::inference) == x);
  // Frozen, training phase still drops.
  CHECK((frozen.forward(x, Phase::training).array() == 0).count() > 0);
}

TEST_CASE_TEMPLATE("Dropout with rate 0 is the identity in both phases", Scalar, float, double) {
  auto layer = built<Scalar>(0.0, 1, Shape{12});
  const Matrix<Scalar> x = nonzero_batch<Scalar>(3, 12, 8);
  const Matrix<Scalar> dy = nonzero_batch<Scalar>(3, 12, 9);
  CHECK(layer.forward(x, Phase::training) == x);
  CHECK(layer.backward(x, dy) == dy);
  CHECK(layer.forward(x, Phase::inference) == x);
}

TEST_CASE_TEMPLATE("Dropout(1) drops every value, as Keras 3 and PyTorch: zeros out, zero gradient", Scalar, float,
                   double) {
  // Keras 3 (dropout: rate in [0, 1]) and PyTorch (p = 1) output zeros; the
  // kept scale 1 / (1 - rate) is never formed, so nothing is infinite or NaN.
  Dropout<Scalar> layer(1.0, 5);
  layer.build(Shape{12});
  const Matrix<Scalar> x = nonzero_batch<Scalar>(3, 12, 8);
  const Matrix<Scalar> dy = nonzero_batch<Scalar>(3, 12, 9);
  CHECK(layer.forward(x, Phase::training).isZero(0));
  CHECK(layer.mask().isZero(0));
  CHECK(layer.backward(x, dy).isZero(0));
  CHECK(layer.forward(x, Phase::inference) == x);
  CHECK(layer.phases_differ());
  CHECK(layer.phase_behaviour() == "drops 100% of units");
}

TEST_CASE("Dropout rate outside 0 <= rate <= 1 is a ValueError and changes nothing") {
  CHECK_THROWS_WITH_AS(Dropout<float>(1.5), "Dropout: rate must be in [0, 1], got 1.5", minidl::ValueError);
  CHECK_THROWS_WITH_AS(Dropout<float>(-0.1), "Dropout: rate must be in [0, 1], got -0.1", minidl::ValueError);
  CHECK_THROWS_AS(Dropout<float>(std::nextafter(1.0, 2.0)), minidl::ValueError);
  CHECK_THROWS_AS(Dropout<float>(std::nan("")), minidl::ValueError);

  Dropout<float> layer(0.2, 3);
  layer.set_name("dropout");
  layer.build(Shape{4});
  CHECK_THROWS_WITH_AS(layer.set_rate(2.0), "Dropout 'dropout': rate must be in [0, 1], got 2", minidl::ValueError);
  CHECK(layer.rate() == 0.2);
  layer.set_rate(0.6);
  CHECK(layer.rate() == 0.6);
  CHECK(std::string(layer.type()) == "Dropout");
  CHECK(layer.parameter_count() == 0);
}
