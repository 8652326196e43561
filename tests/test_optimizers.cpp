#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <minidl/optimizers/adam.hpp>
#include <minidl/optimizers/rmsprop.hpp>
#include <minidl/optimizers/sgd.hpp>
#include <string>
#include <vector>

#include "support.hpp"

using minidl::Index;
using minidl::Optimizer;
using minidl::Vector;
using minidl::test::tolerance;

namespace {

// Two parameter tensors, as a Dense layer's kernel and bias. The second gets
// tiny gradients (~1e-5), where the placement of ε changes the step visibly.
const std::vector<std::vector<double>> initial_values = {{0.5, -1.0, 2.0}, {1.0, -0.25}};
const std::vector<Index> slot_sizes = {3, 2};
constexpr int steps = 5;

double gradient(int step, std::size_t slot, std::size_t i) {
  const double s = step, k = static_cast<double>(i);
  return slot == 0 ? 0.5 * std::sin(1.3 * s + 0.7 * k + 0.2) : 1e-5 * std::cos(0.9 * s + k + 0.4);
}

template <class Scalar>
double as_scalar(double x) {  // what the Scalar optimizer actually sees
  return static_cast<double>(static_cast<Scalar>(x));
}

template <class Scalar>
std::vector<Vector<Scalar>> initial_parameters() {
  std::vector<Vector<Scalar>> theta;
  for (const auto& values : initial_values) {
    Vector<Scalar> v(static_cast<Index>(values.size()));
    for (std::size_t i = 0; i < values.size(); ++i) v[static_cast<Index>(i)] = static_cast<Scalar>(values[i]);
    theta.push_back(v);
  }
  return theta;
}

// One training step through the optimizer interface, as Sequential runs it.
template <class Scalar>
void take_step(Optimizer<Scalar>& opt, std::vector<Vector<Scalar>>& theta, int step) {
  opt.begin_step();
  for (std::size_t slot = 0; slot < theta.size(); ++slot) {
    Vector<Scalar> g(theta[slot].size());
    for (Index i = 0; i < g.size(); ++i) g[i] = static_cast<Scalar>(gradient(step, slot, static_cast<std::size_t>(i)));
    opt.update(slot, {theta[slot].data(), theta[slot].size()}, {g.data(), g.size()});
  }
}

// The reference: one element's update at step t (from 1) with learning rate lr,
// written from the Keras formulas with plain scalars in double. `state` holds
// the element's optimizer state (velocity; or m and v), zero at the start.
using ElementRule = std::function<void(double& theta, double g, double lr, int t, std::array<double, 2>& state)>;

ElementRule keras_sgd(double momentum, bool nesterov) {
  return [=](double& theta, double g, double lr, int, std::array<double, 2>& state) {
    if (momentum == 0) {
      theta = theta - lr * g;
      return;
    }
    double& v = state[0];
    v = momentum * v - lr * g;
    theta = nesterov ? theta + momentum * v - lr * g : theta + v;
  };
}

ElementRule keras_adam(double beta_1, double beta_2, double epsilon) {
  return [=](double& theta, double g, double lr, int t, std::array<double, 2>& state) {
    double& m = state[0];
    double& v = state[1];
    m = beta_1 * m + (1 - beta_1) * g;
    v = beta_2 * v + (1 - beta_2) * g * g;
    const double alpha = lr * std::sqrt(1 - std::pow(beta_2, t)) / (1 - std::pow(beta_1, t));
    theta = theta - alpha * m / (std::sqrt(v) + epsilon);
  };
}

ElementRule keras_rmsprop(double rho, double epsilon) {
  return [=](double& theta, double g, double lr, int, std::array<double, 2>& state) {
    double& v = state[0];
    v = rho * v + (1 - rho) * g * g;
    theta = theta - lr * g / std::sqrt(v + epsilon);
  };
}

// PyTorch's SGD with momentum, for contrast: b ← g at first, then μ·b + g; θ ← θ − lr·b.
ElementRule pytorch_sgd(double momentum) {
  return [=](double& theta, double g, double lr, int t, std::array<double, 2>& state) {
    double& b = state[0];
    b = t == 1 ? g : momentum * b + g;
    theta = theta - lr * b;
  };
}

// The parameters the reference rule reaches after each step, for the
// learning rates `lrs` (one per step).
template <class Scalar>
std::vector<std::vector<std::vector<double>>> reference_run(const ElementRule& rule, const std::vector<double>& lrs) {
  auto theta = initial_values;
  std::vector<std::vector<std::array<double, 2>>> state;
  for (const auto& values : theta) state.emplace_back(values.size(), std::array<double, 2>{0, 0});
  std::vector<std::vector<std::vector<double>>> after_each_step;
  for (int step = 0; step < static_cast<int>(lrs.size()); ++step) {
    for (std::size_t slot = 0; slot < theta.size(); ++slot)
      for (std::size_t i = 0; i < theta[slot].size(); ++i)
        rule(theta[slot][i], as_scalar<Scalar>(gradient(step, slot, i)), as_scalar<Scalar>(lrs[step]), step + 1,
             state[slot][i]);
    after_each_step.push_back(theta);
  }
  return after_each_step;
}

// Runs `opt` for lrs.size() steps, setting the learning rate before each one,
// and compares every parameter with the reference after every step.
template <class Scalar>
void check_against(Optimizer<Scalar>& opt, const ElementRule& rule, const std::vector<double>& lrs) {
  const auto expected = reference_run<Scalar>(rule, lrs);
  opt.build(slot_sizes);
  auto theta = initial_parameters<Scalar>();
  for (int step = 0; step < static_cast<int>(lrs.size()); ++step) {
    opt.set_learning_rate(static_cast<Scalar>(lrs[step]));
    take_step(opt, theta, step);
    CHECK(opt.iterations() == step + 1);
    for (std::size_t slot = 0; slot < theta.size(); ++slot)
      for (Index i = 0; i < theta[slot].size(); ++i)
        CHECK(static_cast<double>(theta[slot][i]) ==
              doctest::Approx(expected[static_cast<std::size_t>(step)][slot][static_cast<std::size_t>(i)])
                  .epsilon(tolerance<Scalar>()));
  }
}

// Learning rates per step: constant, and changed after the second step.
std::vector<double> constant(double lr) { return std::vector<double>(steps, lr); }
std::vector<double> changed(double lr) { return {lr, lr, lr / 5, lr / 5, 3 * lr}; }

template <class Scalar>
std::vector<Vector<Scalar>> run(Optimizer<Scalar>& opt, int count) {
  auto theta = initial_parameters<Scalar>();
  for (int step = 0; step < count; ++step) take_step(opt, theta, step);
  return theta;
}

template <class Scalar>
bool bitwise_equal(const std::vector<Vector<Scalar>>& a, const std::vector<Vector<Scalar>>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t k = 0; k < a.size(); ++k)
    if (a[k].size() != b[k].size() ||
        std::memcmp(a[k].data(), b[k].data(), static_cast<std::size_t>(a[k].size()) * sizeof(Scalar)) != 0)
      return false;
  return true;
}

}  // namespace

TEST_CASE_TEMPLATE("optimizers have the Keras defaults", Scalar, float, double) {
  const minidl::SGD<Scalar> sgd;
  CHECK(std::string(sgd.type()) == "SGD");
  CHECK(sgd.learning_rate() == Scalar(0.01));
  CHECK(sgd.momentum() == Scalar(0));
  CHECK_FALSE(sgd.nesterov());
  const minidl::Adam<Scalar> adam;
  CHECK(std::string(adam.type()) == "Adam");
  CHECK(adam.learning_rate() == Scalar(1e-3));
  CHECK(adam.beta_1() == Scalar(0.9));
  CHECK(adam.beta_2() == Scalar(0.999));
  CHECK(adam.epsilon() == Scalar(1e-7));
  const minidl::RMSprop<Scalar> rmsprop;
  CHECK(std::string(rmsprop.type()) == "RMSprop");
  CHECK(rmsprop.learning_rate() == Scalar(1e-3));
  CHECK(rmsprop.rho() == Scalar(0.9));
  CHECK(rmsprop.epsilon() == Scalar(1e-7));
}

TEST_CASE_TEMPLATE("SGD plain, with momentum and Nesterov follows the Keras formulas", Scalar, float, double) {
  for (const auto& lrs : {constant(0.1), changed(0.1)}) {
    minidl::SGD<Scalar> plain(Scalar(0.1));
    check_against(plain, keras_sgd(0, false), lrs);
    minidl::SGD<Scalar> momentum(Scalar(0.1), Scalar(0.9));
    check_against(momentum, keras_sgd(as_scalar<Scalar>(0.9), false), lrs);
    minidl::SGD<Scalar> nesterov(Scalar(0.1), Scalar(0.9), true);
    check_against(nesterov, keras_sgd(as_scalar<Scalar>(0.9), true), lrs);
  }
}

TEST_CASE("SGD momentum keeps Keras's form after a learning-rate change, not PyTorch's") {
  // With a constant learning rate the two forms agree...
  const auto keras_constant = reference_run<double>(keras_sgd(0.9, false), constant(0.1));
  const auto torch_constant = reference_run<double>(pytorch_sgd(0.9), constant(0.1));
  CHECK(keras_constant.back()[0][0] == doctest::Approx(torch_constant.back()[0][0]).epsilon(1e-12));
  // ...after a change they do not, and minidl follows Keras (checked above).
  const auto keras_changed = reference_run<double>(keras_sgd(0.9, false), changed(0.1));
  const auto torch_changed = reference_run<double>(pytorch_sgd(0.9), changed(0.1));
  minidl::SGD<double> sgd(0.1, 0.9);
  sgd.build(slot_sizes);
  auto theta = initial_parameters<double>();
  const auto lrs = changed(0.1);
  for (int step = 0; step < steps; ++step) {
    sgd.set_learning_rate(lrs[static_cast<std::size_t>(step)]);
    take_step(sgd, theta, step);
  }
  CHECK(theta[0][0] == doctest::Approx(keras_changed.back()[0][0]).epsilon(1e-12));
  CHECK(std::abs(theta[0][0] - torch_changed.back()[0][0]) > 1e-3);
}

TEST_CASE_TEMPLATE("Adam follows the Keras formulas", Scalar, float, double) {
  for (const auto& lrs : {constant(1e-3), changed(1e-3)}) {
    minidl::Adam<Scalar> defaults;
    check_against(defaults, keras_adam(as_scalar<Scalar>(0.9), as_scalar<Scalar>(0.999), as_scalar<Scalar>(1e-7)), lrs);
    minidl::Adam<Scalar> custom(Scalar(0.01), Scalar(0.8), Scalar(0.99), Scalar(1e-6));
    check_against(custom, keras_adam(as_scalar<Scalar>(0.8), as_scalar<Scalar>(0.99), as_scalar<Scalar>(1e-6)), lrs);
  }
}

TEST_CASE_TEMPLATE("RMSprop follows the Keras formula, epsilon inside the square root", Scalar, float, double) {
  for (const auto& lrs : {constant(1e-3), changed(1e-3)}) {
    minidl::RMSprop<Scalar> defaults;
    check_against(defaults, keras_rmsprop(as_scalar<Scalar>(0.9), as_scalar<Scalar>(1e-7)), lrs);
    minidl::RMSprop<Scalar> custom(Scalar(0.01), Scalar(0.5), Scalar(1e-6));
    check_against(custom, keras_rmsprop(as_scalar<Scalar>(0.5), as_scalar<Scalar>(1e-6)), lrs);
  }
}

TEST_CASE_TEMPLATE("invalid hyper-parameters throw ValueError naming optimizer and argument", Scalar, float, double) {
  using minidl::ValueError;
  CHECK_THROWS_WITH_AS((void)minidl::SGD<Scalar>(Scalar(0)), "SGD: learning_rate must be a finite number > 0, got 0",
                       ValueError);
  CHECK_THROWS_WITH_AS((void)minidl::SGD<Scalar>(Scalar(0.1), Scalar(1)), "SGD: momentum must be in [0, 1), got 1",
                       ValueError);
  CHECK_THROWS_WITH_AS((void)minidl::SGD<Scalar>(Scalar(0.1), Scalar(-0.5)),
                       "SGD: momentum must be in [0, 1), got -0.5",
                       ValueError);
  CHECK_THROWS_AS((void)minidl::SGD<Scalar>(std::numeric_limits<Scalar>::quiet_NaN()), ValueError);
  CHECK_THROWS_WITH_AS((void)minidl::Adam<Scalar>(Scalar(1e-3), Scalar(1)), "Adam: beta_1 must be in [0, 1), got 1",
                       ValueError);
  CHECK_THROWS_WITH_AS((void)minidl::Adam<Scalar>(Scalar(1e-3), Scalar(0.9), Scalar(1.5)),
                       "Adam: beta_2 must be in [0, 1), got 1.5", ValueError);
  CHECK_THROWS_WITH_AS((void)minidl::Adam<Scalar>(Scalar(1e-3), Scalar(0.9), Scalar(0.999), Scalar(0)),
                       "Adam: epsilon must be a finite number > 0, got 0", ValueError);
  CHECK_THROWS_WITH_AS((void)minidl::Adam<Scalar>(Scalar(-1)),
                       "Adam: learning_rate must be a finite number > 0, got -1",
                       ValueError);
  CHECK_THROWS_WITH_AS((void)minidl::RMSprop<Scalar>(Scalar(1e-3), Scalar(1)), "RMSprop: rho must be in [0, 1), got 1",
                       ValueError);
  CHECK_THROWS_WITH_AS((void)minidl::RMSprop<Scalar>(Scalar(1e-3), Scalar(0.9), Scalar(-1)),
                       "RMSprop: epsilon must be a finite number > 0, got -1", ValueError);
  CHECK_THROWS_AS((void)minidl::RMSprop<Scalar>(std::numeric_limits<Scalar>::infinity()), ValueError);
  // boundaries that are allowed
  CHECK_NOTHROW((void)minidl::Adam<Scalar>(Scalar(1e-3), Scalar(0), Scalar(0)));
  CHECK_NOTHROW((void)minidl::RMSprop<Scalar>(Scalar(1e-3), Scalar(0)));

  minidl::Adam<Scalar> adam(Scalar(0.5));
  CHECK_THROWS_AS(adam.set_learning_rate(Scalar(0)), ValueError);
  CHECK(adam.learning_rate() == Scalar(0.5));  // a failed call changes nothing
}

TEST_CASE_TEMPLATE("update in the wrong order or with wrong sizes is an error that changes nothing", Scalar, float,
                   double) {
  minidl::SGD<Scalar> plain(Scalar(0.1));
  minidl::SGD<Scalar> momentum(Scalar(0.1), Scalar(0.5));
  minidl::Adam<Scalar> adam;
  minidl::RMSprop<Scalar> rmsprop;
  for (Optimizer<Scalar>* opt : std::initializer_list<Optimizer<Scalar>*>{&plain, &momentum, &adam, &rmsprop}) {
    CAPTURE(opt->type());
    const std::string type = opt->type();
    Vector<Scalar> value = Vector<Scalar>::Constant(3, Scalar(1));
    Vector<Scalar> grad = Vector<Scalar>::Constant(3, Scalar(0.5));
    const Vector<Scalar> saved = value;
    auto update = [&](std::size_t slot, Index value_size, Index grad_size) {
      opt->update(slot, {value.data(), value_size}, {grad.data(), grad_size});
    };
    CHECK_THROWS_WITH_AS(update(0, 3, 3),
                         (type + ": update() before build(); build() (which compile() calls) allocates the optimizer "
                                 "state").c_str(),
                         minidl::StateError);
    opt->build(slot_sizes);
    CHECK_THROWS_WITH_AS(update(0, 3, 3),
                         (type + ": update() before begin_step(); call begin_step() once per training step, before "
                                 "that step's updates").c_str(),
                         minidl::StateError);
    opt->begin_step();
    CHECK_THROWS_WITH_AS(update(2, 3, 3), (type + ": update() of slot 2, but build() made 2 slots").c_str(),
                         minidl::StateError);
    CHECK_THROWS_WITH_AS(update(1, 3, 3),
                         (type + ": slot 1 was built for a parameter of 2 values, got one of 3").c_str(),
                         minidl::ShapeError);
    CHECK_THROWS_WITH_AS(update(0, 3, 2),
                         (type + ": slot 0: the gradient has 2 values, expected 3 (the parameter's size)").c_str(),
                         minidl::ShapeError);
    CHECK(value == saved);
    // The failed calls left the state untouched: the next step is a first step.
    update(0, 3, 3);
    Vector<Scalar> fresh_value = saved;
    auto fresh = opt->clone();
    fresh->build(slot_sizes);
    fresh->begin_step();
    fresh->update(0, {fresh_value.data(), 3}, {grad.data(), 3});
    CHECK(value == fresh_value);
    CHECK(value != saved);
  }
}

TEST_CASE_TEMPLATE("clone copies hyper-parameters, step count and state, and is independent", Scalar, float, double) {
  minidl::SGD<Scalar> sgd(Scalar(0.1), Scalar(0.9), true);
  minidl::Adam<Scalar> adam(Scalar(0.01));
  minidl::RMSprop<Scalar> rmsprop(Scalar(0.01));
  for (Optimizer<Scalar>* opt : std::initializer_list<Optimizer<Scalar>*>{&sgd, &adam, &rmsprop}) {
    CAPTURE(opt->type());
    opt->build(slot_sizes);
    opt->set_learning_rate(Scalar(0.02));
    auto theta = run(*opt, 3);
    auto copy = opt->clone();
    CHECK(std::string(copy->type()) == opt->type());
    CHECK(copy->learning_rate() == Scalar(0.02));
    CHECK(copy->iterations() == 3);

    // The copy takes one more step first; had it shared state with the
    // original, the original's next step would differ from the copy's.
    auto theta_copy = theta;
    take_step(*copy, theta_copy, 3);
    take_step(*opt, theta, 3);
    CHECK(bitwise_equal(theta, theta_copy));

    // An optimizer with zeroed state does not reproduce the next step: the
    // copied state is what made the two agree.
    auto rebuilt = opt->clone();
    rebuilt->build(slot_sizes);
    auto theta_rebuilt = theta;
    take_step(*rebuilt, theta_rebuilt, 4);
    auto theta_next = theta;
    take_step(*opt, theta_next, 4);
    CHECK_FALSE(bitwise_equal(theta_next, theta_rebuilt));
  }
}

TEST_CASE_TEMPLATE("same inputs give bitwise the same outputs, and build() resets", Scalar, float, double) {
  auto check_repeatable = [](Optimizer<Scalar>& a, Optimizer<Scalar>& b) {
    a.build(slot_sizes);
    b.build(slot_sizes);
    const auto first = run(a, steps);
    CHECK(bitwise_equal(first, run(b, steps)));
    // Rebuilding zeroes the state and the step count: the run repeats exactly.
    a.build(slot_sizes);
    CHECK(a.iterations() == 0);
    CHECK(bitwise_equal(first, run(a, steps)));
  };
  minidl::SGD<Scalar> s1(Scalar(0.05), Scalar(0.9), true), s2(Scalar(0.05), Scalar(0.9), true);
  check_repeatable(s1, s2);
  minidl::Adam<Scalar> a1, a2;
  check_repeatable(a1, a2);
  minidl::RMSprop<Scalar> r1, r2;
  check_repeatable(r1, r2);
}
