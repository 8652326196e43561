// Optimizer::state() and set_state(): a fresh model given a trained one's
// weights and optimizer state takes the same next steps, bit for bit; a state
// that does not fit is refused and changes nothing.
#include <doctest/doctest.h>

#include <minidl/minidl.hpp>
#include <string>
#include <vector>

#include "support.hpp"

using minidl::Index;
using minidl::Matrix;
using minidl::OptimizerState;
using minidl::Sequential;
using minidl::Vector;
using minidl::test::bitwise_equal;

namespace {

template <class Scalar>
Sequential<Scalar> small_model(Index hidden = 5) {
  Sequential<Scalar> model(3);
  model.add(minidl::Dense<Scalar>(4, hidden, minidl::Activation::relu));
  model.add(minidl::Dense<Scalar>(2));
  return model;
}

template <class Scalar>
bool same_state(const OptimizerState<Scalar>& a, const OptimizerState<Scalar>& b) {
  return a.type == b.type && a.iterations == b.iterations && a.learning_rate == b.learning_rate &&
         bitwise_equal(a.slots, b.slots);
}

}  // namespace

TEST_CASE_TEMPLATE("an optimizer state copied into a fresh model continues the run bit for bit", Scalar, float,
                   double) {
  const Matrix<Scalar> x = minidl::test::uniform<Scalar>(8, 4, 1);
  const Matrix<Scalar> y = minidl::test::uniform<Scalar>(8, 2, 2);
  const auto check = [&](const auto& optimizer, std::size_t vectors_per_slot) {
    Sequential<Scalar> trained = small_model<Scalar>();
    trained.compile(minidl::MeanSquaredError{}, optimizer);
    for (int i = 0; i < 3; ++i) trained.train_on_batch(x, y);
    const OptimizerState<Scalar> state = trained.optimizer().state();
    CHECK(state.iterations == 3);
    CHECK(state.slots.size() == 4 * vectors_per_slot);  // kernel, bias of two layers
    bool moved = false;
    for (const auto& v : state.slots) moved = moved || v.cwiseAbs().maxCoeff() > 0;
    CHECK(moved);

    Sequential<Scalar> resumed = small_model<Scalar>(5);
    resumed.compile(minidl::MeanSquaredError{}, optimizer);
    resumed.set_weights(trained.get_weights());
    resumed.optimizer().set_state(state);
    CHECK(same_state(resumed.optimizer().state(), state));
    for (int i = 0; i < 2; ++i) CHECK(resumed.train_on_batch(x, y) == trained.train_on_batch(x, y));
    CHECK(bitwise_equal(resumed.get_weights(), trained.get_weights()));
    CHECK(same_state(resumed.optimizer().state(), trained.optimizer().state()));

    // Without the state, the fresh optimizer (step 1 again, zero moments) steps differently.
    Sequential<Scalar> restarted = small_model<Scalar>(5);
    restarted.compile(minidl::MeanSquaredError{}, optimizer);
    restarted.set_weights(trained.get_weights());
    restarted.train_on_batch(x, y);
    trained.train_on_batch(x, y);
    CHECK_FALSE(bitwise_equal(restarted.get_weights(), trained.get_weights()));
  };
  SUBCASE("Adam") { check(minidl::Adam<Scalar>(Scalar(0.01)), 2); }
  SUBCASE("Adam with amsgrad") {
    check(minidl::Adam<Scalar>(Scalar(0.01), Scalar(0.9), Scalar(0.999), Scalar(1e-7), true), 3);
  }
  SUBCASE("SGD with momentum") { check(minidl::SGD<Scalar>(Scalar(0.05), Scalar(0.9)), 1); }
  SUBCASE("RMSprop") { check(minidl::RMSprop<Scalar>(Scalar(0.01)), 1); }
  SUBCASE("a scheduled Adam: the schedule needs only the step count") {
    check(minidl::Adam<Scalar>(minidl::ExponentialDecay<Scalar>(Scalar(0.01), Scalar(2), Scalar(0.5))), 2);
  }
}

TEST_CASE_TEMPLATE("set_state restores a changed constant learning rate", Scalar, float, double) {
  Sequential<Scalar> a = small_model<Scalar>();
  a.compile(minidl::MeanSquaredError{}, minidl::Adam<Scalar>(Scalar(0.01)));
  a.optimizer().set_learning_rate(Scalar(0.25));  // as ReduceLROnPlateau would
  Sequential<Scalar> b = small_model<Scalar>();
  b.compile(minidl::MeanSquaredError{}, minidl::Adam<Scalar>(Scalar(0.01)));
  b.optimizer().set_state(a.optimizer().state());
  CHECK(b.optimizer().learning_rate() == Scalar(0.25));
}

TEST_CASE_TEMPLATE("a state that does not fit is refused and changes nothing", Scalar, float, double) {
  const Matrix<Scalar> x = minidl::test::uniform<Scalar>(8, 4, 1);
  const Matrix<Scalar> y = minidl::test::uniform<Scalar>(8, 2, 2);
  Sequential<Scalar> source = small_model<Scalar>();
  source.compile(minidl::MeanSquaredError{}, minidl::Adam<Scalar>(Scalar(0.01)));
  source.train_on_batch(x, y);
  const OptimizerState<Scalar> good = source.optimizer().state();

  Sequential<Scalar> target = small_model<Scalar>();
  target.compile(minidl::MeanSquaredError{}, minidl::Adam<Scalar>(Scalar(0.01)));
  target.train_on_batch(x, y);
  target.train_on_batch(x, y);
  const OptimizerState<Scalar> before = target.optimizer().state();
  const auto refused = [&](OptimizerState<Scalar> bad, const std::string& expected) {
    std::string what;
    try {
      target.optimizer().set_state(bad);
    } catch (const minidl::Error& e) {
      what = e.what();
    }
    CHECK_MESSAGE(what.find(expected) != std::string::npos, what);
    CHECK(same_state(target.optimizer().state(), before));
  };
  SUBCASE("another type") {
    OptimizerState<Scalar> bad = good;
    bad.type = "SGD";
    refused(bad, "Adam: set_state: the state is a SGD optimizer's, expected Adam's");
  }
  SUBCASE("a slot missing") {
    OptimizerState<Scalar> bad = good;
    bad.slots.pop_back();
    refused(bad, "got 7 state vectors, expected 8 (4 slots x 2 per slot)");
  }
  SUBCASE("a slot of another size") {
    OptimizerState<Scalar> bad = good;
    bad.slots[3] = Vector<Scalar>::Zero(6);  // slot 1 (the first bias), its second vector
    refused(bad, "state vector 1 of slot 1 has 6 values, expected 5");
  }
  SUBCASE("a NaN") {
    OptimizerState<Scalar> bad = good;
    bad.slots[5](0) = std::numeric_limits<Scalar>::quiet_NaN();
    refused(bad, "state vector 1 of slot 2 holds a NaN or infinite value");
  }
  SUBCASE("a negative step count") {
    OptimizerState<Scalar> bad = good;
    bad.iterations = -1;
    refused(bad, "iterations must be >= 0, got -1");
  }
  SUBCASE("no learning rate for a constant-rate optimizer") {
    OptimizerState<Scalar> bad = good;
    bad.learning_rate.reset();
    refused(bad, "the state has no learning rate");
  }
  SUBCASE("a learning rate <= 0") {
    OptimizerState<Scalar> bad = good;
    bad.learning_rate = Scalar(-1);
    refused(bad, "learning_rate");
  }
  SUBCASE("a constant rate for a scheduled optimizer") {
    Sequential<Scalar> scheduled = small_model<Scalar>();
    scheduled.compile(minidl::MeanSquaredError{},
                      minidl::Adam<Scalar>(minidl::ExponentialDecay<Scalar>(Scalar(0.01), Scalar(2), Scalar(0.5))));
    CHECK_THROWS_WITH_AS(scheduled.optimizer().set_state(good),
                         doctest::Contains("follows the schedule ExponentialDecay"), minidl::ValueError);
    CHECK(scheduled.optimizer().iterations() == 0);
  }
  SUBCASE("before build") {
    minidl::Adam<Scalar> unbuilt(Scalar(0.01));
    CHECK_THROWS_AS(unbuilt.set_state(good), minidl::StateError);
  }
}
