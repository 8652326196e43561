// Sample and class weights in fit, evaluate, train_on_batch and test_on_batch,
// as Keras 3: a batch's loss is Σ w_i ℓ_i / n (divided by the batch size, not
// by the sum of the weights), a metric is Σ w_i m_i / Σ w_i over the epoch,
// fit's reported loss stays the batch-size-weighted mean of the batch losses,
// and class_weight is a sample weight per class. Checked against the same
// quantities assembled by hand from unweighted per-sample values.
#include <doctest/doctest.h>

#include <map>
#include <minidl/minidl.hpp>
#include <vector>

#include "support.hpp"

using namespace minidl;

namespace {

using test::bitwise_equal;
using test::quiet;

template <class Scalar>
Sequential<Scalar> classifier() {
  Sequential<Scalar> model(21);
  model.add(Dense<Scalar>(4, 8, Activation::tanh));
  model.add(Dense<Scalar>(8, 3, Activation::softmax));
  model.compile(CategoricalCrossentropy{}, SGD<Scalar>{Scalar(0.1)}, {Metric::accuracy});
  return model;
}

template <class Scalar>
Matrix<Scalar> labels_one_hot(Index rows) {
  Matrix<Scalar> y = Matrix<Scalar>::Zero(rows, 3);
  for (Index i = 0; i < rows; ++i) y(i, (i * 5) % 3) = 1;
  return y;
}

template <class Scalar>
Vector<Scalar> weights_of(Index rows, std::uint64_t seed) {
  const auto w = test::uniform<Scalar>(rows, 1, seed, 0, 2);
  return w.col(0);
}

}  // namespace

TEST_CASE_TEMPLATE("evaluate with sample weights is Keras's Σ w_i ℓ_i / N, metrics Σ w_i m_i / Σ w_i", T, float,
                   double) {
  const auto x = test::uniform<T>(10, 4, 1);
  const auto y = labels_one_hot<T>(10);
  auto model = classifier<T>();
  Vector<T> w = weights_of<T>(10, 2);
  w(3) = 0;  // a weight of zero counts the sample out of the sum, not out of N
  double loss = 0, hits = 0, weight = 0;
  for (Index i = 0; i < 10; ++i) {
    const Logs one = model.evaluate_all(x.middleRows(i, 1), y.middleRows(i, 1));
    loss += static_cast<double>(w(i)) * one["loss"];
    hits += static_cast<double>(w(i)) * one["accuracy"];
    weight += static_cast<double>(w(i));
  }
  for (Index batch_size : {3, 10}) {
    const Logs weighted = model.evaluate_all(x, y, w, batch_size);
    CHECK(weighted["loss"] == doctest::Approx(loss / 10).epsilon(test::tolerance<T>()));
    CHECK(weighted["accuracy"] == doctest::Approx(hits / weight).epsilon(test::tolerance<T>()));
    CHECK(static_cast<double>(model.evaluate(x, y, w, batch_size)) == weighted["loss"]);
  }
  CHECK(static_cast<double>(model.test_on_batch(x, y, w)) == doctest::Approx(loss / 10).epsilon(test::tolerance<T>()));
  // Weights of one are no weights, bit for bit.
  const Vector<T> ones = Vector<T>::Ones(10);
  CHECK(model.evaluate(x, y, ones, 4) == model.evaluate(x, y, 4));
}

TEST_CASE_TEMPLATE("train_on_batch with weights of 2 is the step of twice the learning rate, bit for bit", T, float,
                   double) {
  // Σ 2ℓ_i / n doubles every gradient exactly; SGD's θ − lr·(2g) equals θ − (2lr)·g.
  const auto x = test::uniform<T>(8, 4, 3);
  const auto y = labels_one_hot<T>(8);
  auto weighted = classifier<T>();
  auto doubled_rate = classifier<T>();
  doubled_rate.compile(CategoricalCrossentropy{}, SGD<T>{T(0.2)}, {Metric::accuracy});
  const Vector<T> twos = Vector<T>::Constant(8, T(2));
  for (int step = 0; step < 3; ++step) {
    const T a = weighted.train_on_batch(x, y, twos);
    const T b = doubled_rate.train_on_batch(x, y);
    CHECK(a == T(2) * b);  // the reported loss is the weighted one
  }
  CHECK(bitwise_equal(weighted.get_weights(), doubled_rate.get_weights()));
}

TEST_CASE_TEMPLATE("fit with sample weights: its loss is the batch-size-weighted mean of the weighted batch losses",
                   T, float, double) {
  const auto x = test::uniform<T>(10, 4, 4);
  const auto y = labels_one_hot<T>(10);
  const Vector<T> w = weights_of<T>(10, 5);
  auto fitted = classifier<T>();
  auto stepped = classifier<T>();
  FitOptions<T> options = quiet<T>(1, 4);
  options.shuffle = false;  // batches of rows 0-3, 4-7, 8-9
  options.sample_weight = w;
  const History history = fitted.fit(x, y, options);
  double sum = 0;
  for (Index begin : {0, 4, 8}) {
    const Index n = std::min<Index>(4, 10 - begin);
    const Vector<T> wb = w.segment(begin, n);
    sum += static_cast<double>(stepped.train_on_batch(x.middleRows(begin, n), y.middleRows(begin, n), wb)) *
           static_cast<double>(n);
  }
  CHECK(history.loss().front() == sum / 10);
  CHECK(bitwise_equal(fitted.get_weights(), stepped.get_weights()));
}

TEST_CASE_TEMPLATE("class_weight is a sample weight per class (argmax of one-hot rows, rounded labels)", T, float,
                   double) {
  const auto x = test::uniform<T>(12, 4, 6);
  const auto y = labels_one_hot<T>(12);
  const std::map<int, double> class_weight{{0, 0.5}, {2, 3.0}};  // class 1 is not listed: weight 1
  Vector<T> by_hand(12);
  for (Index i = 0; i < 12; ++i) by_hand(i) = static_cast<T>((i * 5) % 3 == 0 ? 0.5 : (i * 5) % 3 == 2 ? 3.0 : 1.0);
  auto with_classes = classifier<T>();
  auto with_samples = classifier<T>();
  FitOptions<T> a = quiet<T>(2, 5);
  a.class_weight = class_weight;
  FitOptions<T> b = quiet<T>(2, 5);
  b.sample_weight = by_hand;
  const History ha = with_classes.fit(x, y, a);
  const History hb = with_samples.fit(x, y, b);
  CHECK(bitwise_equal(with_classes.get_weights(), with_samples.get_weights()));
  CHECK(ha.loss() == hb.loss());
  CHECK(ha["accuracy"] == hb["accuracy"]);

  // Sparse labels: the class is the label itself.
  Sequential<T> sparse(21);
  sparse.add(Dense<T>(4, 8, Activation::tanh));
  sparse.add(Dense<T>(8, 3, Activation::softmax));
  sparse.compile(SparseCategoricalCrossentropy{}, SGD<T>{T(0.1)}, {Metric::accuracy});
  Matrix<T> labels(12, 1);
  for (Index i = 0; i < 12; ++i) labels(i, 0) = static_cast<T>((i * 5) % 3);
  const History hs = sparse.fit(x, labels, a);
  CHECK(bitwise_equal(sparse.get_weights(), with_samples.get_weights()));
  CHECK(hs.loss() == hb.loss());
}

TEST_CASE_TEMPLATE("weighted validation: validation_split keeps the held-out rows' weights, ValidationData has its own",
                   T, float, double) {
  const auto x = test::uniform<T>(12, 4, 7);
  const auto y = labels_one_hot<T>(12);
  const Vector<T> w = weights_of<T>(12, 8);
  auto model = classifier<T>();
  FitOptions<T> options = quiet<T>(2, 4);
  options.sample_weight = w;
  options.validation_split = 0.25;  // rows 9-11 validate, with weights w(9..11)
  const History split = model.fit(x, y, options);
  const Vector<T> tail = w.tail(3);
  CHECK(split.val_loss().back() == static_cast<double>(model.evaluate(x.bottomRows(3), y.bottomRows(3), tail, 4)));
  CHECK(split["val_accuracy"].back() == model.evaluate_all(x.bottomRows(3), y.bottomRows(3), tail, 4)["accuracy"]);

  FitOptions<T> explicit_data = quiet<T>(1, 4);
  explicit_data.validation_data = ValidationData<T>(x, y, w);
  const History given = model.fit(x, y, explicit_data);
  CHECK(given.val_loss().back() == static_cast<double>(model.evaluate(x, y, w, 4)));

  // class_weight weighs the training rows only: validation stays unweighted, as Keras.
  FitOptions<T> classes = quiet<T>(1, 4);
  classes.class_weight = {{0, 5.0}};
  classes.validation_split = 0.25;
  const History unweighted_val = model.fit(x, y, classes);
  CHECK(unweighted_val.val_loss().back() == static_cast<double>(model.evaluate(x.bottomRows(3), y.bottomRows(3), 4)));
}

TEST_CASE("bad weights are errors naming the argument, and the model is left as it was") {
  const auto x = test::uniform<double>(6, 4, 9);
  const auto y = labels_one_hot<double>(6);
  auto model = classifier<double>();
  const auto before = model.get_weights();
  FitOptions<double> options = quiet<double>(1, 4);
  options.sample_weight = Vector<double>::Ones(5);
  CHECK_THROWS_WITH_AS(model.fit(x, y, options),
                       "Sequential::fit: sample_weight has 5 values, expected 6 (one per row of x)", ShapeError);
  Vector<double> negative = Vector<double>::Ones(6);
  negative(4) = -0.5;
  options.sample_weight = negative;
  CHECK_THROWS_WITH_AS(model.fit(x, y, options),
                       "Sequential::fit: sample_weight holds -0.5 at row 4, expected a finite weight >= 0",
                       ValueError);
  options.sample_weight = Vector<double>::Ones(6);
  options.class_weight = {{1, 2.0}};
  CHECK_THROWS_WITH_AS(model.fit(x, y, options),
                       "Sequential::fit: sample_weight and class_weight both given; choose one (as Keras)", ValueError);
  options.sample_weight.reset();
  options.class_weight = {{1, -2.0}};
  CHECK_THROWS_WITH_AS(model.fit(x, y, options),
                       "Sequential::fit: class_weight of class 1 is -2, expected a finite weight >= 0", ValueError);
  FitOptions<double> bad_validation = quiet<double>(1, 4);
  bad_validation.validation_data = ValidationData<double>(x, y, Vector<double>::Ones(2));
  CHECK_THROWS_AS(model.fit(x, y, bad_validation), ShapeError);
  negative(4) = std::nan("");
  CHECK_THROWS_AS(model.train_on_batch(x, y, negative), ValueError);
  CHECK_THROWS_AS(model.evaluate(x, y, Vector<double>::Ones(7)), ShapeError);
  CHECK(bitwise_equal(model.get_weights(), before));
  CHECK(model.optimizer().iterations() == 0);
}
