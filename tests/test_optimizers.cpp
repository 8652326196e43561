#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <minidl/minidl.hpp>
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
// the element's optimizer state (velocity; or m, v and v̂), zero at the start.
using ElementRule = std::function<void(double& theta, double g, double lr, int t, std::array<double, 3>& state)>;

ElementRule keras_sgd(double momentum, bool nesterov) {
  return [=](double& theta, double g, double lr, int, std::array<double, 3>& state) {
    if (momentum == 0) {
      theta = theta - lr * g;
      return;
    }
    double& v = state[0];
    v = momentum * v - lr * g;
    theta = nesterov ? theta + momentum * v - lr * g : theta + v;
  };
}

ElementRule keras_adam(double beta_1, double beta_2, double epsilon, bool amsgrad = false) {
  return [=](double& theta, double g, double lr, int t, std::array<double, 3>& state) {
    double& m = state[0];
    double& v = state[1];
    double& v_hat = state[2];
    m = beta_1 * m + (1 - beta_1) * g;
    v = beta_2 * v + (1 - beta_2) * g * g;
    v_hat = std::max(v_hat, v);
    const double alpha = lr * std::sqrt(1 - std::pow(beta_2, t)) / (1 - std::pow(beta_1, t));
    theta = theta - alpha * m / (std::sqrt(amsgrad ? v_hat : v) + epsilon);
  };
}

ElementRule keras_rmsprop(double rho, double epsilon, double momentum = 0, bool centered = false) {
  return [=](double& theta, double g, double lr, int, std::array<double, 3>& state) {
    double& v = state[0];
    double& s = state[1];  // momentum
    double& a = state[2];  // mean gradient
    v = rho * v + (1 - rho) * g * g;
    a = rho * a + (1 - rho) * g;
    const double increment = lr * g / std::sqrt(centered ? v - a * a + epsilon : v + epsilon);
    s = momentum * s + increment;
    theta = momentum > 0 ? theta - s : theta - increment;
  };
}

// Keras's decoupled weight decay before `rule`: θ ← θ − θ·wd·lr.
ElementRule with_weight_decay(double weight_decay, const ElementRule& rule) {
  return [=](double& theta, double g, double lr, int t, std::array<double, 3>& state) {
    theta = theta - theta * weight_decay * lr;
    rule(theta, g, lr, t, state);
  };
}

// PyTorch's SGD with momentum, for contrast: b ← g at first, then μ·b + g; θ ← θ − lr·b.
ElementRule pytorch_sgd(double momentum) {
  return [=](double& theta, double g, double lr, int t, std::array<double, 3>& state) {
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
  std::vector<std::vector<std::array<double, 3>>> state;
  for (const auto& values : theta) state.emplace_back(values.size(), std::array<double, 3>{0, 0, 0});
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

// ---- Keras 3 parity: the variants, weight decay, clipping, schedules --------

namespace {

// One step on a single tensor, as Sequential runs it (the global norm first).
template <class Scalar>
void step_one(Optimizer<Scalar>& opt, Vector<Scalar>& theta, const Vector<Scalar>& g, std::string_view name = {}) {
  opt.begin_step();
  if (opt.needs_global_norm()) opt.add_to_global_norm({g.data(), g.size()});
  opt.update(0, {theta.data(), theta.size()}, {g.data(), g.size()}, name);
}

template <class Scalar>
Vector<Scalar> vector_of(std::initializer_list<double> values) {
  Vector<Scalar> v(static_cast<Index>(values.size()));
  Index i = 0;
  for (double x : values) v[i++] = static_cast<Scalar>(x);
  return v;
}

// numpy's allclose, the comparison of Keras's assertAllClose: |a − e| <= atol + rtol·|e|.
template <class Scalar>
void check_all_close(const Vector<Scalar>& actual, const std::vector<double>& expected, double rtol, double atol) {
  REQUIRE(actual.size() == static_cast<Index>(expected.size()));
  for (Index i = 0; i < actual.size(); ++i) {
    const double e = expected[static_cast<std::size_t>(i)];
    CAPTURE(i);
    CAPTURE(e);
    CHECK(std::abs(static_cast<double>(actual[i]) - e) <= atol + rtol * std::abs(e));
  }
}

// Keras's test_correctness_with_golden (adam_test.py, adamw_test.py,
// rmsprop_test.py, sgd_test.py): x = ones(10); one step with gradient 0.01,
// then, before each of five steps with gradient (0.1, 0.2, ..., 1.0), x must
// be the golden row (Keras's tolerance, rtol = atol = 5e-4: the rows have four digits).
template <class Scalar>
void check_keras_golden(Optimizer<Scalar>& opt, const std::vector<std::vector<double>>& golden) {
  opt.build({10});
  Vector<Scalar> x = Vector<Scalar>::Ones(10);
  Vector<Scalar> grads(10);
  for (Index i = 0; i < 10; ++i) grads[i] = static_cast<Scalar>(0.1 * static_cast<double>(i + 1));
  step_one(opt, x, Vector<Scalar>(Vector<Scalar>::Constant(10, Scalar(0.01))));
  for (const auto& row : golden) {
    check_all_close(x, row.size() == 1 ? std::vector<double>(10, row[0]) : row, 5e-4, 5e-4);
    step_one(opt, x, grads);
  }
}

}  // namespace

TEST_CASE_TEMPLATE("Keras's golden values: Adam amsgrad, AdamW, RMSprop centered, SGD nesterov", Scalar, float,
                   double) {
  minidl::Adam<Scalar> amsgrad(Scalar(1e-3), Scalar(0.9), Scalar(0.999), Scalar(1e-7), true);
  check_keras_golden<Scalar>(amsgrad, {{0.999}, {0.9982}, {0.9974}, {0.9965}, {0.9955}});
  minidl::AdamW<Scalar> adamw(Scalar(1), Scalar(0.5), Scalar(0.9), Scalar(0.999), Scalar(2));
  check_keras_golden<Scalar>(
      adamw, {{0.4998, 0.4998, 0.4998, 0.4998, 0.4998, 0.4998, 0.4998, 0.4998, 0.4998, 0.4998},
              {0.2486, 0.2475, 0.2463, 0.2451, 0.244, 0.2428, 0.2417, 0.2405, 0.2394, 0.2382},
              {0.1223, 0.1198, 0.1174, 0.1149, 0.1124, 0.11, 0.1075, 0.1051, 0.1027, 0.1003},
              {0.0586, 0.0549, 0.0512, 0.0475, 0.0439, 0.0402, 0.0366, 0.033, 0.0294, 0.0258},
              {0.0263, 0.0215, 0.0167, 0.012, 0.0073, 0.0026, -0.0021, -0.0067, -0.0113, -0.0159}});
  minidl::RMSprop<Scalar> centered(Scalar(1e-3), Scalar(0.9), Scalar(1e-7), Scalar(0), true);
  check_keras_golden<Scalar>(centered, {{0.9967}, {0.9933}, {0.9908}, {0.9885}, {0.9864}});
  minidl::SGD<Scalar> nesterov(Scalar(0.01), Scalar(0), true);
  check_keras_golden<Scalar>(
      nesterov, {{0.9999}, {0.9989, 0.9979, 0.9969, 0.9959, 0.9949, 0.9939, 0.9929, 0.9919, 0.9909, 0.9899},
                 {0.9979, 0.9959, 0.9939, 0.9919, 0.9899, 0.9879, 0.9859, 0.9839, 0.9819, 0.9799},
                 {0.9969, 0.9939, 0.9909, 0.9879, 0.9849, 0.9819, 0.9789, 0.9759, 0.9729, 0.9699},
                 {0.9959, 0.9919, 0.9879, 0.9839, 0.9799, 0.9759, 0.9719, 0.9679, 0.9639, 0.9599}});
}

TEST_CASE_TEMPLATE("Keras's single steps: SGD, Adam, AdamW, RMSprop at lr 0.5", Scalar, float, double) {
  // test_single_step of each Keras optimizer: x = (1, 2, 3, 4), g = (1, 6, 7, 2), Keras's rtol = atol = 1e-4.
  const auto g = vector_of<Scalar>({1, 6, 7, 2});
  auto run_one = [&](Optimizer<Scalar>&& opt, const std::vector<double>& expected) {
    CAPTURE(opt.type());
    opt.build({4});
    auto x = vector_of<Scalar>({1, 2, 3, 4});
    step_one(opt, x, g);
    check_all_close(x, expected, 1e-4, 1e-4);
  };
  run_one(minidl::SGD<Scalar>(Scalar(0.5)), {0.5, -1.0, -0.5, 3.0});
  run_one(minidl::Adam<Scalar>(Scalar(0.5)), {0.5, 1.5, 2.5, 3.5});
  run_one(minidl::AdamW<Scalar>(Scalar(0.5)), {0.4980, 1.4960, 2.494, 3.492});
  run_one(minidl::RMSprop<Scalar>(Scalar(0.5)), {-0.5811, 0.4189, 1.4189, 2.4189});
}

TEST_CASE_TEMPLATE("AMSGrad, RMSprop momentum and centered, weight decay follow the Keras formulas", Scalar, float,
                   double) {
  const auto s = [](double x) { return as_scalar<Scalar>(x); };
  for (const auto& lrs : {constant(1e-2), changed(1e-2)}) {
    minidl::Adam<Scalar> amsgrad(Scalar(1e-2), Scalar(0.8), Scalar(0.99), Scalar(1e-6), true);
    check_against(amsgrad, keras_adam(s(0.8), s(0.99), s(1e-6), true), lrs);
    minidl::RMSprop<Scalar> momentum(Scalar(1e-2), Scalar(0.8), Scalar(1e-6), Scalar(0.5));
    check_against(momentum, keras_rmsprop(s(0.8), s(1e-6), s(0.5)), lrs);
    minidl::RMSprop<Scalar> centered(Scalar(1e-2), Scalar(0.8), Scalar(1e-6), Scalar(0), true);
    check_against(centered, keras_rmsprop(s(0.8), s(1e-6), 0, true), lrs);
    minidl::RMSprop<Scalar> both(Scalar(1e-2), Scalar(0.8), Scalar(1e-6), Scalar(0.5), true);
    check_against(both, keras_rmsprop(s(0.8), s(1e-6), s(0.5), true), lrs);
    // Weight decay on every optimizer: θ·wd·lr off first, then the rule.
    auto adamw = minidl::AdamW<Scalar>(Scalar(1e-2), Scalar(0.5));
    check_against(adamw, with_weight_decay(s(0.5), keras_adam(s(0.9), s(0.999), s(1e-7))), lrs);
    auto sgd = minidl::SGD<Scalar>(Scalar(1e-2), Scalar(0.9), true).set_weight_decay(Scalar(0.25));
    check_against(sgd, with_weight_decay(s(0.25), keras_sgd(s(0.9), true)), lrs);
    auto rmsprop = minidl::RMSprop<Scalar>(Scalar(1e-2)).set_weight_decay(Scalar(0.25));
    check_against(rmsprop, with_weight_decay(s(0.25), keras_rmsprop(s(0.9), s(1e-7))), lrs);
  }
}

TEST_CASE_TEMPLATE("weight decay and exclude_from_weight_decay, as Keras's test_weight_decay", Scalar, float, double) {
  // Keras: var1 = 2, zero gradients, lr 1, wd 0.004, applied by three optimizers: 2·0.996³ = 1.9760959; the
  // variable named "exclude" stays 2 (assertAlmostEqual to 6 decimals).
  auto keras_test = [](auto make) {
    Vector<Scalar> var1 = Vector<Scalar>::Constant(1, Scalar(2)), var2 = var1;
    const Vector<Scalar> zero = Vector<Scalar>::Zero(1);
    for (int k = 0; k < 3; ++k) {
      auto opt = make();
      CAPTURE(opt.type());
      opt.exclude_from_weight_decay({"exclude"});
      opt.build({1, 1});
      opt.begin_step();
      opt.update(0, {var1.data(), 1}, {zero.data(), 1}, "var1");
      opt.update(1, {var2.data(), 1}, {zero.data(), 1}, "dense/exclude_me");  // a substring matches
    }
    CHECK(std::abs(static_cast<double>(var1[0]) - 1.9760959) < 1.5e-6);
    CHECK(var2[0] == Scalar(2));
  };
  keras_test([] { return minidl::SGD<Scalar>(Scalar(1)).set_weight_decay(Scalar(0.004)); });
  keras_test([] { return minidl::Adam<Scalar>(Scalar(1)).set_weight_decay(Scalar(0.004)); });
  keras_test([] { return minidl::AdamW<Scalar>(Scalar(1)); });  // 0.004 is AdamW's default
  keras_test([] { return minidl::RMSprop<Scalar>(Scalar(1)).set_weight_decay(Scalar(0.004)); });

  CHECK_FALSE(minidl::Adam<Scalar>().weight_decay());  // Keras's None
  CHECK(*minidl::AdamW<Scalar>().weight_decay() == Scalar(0.004));
  CHECK(std::string(minidl::AdamW<Scalar>().type()) == "AdamW");
  const auto excluding = minidl::AdamW<Scalar>().exclude_from_weight_decay({"bias", "gamma", "beta"});
  CHECK(excluding.excluded_from_weight_decay() == std::vector<std::string>{"bias", "gamma", "beta"});
}

TEST_CASE_TEMPLATE("clipnorm, clipvalue and global_clipnorm, as Keras's clipping tests", Scalar, float, double) {
  // Plain SGD at lr 1 from θ = 0 makes θ the negated clipped gradient.
  auto clipped = [](minidl::SGD<Scalar> opt, const std::vector<Vector<Scalar>>& grads) {
    std::vector<Index> sizes;
    for (const auto& g : grads) sizes.push_back(g.size());
    opt.build(sizes);
    opt.begin_step();
    if (opt.needs_global_norm())
      for (const auto& g : grads) opt.add_to_global_norm({g.data(), g.size()});
    std::vector<Vector<Scalar>> out;
    for (std::size_t k = 0; k < grads.size(); ++k) {
      Vector<Scalar> theta = Vector<Scalar>::Zero(grads[k].size());
      opt.update(k, {theta.data(), theta.size()}, {grads[k].data(), grads[k].size()});
      out.push_back(-theta);
    }
    return out;
  };
  const minidl::SGD<Scalar> sgd(Scalar(1));
  const double half_sqrt2 = std::sqrt(2.0) / 2;
  // Keras's test_clip_norm, test_clip_value, test_global_clip_norm (assertAllClose: rtol = atol = 1e-6).
  check_all_close(clipped(minidl::SGD<Scalar>(sgd).set_clipnorm(1), {vector_of<Scalar>({100, 100})})[0],
                  {half_sqrt2, half_sqrt2}, 1e-6, 1e-6);
  check_all_close(clipped(minidl::SGD<Scalar>(sgd).set_clipvalue(1), {vector_of<Scalar>({100, -100, 0.5})})[0],
                  {1, -1, 0.5}, 1e-6, 1e-6);
  const double norm = std::sqrt(50.0 * 50.0 + 100.0 * 100.0);
  check_all_close(clipped(minidl::SGD<Scalar>(sgd).set_global_clipnorm(1), {vector_of<Scalar>({50, 100})})[0],
                  {50 / norm, 100 / norm}, 1e-6, 1e-6);
  // clipnorm is per tensor; global_clipnorm scales all the step's gradients by c/‖all‖ (‖(3, 4)‖ = 5).
  const std::vector<Vector<Scalar>> two = {vector_of<Scalar>({3}), vector_of<Scalar>({4})};
  const auto per_tensor = clipped(minidl::SGD<Scalar>(sgd).set_clipnorm(1), two);
  CHECK(per_tensor[0][0] == doctest::Approx(1).epsilon(tolerance<Scalar>()));
  CHECK(per_tensor[1][0] == doctest::Approx(1).epsilon(tolerance<Scalar>()));
  const auto global = clipped(minidl::SGD<Scalar>(sgd).set_global_clipnorm(1), two);
  CHECK(global[0][0] == doctest::Approx(0.6).epsilon(tolerance<Scalar>()));
  CHECK(global[1][0] == doctest::Approx(0.8).epsilon(tolerance<Scalar>()));
  // Below the threshold nothing changes (to rounding: Keras computes g·c/c), and a zero gradient stays zero.
  const auto small = clipped(minidl::SGD<Scalar>(sgd).set_global_clipnorm(10), two);
  CHECK(small[1][0] == doctest::Approx(4).epsilon(tolerance<Scalar>()));
  CHECK(clipped(minidl::SGD<Scalar>(sgd).set_clipnorm(1), {vector_of<Scalar>({0, 0})})[0].isZero(0));
  // Keras's clip_by_global_norm makes every gradient NaN when the norm is not finite.
  const auto nan = std::numeric_limits<Scalar>::quiet_NaN();
  const auto poisoned = clipped(minidl::SGD<Scalar>(sgd).set_global_clipnorm(1), {vector_of<Scalar>({1}), two[0]});
  const auto poisoned_nan = clipped(minidl::SGD<Scalar>(sgd).set_global_clipnorm(1),
                                    {Vector<Scalar>(Vector<Scalar>::Constant(1, nan)), two[0]});
  CHECK_FALSE(std::isnan(poisoned[1][0]));
  CHECK(std::isnan(poisoned_nan[1][0]));
  CHECK(std::isnan(clipped(minidl::SGD<Scalar>(sgd).set_clipvalue(1), {Vector<Scalar>::Constant(1, nan)})[0][0]));

  // At most one of the three, as Keras's test_clip_args; the getters say which.
  auto both = minidl::SGD<Scalar>(Scalar(1)).set_clipnorm(Scalar(0.5));
  CHECK_THROWS_WITH_AS(both.set_clipvalue(Scalar(0.5)),
                       "SGD: only one of clipnorm, clipvalue and global_clipnorm can be set; clipnorm is 0.5, got "
                       "clipvalue = 0.5",
                       minidl::ValueError);
  CHECK_THROWS_AS(both.set_global_clipnorm(Scalar(0.5)), minidl::ValueError);
  CHECK(*both.clipnorm() == Scalar(0.5));
  CHECK_FALSE(both.clipvalue());
  CHECK_FALSE(both.global_clipnorm());
  CHECK(*both.set_clipnorm(Scalar(2)).clipnorm() == Scalar(2));  // the same kind again replaces it

  // global_clipnorm needs the norm before the first update of the step, and only then.
  auto opt = minidl::SGD<Scalar>(Scalar(1)).set_global_clipnorm(Scalar(1));
  opt.build({1});
  Vector<Scalar> theta = Vector<Scalar>::Zero(1);
  const Vector<Scalar> g = Vector<Scalar>::Ones(1);
  CHECK_THROWS_AS(opt.add_to_global_norm({g.data(), 1}), minidl::StateError);  // before begin_step
  opt.begin_step();
  CHECK_THROWS_WITH_AS(opt.update(0, {theta.data(), 1}, {g.data(), 1}),
                       "SGD: update() with global_clipnorm before add_to_global_norm(); pass every gradient of the "
                       "step to add_to_global_norm() first",
                       minidl::StateError);
  CHECK(theta[0] == Scalar(0));
  opt.add_to_global_norm({g.data(), 1});
  opt.update(0, {theta.data(), 1}, {g.data(), 1});
  CHECK_THROWS_AS(opt.add_to_global_norm({g.data(), 1}), minidl::StateError);
}

TEST_CASE_TEMPLATE("learning-rate schedules give Keras's values (learning_rate_schedule_test.py)", Scalar, float,
                   double) {
  using namespace minidl;
  // Keras's assertAllClose(actual, expected, 1e-6): rtol = atol = 1e-6.
  auto close = [](Scalar actual, double expected) {
    CAPTURE(expected);
    CHECK(std::abs(static_cast<double>(actual) - expected) <= 1e-6 + 1e-6 * std::abs(expected));
  };
  close(ExponentialDecay<Scalar>(0.05, 10, 0.96)(5), 0.05 * std::pow(0.96, 0.5));
  const ExponentialDecay<Scalar> stairs(0.1, 3, 0.96, true);
  close(stairs(1), 0.1);
  close(stairs(2), 0.1);
  close(stairs(100), 0.1 * std::pow(0.96, 33));

  const PiecewiseConstantDecay<Scalar> piecewise({100, 110, 120}, {1.0, 0.1, 0.01, 0.001});
  for (auto [step, lr] : std::vector<std::pair<int, double>>{
           {-999, 1.0}, {100, 1.0}, {105, 0.1}, {110, 0.1}, {120, 0.01}, {999, 0.001}})
    close(piecewise(step), lr);
  const PiecewiseConstantDecay<Scalar> boundary({1, 2, 3}, {0.4, 0.5, 0.6, 0.7});
  for (int step = 0; step <= 4; ++step) close(boundary(step), 0.4 + 0.1 * std::max(0, step - 1));

  // PolynomialDecay: LinearDecayTest and SqrtDecayTest.
  const double lr = 0.05, end = 0.001;
  close(PolynomialDecay<Scalar>(lr, 10, 0)(5), lr * 0.5);
  close(PolynomialDecay<Scalar>(lr, 10, end)(10), end);
  close(PolynomialDecay<Scalar>(lr, 10, end)(5), (lr + end) * 0.5);
  close(PolynomialDecay<Scalar>(lr, 10, end)(15), end);
  close(PolynomialDecay<Scalar>(lr, 10, end, 1, true)(15), (lr - end) * 0.25 + end);
  close(PolynomialDecay<Scalar>(lr, 10, 0, 0.5)(5), lr * std::pow(0.5, 0.5));
  close(PolynomialDecay<Scalar>(lr, 10, end, 0.5)(10), end);
  close(PolynomialDecay<Scalar>(lr, 10, end, 0.5)(5), (lr - end) * std::pow(0.5, 0.5) + end);
  close(PolynomialDecay<Scalar>(lr, 10, end, 0.5)(15), end);
  close(PolynomialDecay<Scalar>(lr, 10, end, 0.5, true)(15), (lr - end) * std::pow(0.25, 0.5) + end);
  close(PolynomialDecay<Scalar>(0.001, 10, 1e-4, 1, true)(0), 0.001);
  close(PolynomialDecay<Scalar>(lr, 10, end, 1, true)(20), end);  // at a multiple: ceil(20/10)·10 = 20, the end
  close(PolynomialDecay<Scalar>(lr, 10, end, 1, true)(21), (lr - end) * (1 - 21.0 / 30) + end);

  for (int i = 0; i <= 10; ++i) {
    close(InverseTimeDecay<Scalar>(0.1, 10, 0.96)(i), 0.1 / (1 + i / 10.0 * 0.96));
    close(InverseTimeDecay<Scalar>(0.1, 10, 0.96, true)(i), 0.1 / (1 + 0.96 * (i / 10)));
  }

  // CosineDecayTest: np_cosine_decay and linear_warmup.
  const double pi = 3.14159265358979323846;
  auto cosine = [pi](double step, double decay_steps, double alpha = 0) {
    step = std::min(step, decay_steps);
    return (1 - alpha) * 0.5 * (1 + std::cos(pi * step / decay_steps)) + alpha;
  };
  for (int step = 0; step < 1500; step += 250) {
    close(CosineDecay<Scalar>(1, 1000)(step), cosine(step, 1000));
    close(CosineDecay<Scalar>(1, 1000, 0.1)(step), cosine(step, 1000, 0.1));
    close(CosineDecay<Scalar>(0, 10, 0, 10, 1500)(step), step / 1500.0 * 10);
  }
  for (int step = 0; step < 3000; step += 250)
    close(CosineDecay<Scalar>(0, 1000, 0, 10, 2000)(step),
          step < 2001 ? step / 2000.0 * 10 : 10 * cosine(step - 2000, 1000));
}

TEST_CASE_TEMPLATE("an optimizer evaluates its schedule at the steps already taken, and refuses set_learning_rate",
                   Scalar, float, double) {
  // Plain SGD with gradient 1 moves θ by −lr: the rates used are schedule(0), schedule(1), ...
  minidl::SGD<Scalar> sgd(minidl::ExponentialDecay<Scalar>(0.1, 1, 0.5));
  REQUIRE(sgd.learning_rate_schedule() != nullptr);
  CHECK(std::string(sgd.learning_rate_schedule()->name()) == "ExponentialDecay");
  sgd.build({1});
  Vector<Scalar> theta = Vector<Scalar>::Zero(1);
  const Vector<Scalar> one = Vector<Scalar>::Ones(1);
  double expected = 0, rate = 0.1;
  for (int step = 0; step < 4; ++step, rate /= 2) {
    CHECK(sgd.learning_rate() == doctest::Approx(rate).epsilon(tolerance<Scalar>()));  // the next step's rate
    step_one(sgd, theta, one);
    expected -= rate;
    CHECK(theta[0] == doctest::Approx(expected).epsilon(tolerance<Scalar>()));
  }
  CHECK_THROWS_WITH_AS(sgd.set_learning_rate(Scalar(0.5)),
                       "SGD: set_learning_rate(0.5): the learning rate follows the schedule ExponentialDecay given to "
                       "the constructor and cannot be set; construct the optimizer with a number as its learning rate "
                       "to set it (LearningRateScheduler and ReduceLROnPlateau need one)",
                       minidl::StateError);
  CHECK(sgd.learning_rate() == doctest::Approx(rate).epsilon(tolerance<Scalar>()));
  // A copy shares the (immutable) schedule and continues from the same step.
  auto copy = sgd.clone();
  CHECK(copy->learning_rate() == sgd.learning_rate());
  CHECK(copy->learning_rate_schedule() == sgd.learning_rate_schedule());
  CHECK(minidl::Adam<Scalar>().learning_rate_schedule() == nullptr);
}

TEST_CASE_TEMPLATE("Keras's test_fit_lr_correctness: Adam with ExponentialDecay through fit", Scalar, float, double) {
  // Dense(2) with ones for kernel and bias, MSE, x = y = arange(32) as 16 x 2, 3 epochs of 4 batches of 4, no
  // shuffling; Keras's losses with its rtol 5e-5.
  minidl::Sequential<Scalar> model;
  model.add(minidl::Dense<Scalar>(2, 2));
  model.compile(minidl::MeanSquaredError{}, minidl::Adam<Scalar>(minidl::ExponentialDecay<Scalar>(0.05, 1, 0.9)));
  model.set_weights({Vector<Scalar>::Ones(4), Vector<Scalar>::Ones(2)});
  minidl::Matrix<Scalar> x(16, 2);
  for (Index i = 0; i < 32; ++i) x(i / 2, i % 2) = static_cast<Scalar>(i);
  minidl::FitOptions<Scalar> options;
  options.batch_size = 4;
  options.epochs = 3;
  options.shuffle = false;
  options.verbose = 0;
  const auto history = model.fit(x, x, options);
  const std::vector<double> keras = {230.79457092285156, 128.30319213867188, 79.33648681640625};
  REQUIRE(history["loss"].size() == 3);
  for (std::size_t e = 0; e < 3; ++e) CHECK(history["loss"][e] == doctest::Approx(keras[e]).epsilon(5e-5));
  CHECK(model.optimizer().iterations() == 12);

  // A callback that sets the learning rate of a scheduled optimizer fails the fit with the optimizer's error
  // (compiled again: at step 0, the callback asks for schedule(0)/2 = 0.025).
  model.compile(minidl::MeanSquaredError{}, minidl::Adam<Scalar>(minidl::ExponentialDecay<Scalar>(0.05, 1, 0.9)));
  auto scheduler = std::make_shared<minidl::LearningRateScheduler<Scalar>>([](int, Scalar lr) { return lr / 2; });
  options.callbacks = {scheduler};
  CHECK_THROWS_WITH_AS(model.fit(x, x, options),
                       "Adam: set_learning_rate(0.025): the learning rate follows the schedule ExponentialDecay given "
                       "to the constructor and cannot be set; construct the optimizer with a number as its learning "
                       "rate to set it (LearningRateScheduler and ReduceLROnPlateau need one)",
                       minidl::StateError);
}

TEST_CASE_TEMPLATE("Sequential passes tensor names: exclude_from_weight_decay({\"bias\"}) leaves biases undecayed",
                   Scalar, float, double) {
  // One step of plain SGD with and without weight decay from the same weights: the kernels differ by exactly
  // θ·wd·lr, the biases (excluded) not at all.
  auto one_step = [](const minidl::SGD<Scalar>& opt) {
    minidl::Sequential<Scalar> model(7);
    model.add(minidl::Dense<Scalar>(3, 2));
    model.compile(minidl::MeanSquaredError{}, opt);
    minidl::Matrix<Scalar> x(4, 3), y(4, 2);
    for (Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<Scalar>(0.1 * static_cast<double>(i % 5) - 0.2);
    for (Index i = 0; i < y.size(); ++i) y.data()[i] = static_cast<Scalar>(0.3 * static_cast<double>(i % 3));
    const auto before = model.get_weights();
    model.train_on_batch(x, y);
    return std::pair(before, model.get_weights());
  };
  const auto [before, plain] = one_step(minidl::SGD<Scalar>(Scalar(0.1)));
  const auto [same_before, decayed] =
      one_step(minidl::SGD<Scalar>(Scalar(0.1)).set_weight_decay(Scalar(0.5)).exclude_from_weight_decay({"bias"}));
  REQUIRE(bitwise_equal(before, same_before));
  for (Index i = 0; i < before[0].size(); ++i)
    CHECK(static_cast<double>(decayed[0][i]) ==
          doctest::Approx(static_cast<double>(plain[0][i] - before[0][i] * Scalar(0.5) * Scalar(0.1)))
              .epsilon(tolerance<Scalar>()));
  CHECK(bitwise_equal(std::vector<Vector<Scalar>>{decayed[1]}, std::vector<Vector<Scalar>>{plain[1]}));
}

TEST_CASE_TEMPLATE("invalid new hyper-parameters throw ValueError naming owner, argument and value", Scalar, float,
                   double) {
  using namespace minidl;
  const Scalar nan = std::numeric_limits<Scalar>::quiet_NaN();
  CHECK_THROWS_WITH_AS(SGD<Scalar>().set_weight_decay(Scalar(-1)),
                       "SGD: weight_decay must be a finite number >= 0, got -1", ValueError);
  CHECK_THROWS_WITH_AS((void)AdamW<Scalar>(Scalar(1e-3), Scalar(-0.5)),
                       "AdamW: weight_decay must be a finite number >= 0, got -0.5", ValueError);
  CHECK_THROWS_WITH_AS(Adam<Scalar>().set_clipnorm(Scalar(0)), "Adam: clipnorm must be a finite number > 0, got 0",
                       ValueError);
  CHECK_THROWS_WITH_AS(RMSprop<Scalar>().set_clipvalue(Scalar(-1)),
                       "RMSprop: clipvalue must be a finite number > 0, got -1", ValueError);
  CHECK_THROWS_AS(SGD<Scalar>().set_global_clipnorm(nan), ValueError);
  CHECK_THROWS_WITH_AS(Adam<Scalar>().exclude_from_weight_decay({"bias", ""}),
                       "Adam: exclude_from_weight_decay: a name must not be empty (it would match every tensor)",
                       ValueError);
  CHECK_THROWS_WITH_AS((void)RMSprop<Scalar>(Scalar(1e-3), Scalar(0.9), Scalar(1e-7), Scalar(1)),
                       "RMSprop: momentum must be in [0, 1), got 1", ValueError);
  CHECK_THROWS_AS((void)AdamW<Scalar>(Scalar(1e-3), Scalar(0.004), Scalar(1)), ValueError);

  CHECK_THROWS_WITH_AS((void)ExponentialDecay<Scalar>(0.1, 0, 0.9),
                       "ExponentialDecay: decay_steps must be a finite number > 0, got 0", ValueError);
  CHECK_THROWS_WITH_AS((void)ExponentialDecay<Scalar>(-0.1, 10, 0.9),
                       "ExponentialDecay: initial_learning_rate must be a finite number > 0, got -0.1", ValueError);
  CHECK_THROWS_WITH_AS((void)InverseTimeDecay<Scalar>(0.1, 10, -1),
                       "InverseTimeDecay: decay_rate must be a finite number >= 0, got -1", ValueError);
  CHECK_THROWS_WITH_AS((void)PolynomialDecay<Scalar>(0.1, -5),
                       "PolynomialDecay: decay_steps must be a finite number > 0, got -5", ValueError);
  CHECK_THROWS_WITH_AS((void)PolynomialDecay<Scalar>(0.1, 5, 0, 0),
                       "PolynomialDecay: power must be a finite number > 0, got 0", ValueError);
  CHECK_THROWS_WITH_AS((void)CosineDecay<Scalar>(0.1, 100, 1.5), "CosineDecay: alpha must be in [0, 1], got 1.5",
                       ValueError);
  CHECK_THROWS_WITH_AS((void)CosineDecay<Scalar>(0.1, 100, 0, 1, -1),
                       "CosineDecay: warmup_steps must be a finite number >= 0, got -1", ValueError);
  CHECK_THROWS_WITH_AS((void)PiecewiseConstantDecay<Scalar>({10, 20}, {1, 2}),
                       "PiecewiseConstantDecay: boundaries must have one element fewer than values (and at least one), "
                       "got 2 boundaries and 2 values",
                       ValueError);
  CHECK_THROWS_WITH_AS((void)PiecewiseConstantDecay<Scalar>({10, 10}, {1, 2, 3}),
                       "PiecewiseConstantDecay: boundaries must be strictly increasing, got boundaries[0] = 10 and "
                       "boundaries[1] = 10",
                       ValueError);
  CHECK_THROWS_AS((void)PiecewiseConstantDecay<Scalar>({10}, {1, nan}), ValueError);
  // Allowed boundaries: warm-up from 0, weight decay 0 (Keras's AdamW accepts 0.0), momentum 0.
  CHECK_NOTHROW((void)CosineDecay<Scalar>(0, 100, 0, 0.1, 10));
  CHECK_NOTHROW((void)AdamW<Scalar>(Scalar(1e-3), Scalar(0)));
}

TEST_CASE_TEMPLATE("clone copies the variants, weight decay, clipping and state", Scalar, float, double) {
  auto amsgrad = minidl::Adam<Scalar>(Scalar(0.01), Scalar(0.9), Scalar(0.999), Scalar(1e-7), true)
                     .set_clipnorm(Scalar(0.1));
  auto adamw = minidl::AdamW<Scalar>(minidl::CosineDecay<Scalar>(0.01, 10, 0.1, 0.02, 2)).set_global_clipnorm(1);
  auto rmsprop = minidl::RMSprop<Scalar>(Scalar(0.01), Scalar(0.9), Scalar(1e-7), Scalar(0.5), true)
                     .set_weight_decay(Scalar(0.1))
                     .set_clipvalue(Scalar(0.01));
  for (Optimizer<Scalar>* opt : std::initializer_list<Optimizer<Scalar>*>{&amsgrad, &adamw, &rmsprop}) {
    CAPTURE(opt->type());
    opt->build(slot_sizes);
    auto theta = initial_parameters<Scalar>();
    for (int step = 0; step < 3; ++step) {
      opt->begin_step();
      std::vector<Vector<Scalar>> grads;
      for (std::size_t slot = 0; slot < theta.size(); ++slot) {
        grads.emplace_back(theta[slot].size());
        for (Index i = 0; i < grads[slot].size(); ++i)
          grads[slot][i] = static_cast<Scalar>(gradient(step, slot, static_cast<std::size_t>(i)));
        opt->add_to_global_norm({grads[slot].data(), grads[slot].size()});
      }
      for (std::size_t slot = 0; slot < theta.size(); ++slot)
        opt->update(slot, {theta[slot].data(), theta[slot].size()}, {grads[slot].data(), grads[slot].size()});
    }
    auto copy = opt->clone();
    CHECK(std::string(copy->type()) == opt->type());
    CHECK(copy->weight_decay() == opt->weight_decay());
    CHECK(copy->clipnorm() == opt->clipnorm());
    CHECK(copy->clipvalue() == opt->clipvalue());
    CHECK(copy->global_clipnorm() == opt->global_clipnorm());
    CHECK(copy->learning_rate() == opt->learning_rate());
    // The same next step from both: state (v̂, momentum, mean gradient) was copied.
    auto theta_copy = theta;
    for (auto* o : {opt, copy.get()}) {
      auto& t = o == opt ? theta : theta_copy;
      std::vector<Vector<Scalar>> g;
      for (const auto& tensor : t) g.push_back(tensor * Scalar(0.1));
      o->begin_step();
      for (const auto& tensor : g) o->add_to_global_norm({tensor.data(), tensor.size()});
      for (std::size_t slot = 0; slot < t.size(); ++slot)
        o->update(slot, {t[slot].data(), t[slot].size()}, {g[slot].data(), g[slot].size()});
    }
    CHECK(bitwise_equal(theta, theta_copy));
  }
}

TEST_CASE_TEMPLATE("Sequential clips by the norm of all the step's gradients with global_clipnorm", Scalar, float,
                   double) {
  // Plain SGD at lr 1 moves the weights by −g·c/N when the global norm N exceeds c: the whole step then has
  // norm exactly c. Per-tensor clipping (clipnorm) would give each of the four tensors norm c instead.
  auto step_norm = [](const minidl::SGD<Scalar>& opt) {
    minidl::Sequential<Scalar> model(3);
    model.add(minidl::Dense<Scalar>(3, 4, minidl::Activation::tanh));
    model.add(minidl::Dense<Scalar>(2));
    model.compile(minidl::MeanSquaredError{}, opt);
    minidl::Matrix<Scalar> x(4, 3), y(4, 2);
    for (Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<Scalar>(static_cast<double>(i % 7) - 3);
    for (Index i = 0; i < y.size(); ++i) y.data()[i] = static_cast<Scalar>(5 * static_cast<double>(i % 3));
    const auto before = model.get_weights();
    model.train_on_batch(x, y);
    const auto after = model.get_weights();
    double squared = 0;
    for (std::size_t k = 0; k < before.size(); ++k)
      squared += static_cast<double>((after[k] - before[k]).squaredNorm());
    return std::sqrt(squared);
  };
  const double c = 1e-3;
  CHECK(step_norm(minidl::SGD<Scalar>(Scalar(1)).set_global_clipnorm(Scalar(c))) ==
        doctest::Approx(c).epsilon(tolerance<Scalar>(1e-4, 1e-9)));
  CHECK(step_norm(minidl::SGD<Scalar>(Scalar(1)).set_clipnorm(Scalar(c))) ==
        doctest::Approx(2 * c).epsilon(tolerance<Scalar>(1e-4, 1e-9)));  // sqrt(4)·c
}
