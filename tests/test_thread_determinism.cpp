// The same seeds give the same numbers on one thread and on two: products
// (minidl's kernel and Eigen's), whole training runs in float and double,
// dense and convolutional. Built as its own executable with OpenMP
// (minidl_thread_tests), so that set_num_threads(2) really runs two threads.
#include <doctest/doctest.h>

#include <minidl/minidl.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "support.hpp"

#ifndef _OPENMP
#error "test_thread_determinism.cpp must be compiled with OpenMP (tests/CMakeLists.txt links it)"
#endif

using namespace minidl;

namespace {

/// Sets the thread count for a scope and restores the previous one.
struct Threads {
  int before = num_threads();
  explicit Threads(int n) {
    set_num_threads(n);
    REQUIRE(num_threads() == n);
  }
  Threads(const Threads&) = delete;
  Threads& operator=(const Threads&) = delete;
  ~Threads() { set_num_threads(before); }
};

struct ProductShape {
  Index m, n, k;
};

template <class Scalar>
bool same_bits(const Matrix<Scalar>& a, const Matrix<Scalar>& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() && (a.array() == b.array()).all();
}

/// How many of two equal-sized matrices' values differ.
template <class Scalar>
Index differing(const Matrix<Scalar>& a, const Matrix<Scalar>& b) {
  return (a.array() != b.array()).count();
}

/// C = A·B as detail::gemm computes it on `threads` threads; A is m x k,
/// B is given as its k x n transpose when `transpose_b` (Dense's dx = dz·Wᵀ).
template <class Scalar>
Matrix<Scalar> product(const Matrix<Scalar>& a, const Matrix<Scalar>& b, bool transpose_b, int threads) {
  const Threads scope(threads);
  Matrix<Scalar> c(a.rows(), transpose_b ? b.rows() : b.cols());
  if (transpose_b)
    detail::gemm(a, b.transpose(), c);
  else
    detail::gemm(a, b, c);
  return c;
}

/// Workload B's model: 784 -> Dense 512 -> BN -> ReLU -> Dropout(0.2) ->
/// Dense 512 -> BN -> ReLU -> Dropout(0.2) -> Dense 10 softmax. Its products
/// are all large enough to run on both threads; those of the last layer have
/// 10 columns (in float too they are Eigen's, not minidl's kernel). Without
/// the bands, two epochs on 384 samples left 268,092 of its 673,802 float
/// weights different between one thread and two, 390,809 in double.
template <class Scalar>
Sequential<Scalar> mlp(std::uint64_t seed) {
  Sequential<Scalar> model(seed);
  model.add(Dense<Scalar>(784, 512));
  model.add(BatchNorm<Scalar>());
  model.add(ReLU<Scalar>());
  model.add(Dropout<Scalar>(0.2));
  model.add(Dense<Scalar>(512, 512));
  model.add(BatchNorm<Scalar>());
  model.add(ReLU<Scalar>());
  model.add(Dropout<Scalar>(0.2));
  model.add(Dense<Scalar>(512, 10, Activation::softmax));
  model.compile(CategoricalCrossentropy{}, Adam<Scalar>{Scalar(1e-3)}, {Metric::accuracy});
  return model;
}

/// 12 x 12 x 1 -> Conv2D 16 (3 x 3) -> BN -> ReLU -> MaxPool 2 -> Conv2D 16 (3 x 3)
/// -> Flatten -> Dropout(0.25) -> Dense 10 softmax: im2col products of many
/// rows and few columns.
template <class Scalar>
Sequential<Scalar> convnet(std::uint64_t seed) {
  Sequential<Scalar> model(seed);
  model.add(Conv2D<Scalar>(Shape{12, 12, 1}, 16, 3));
  model.add(BatchNorm<Scalar>());
  model.add(ReLU<Scalar>());
  model.add(MaxPooling2D<Scalar>({2, 2}));
  model.add(Conv2D<Scalar>(16, 3, Conv2DOptions{}));
  model.add(Flatten<Scalar>());
  model.add(Dropout<Scalar>(0.25));
  model.add(Dense<Scalar>(model.output_shape().size(), 10, Activation::softmax));
  model.compile(CategoricalCrossentropy{}, Adam<Scalar>{Scalar(1e-3)});
  return model;
}

/// One-hot labels of `rows` samples, class = sample index mod 10.
template <class Scalar>
Matrix<Scalar> one_hot(Index rows) {
  Matrix<Scalar> y = Matrix<Scalar>::Zero(rows, 10);
  for (Index i = 0; i < rows; ++i) y(i, i % 10) = 1;
  return y;
}

/// Trains a fresh model from `make` on `threads` threads; returns its weights,
/// its predictions and its History.
template <class Scalar, class Make>
auto train(Make make, const Matrix<Scalar>& x, const Matrix<Scalar>& y, int threads, Index batch_size) {
  const Threads scope(threads);
  Sequential<Scalar> model = make(7);
  const History history = model.fit(x, y, test::silent_fit<Scalar>(2, batch_size, 5));
  struct Result {
    std::vector<Vector<Scalar>> weights;
    Matrix<Scalar> predictions;
    std::vector<double> loss;
  };
  return Result{model.get_weights(), model.predict(x), history.loss()};
}

template <class Scalar, class Make>
void check_training_is_thread_independent(Make make, const Matrix<Scalar>& x, Index batch_size) {
  const Matrix<Scalar> y = one_hot<Scalar>(x.rows());
  const auto one = train<Scalar>(make, x, y, 1, batch_size);
  const auto two = train<Scalar>(make, x, y, 2, batch_size);
  const auto again = train<Scalar>(make, x, y, 2, batch_size);
  REQUIRE(one.weights.size() == two.weights.size());
  Index total = 0, changed = 0;
  for (std::size_t i = 0; i < one.weights.size(); ++i) {
    total += one.weights[i].size();
    changed += (one.weights[i].array() != two.weights[i].array()).count();
  }
  INFO(changed, " of ", total, " weights differ between one thread and two");
  CHECK(changed == 0);
  CHECK(test::bitwise_equal(two.weights, again.weights));
  CHECK(same_bits(one.predictions, two.predictions));
  CHECK(one.loss == two.loss);
  // Training moved the weights: the comparison is not between two untouched models.
  const auto initial = make(7).get_weights();
  CHECK_FALSE(test::bitwise_equal(initial, one.weights));
}

}  // namespace

TEST_CASE_TEMPLATE("a product of any shape is the same on one thread and on two", Scalar, float, double) {
  // Dense's three products at batch 128 for 784 -> 256 -> 10, and im2col
  // shapes: many rows and few columns, few rows and many columns, and sizes
  // that are not multiples of any block.
  for (const ProductShape s : std::vector<ProductShape>{{128, 256, 784}, {784, 256, 128}, {128, 784, 256},
                                                         {128, 10, 512}, {512, 10, 128}, {128, 256, 10}, {6400, 16, 9},
                                                         {9, 16, 6400}, {8, 7, 2000}, {13, 1001, 77}, {1000, 3, 333}}) {
    CAPTURE(s.m);
    CAPTURE(s.n);
    CAPTURE(s.k);
    const Matrix<Scalar> a = test::uniform<Scalar>(s.m, s.k, 1), b = test::uniform<Scalar>(s.k, s.n, 2);
    const Matrix<Scalar> bt = b.transpose();
    const Matrix<Scalar> one = product(a, b, false, 1), two = product(a, b, false, 2);
    CHECK(differing(one, two) == 0);
    CHECK(same_bits(product(a, bt, true, 1), product(a, bt, true, 2)));
    // The cut into bands changes nothing but the summation's blocking: the
    // result is the product.
    const Matrix<Scalar> exact = (a.template cast<double>() * b.template cast<double>()).template cast<Scalar>();
    const double tolerance = 4 * std::numeric_limits<Scalar>::epsilon() * static_cast<double>(s.k);
    CHECK(((one - exact).array().abs().maxCoeff() <= tolerance));
  }
}

TEST_CASE("the bands of an Eigen product depend on its shape alone and cover it once") {
  // Every product that Eigen 3.4 could split over threads (at least 100,000
  // multiply-adds and 8 rows) is cut into at least two bands; smaller ones stay whole.
  CHECK(detail::eigen_bands(128, 10, 78).count == 1);    // 99,840 multiply-adds
  CHECK(detail::eigen_bands(7, 1000, 1000).count == 1);  // 7 rows
  for (const ProductShape s : std::vector<ProductShape>{
           {128, 10, 79}, {8, 8, 1563}, {9, 9, 1235}, {128, 784, 256}, {100000, 3, 9}, {20, 100000, 5}}) {
    CAPTURE(s.m);
    CAPTURE(s.n);
    const detail::EigenBands bands = detail::eigen_bands(s.m, s.n, s.k);
    const Index extent = bands.by_columns ? s.n : s.m;
    CHECK(bands.by_columns == (s.n > s.m));
    CHECK(bands.count >= 2);
    CHECK(bands.count <= 4);
    CHECK(bands.width % 4 == 0);
    CHECK((bands.count - 1) * bands.width < extent);
    CHECK(bands.count * bands.width >= extent);
  }
}

TEST_CASE_TEMPLATE("training a workload-B-like model gives the same weights on one thread and on two", Scalar, float,
                   double) {
  const Matrix<Scalar> x = test::uniform<Scalar>(384, 784, 3, 0, 1);
  check_training_is_thread_independent<Scalar>([](std::uint64_t seed) { return mlp<Scalar>(seed); }, x, 128);
}

TEST_CASE_TEMPLATE("training a convolutional model gives the same weights on one thread and on two", Scalar, float,
                   double) {
  const Matrix<Scalar> x = test::uniform<Scalar>(160, 144, 4, 0, 1);
  check_training_is_thread_independent<Scalar>([](std::uint64_t seed) { return convnet<Scalar>(seed); }, x, 32);
}
