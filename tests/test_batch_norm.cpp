#include <doctest/doctest.h>

#include "support.hpp"

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <minidl/gradient_check.hpp>
#include <minidl/layers/batch_norm.hpp>

#ifndef MINIDL_TEST_DATA_DIR
#error "MINIDL_TEST_DATA_DIR must name the tests/data directory"
#endif

namespace {

using minidl::BatchNorm;
using minidl::BatchNormConvention;
using minidl::BatchNormOptions;
using minidl::FrozenBatchNormPolicy;
using minidl::Index;
using minidl::Matrix;
using minidl::Phase;
using minidl::Shape;

using minidl::test::matrix;
using minidl::test::max_error;
using minidl::test::tolerance;

/// Writes `values` into the parameter or state tensor called `name`.
template <class Scalar>
void assign(const std::vector<minidl::Parameter<Scalar>>& views, const std::string& name,
            std::initializer_list<double> values) {
  for (const auto& p : views)
    if (p.name == name) {
      REQUIRE(p.size == static_cast<Index>(values.size()));
      Index i = 0;
      for (double v : values) p.value[i++] = static_cast<Scalar>(v);
      return;
    }
  FAIL("no tensor named " << name);
}

/// Everything a failed call must leave as it was, compared bit for bit.
template <class Scalar>
std::vector<unsigned char> snapshot(BatchNorm<Scalar>& bn) {
  std::vector<unsigned char> bytes;
  auto append = [&](const void* p, std::size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    bytes.insert(bytes.end(), b, b + n);
  };
  for (const auto& p : bn.parameters()) {
    append(p.value, sizeof(Scalar) * static_cast<std::size_t>(p.size));
    append(p.grad, sizeof(Scalar) * static_cast<std::size_t>(p.size));
  }
  for (const auto& p : bn.state()) append(p.value, sizeof(Scalar) * static_cast<std::size_t>(p.size));
  const std::int64_t tracked = bn.num_batches_tracked();
  append(&tracked, sizeof tracked);
  const Shape shape = bn.input_shape();
  append(&shape, sizeof shape);
  return bytes;
}

template <class Scalar>
bool bitwise_equal(const Matrix<Scalar>& a, const Matrix<Scalar>& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         std::memcmp(a.data(), b.data(), sizeof(Scalar) * static_cast<std::size_t>(a.size())) == 0;
}

// The hand-worked example used throughout: 4 samples x 2 features, ε = 5.
//   feature 0: 1, 5, 5, 1   μ = 3,  σ² = 4  -> sqrt(σ²+ε) = 3, x̂ = ∓2/3
//   feature 1: 4, 8, 12, 16 μ = 10, σ² = 20 -> sqrt(σ²+ε) = 5, x̂ = −1.2, −0.4, 0.4, 1.2
// γ = (2, −1), β = (0.5, 1).
template <class Scalar>
Matrix<Scalar> hand_batch() {
  return matrix<Scalar>(4, 2, {1, 4, 5, 8, 5, 12, 1, 16});
}
template <class Scalar>
void set_hand_weights(BatchNorm<Scalar>& bn) {
  assign(bn.parameters(), "gamma", {2, -1});
  assign(bn.parameters(), "beta", {0.5, 1});
  assign(bn.state(), "moving_mean", {1, 2});
  assign(bn.state(), "moving_variance", {4, 11});
}
BatchNormOptions hand_options(BatchNormConvention convention) {
  BatchNormOptions options = convention == BatchNormConvention::keras ? BatchNormOptions::keras()
                                                                      : BatchNormOptions::pytorch();
  options.epsilon = 5;
  options.momentum = convention == BatchNormConvention::keras ? 0.9 : 0.1;
  return options;
}

}  // namespace

TEST_CASE_TEMPLATE("BatchNorm defaults, shapes and names", Scalar, float, double) {
  BatchNorm<Scalar> bn(3);
  CHECK(std::string(bn.type()) == "BatchNormalization");
  CHECK(bn.options().convention == BatchNormConvention::keras);
  CHECK(bn.options().momentum == 0.99);
  CHECK(bn.options().epsilon == 1e-3);
  CHECK(bn.frozen_policy() == FrozenBatchNormPolicy::moving_statistics);
  CHECK(bn.gamma() == minidl::Vector<Scalar>::Ones(3));
  CHECK(bn.beta() == minidl::Vector<Scalar>::Zero(3));
  CHECK(bn.moving_mean() == minidl::Vector<Scalar>::Zero(3));
  CHECK(bn.moving_variance() == minidl::Vector<Scalar>::Ones(3));
  CHECK(bn.parameter_count() == 6);
  CHECK(bn.state_count() == 6);
  const auto params = bn.parameters();
  const auto state = bn.state();
  REQUIRE(params.size() == 2);
  REQUIRE(state.size() == 2);
  CHECK(params[0].name == "gamma");
  CHECK(params[1].name == "beta");
  CHECK(state[0].name == "moving_mean");
  CHECK(state[1].name == "moving_variance");
  CHECK(state[0].grad == nullptr);
  CHECK(params[0].grad != nullptr);

  const auto torch = BatchNormOptions::pytorch();
  CHECK(torch.convention == BatchNormConvention::pytorch);
  CHECK(torch.momentum == 0.1);
  CHECK(torch.epsilon == 1e-5);
  CHECK_FALSE(torch.cumulative_average);

  // Image input: one γ/β/statistic per channel (the last axis).
  BatchNorm<Scalar> image(Shape{3, 2, 4});
  CHECK(image.output_shape() == Shape({3, 2, 4}));
  CHECK(image.parameter_count() == 8);

  // Shape from build(): sized for C = shape.back().
  BatchNorm<Scalar> later;
  CHECK_FALSE(later.built());
  later.build(Shape{2, 2, 5});
  CHECK(later.built());
  CHECK(later.gamma().size() == 5);
  CHECK(later.moving_variance() == minidl::Vector<Scalar>::Ones(5));
  later.set_name("bn");
  const auto before = snapshot(later);
  CHECK_THROWS_WITH_AS(later.build(Shape{2, 2, 4}),
                       "BatchNormalization 'bn': expects input shape (None, 2, 2, 5), got (None, 2, 2, 4)",
                       minidl::ShapeError);
  CHECK(snapshot(later) == before);

  auto copy = bn.clone();
  CHECK(std::string(copy->type()) == "BatchNormalization");
}

TEST_CASE_TEMPLATE("BatchNorm forward in both phases matches hand-computed values", Scalar, float, double) {
  for (auto convention : {BatchNormConvention::keras, BatchNormConvention::pytorch}) {
    CAPTURE(static_cast<int>(convention));
    BatchNorm<Scalar> bn(2, hand_options(convention));
    set_hand_weights(bn);
    const Matrix<Scalar> x = hand_batch<Scalar>();

    // Training: batch statistics (biased variance in both conventions).
    const auto training = matrix<Scalar>(4, 2, {-5. / 6, 2.2, 11. / 6, 1.4, 11. / 6, 0.6, -5. / 6, -0.2});
    CHECK(max_error(bn.forward(x, Phase::training), training) <= tolerance<Scalar>());

    // Inference: moving statistics. Reset them to (1, 2), (4, 11): sqrt(var+ε) = 3, 4.
    assign(bn.state(), "moving_mean", {1, 2});
    assign(bn.state(), "moving_variance", {4, 11});
    const auto inference = matrix<Scalar>(4, 2, {0.5, 0.5, 19. / 6, -0.5, 19. / 6, -1.5, 0.5, -2.5});
    CHECK(max_error(bn.forward(x, Phase::inference), inference) <= tolerance<Scalar>());
    // The inference phase never changes the statistics.
    CHECK(bn.moving_mean() == matrix<Scalar>(2, 1, {1, 2}));
    CHECK(bn.moving_variance() == matrix<Scalar>(2, 1, {4, 11}));
  }
}

TEST_CASE_TEMPLATE("BatchNorm normalizes an image batch per channel over N*H*W values", Scalar, float, double) {
  // The hand batch's four rows laid out as 2 samples of shape (H=2, W=1, C=2),
  // and as 1 sample of shape (1, 4, 2): the same n = 4 values per channel.
  BatchNorm<Scalar> two(Shape{2, 1, 2}, hand_options(BatchNormConvention::keras));
  BatchNorm<Scalar> one(Shape{1, 4, 2}, hand_options(BatchNormConvention::keras));
  set_hand_weights(two);
  set_hand_weights(one);
  const auto x2 = matrix<Scalar>(2, 4, {1, 4, 5, 8, 5, 12, 1, 16});
  const auto x1 = matrix<Scalar>(1, 8, {1, 4, 5, 8, 5, 12, 1, 16});
  const auto y = {-5. / 6, 2.2, 11. / 6, 1.4, 11. / 6, 0.6, -5. / 6, -0.2};
  CHECK(max_error(two.forward(x2, Phase::training), matrix<Scalar>(2, 4, y)) <= tolerance<Scalar>());
  CHECK(max_error(one.forward(x1, Phase::training), matrix<Scalar>(1, 8, y)) <= tolerance<Scalar>());
  // Keras update with momentum 0.9 from (1, 2), (4, 11): 0.9·old + 0.1·(μ or σ²).
  for (const auto* bn : {&two, &one}) {
    CHECK(max_error(bn->moving_mean(), matrix<Scalar>(2, 1, {1.2, 2.8})) <= tolerance<Scalar>());
    CHECK(max_error(bn->moving_variance(), matrix<Scalar>(2, 1, {4, 11.9})) <= tolerance<Scalar>());
  }
}

TEST_CASE_TEMPLATE("BatchNorm backward of a constant upstream gradient", Scalar, float, double) {
  // dy = 1: dβ = Σ dy = n, dγ = Σ x̂ = 0, dx = γ·inv_std·(1 − 1 − x̂·0) = 0.
  BatchNorm<Scalar> bn(2, hand_options(BatchNormConvention::keras));
  set_hand_weights(bn);
  const Matrix<Scalar> x = hand_batch<Scalar>();
  bn.forward(x, Phase::training);
  const Matrix<Scalar> dx = bn.backward(x, Matrix<Scalar>::Ones(4, 2));
  CHECK(max_error(dx, Matrix<Scalar>::Zero(4, 2)) <= tolerance<Scalar>());
  CHECK(max_error(bn.parameters()[0].gradient(), matrix<Scalar>(2, 1, {0, 0})) <= tolerance<Scalar>());
  CHECK(max_error(bn.parameters()[1].gradient(), matrix<Scalar>(2, 1, {4, 4})) <= tolerance<Scalar>());
  // dy = x̂ of feature 1, 0 for feature 0: dγ = (0, Σ x̂²) = (0, 1.44 + 0.16 + 0.16 + 1.44),
  // dβ = (0, Σ x̂) = (0, 0).
  const auto dy = matrix<Scalar>(4, 2, {0, -1.2, 0, -0.4, 0, 0.4, 0, 1.2});
  bn.forward(x, Phase::training);
  bn.backward(x, dy, false);
  CHECK(max_error(bn.parameters()[0].gradient(), matrix<Scalar>(2, 1, {0, 3.2})) <= tolerance<Scalar>());
  CHECK(max_error(bn.parameters()[1].gradient(), matrix<Scalar>(2, 1, {0, 0})) <= tolerance<Scalar>());
}

TEST_CASE_TEMPLATE("BatchNorm moving statistics, Keras convention, one and several steps", Scalar, float, double) {
  BatchNorm<Scalar> bn(2, hand_options(BatchNormConvention::keras));  // momentum 0.9
  set_hand_weights(bn);  // moving (1, 2), (4, 11)
  const Matrix<Scalar> b1 = hand_batch<Scalar>();                    // μ (3, 10), σ² (4, 20)
  const Matrix<Scalar> b2 = (b1.array() + Scalar(3)).matrix();        // μ (6, 13), σ² (4, 20)
  const Matrix<Scalar> b3 = (b1.array() * Scalar(2)).matrix();        // μ (6, 20), σ² (16, 80)
  bn.forward(b1, Phase::training);
  CHECK(bn.num_batches_tracked() == 1);
  // 0.9·(1, 2) + 0.1·(3, 10); 0.9·(4, 11) + 0.1·(4, 20)
  CHECK(max_error(bn.moving_mean(), matrix<Scalar>(2, 1, {1.2, 2.8})) <= tolerance<Scalar>());
  CHECK(max_error(bn.moving_variance(), matrix<Scalar>(2, 1, {4, 11.9})) <= tolerance<Scalar>());
  bn.forward(b2, Phase::training);
  // 0.9·(1.2, 2.8) + 0.1·(6, 13); 0.9·(4, 11.9) + 0.1·(4, 20)
  CHECK(max_error(bn.moving_mean(), matrix<Scalar>(2, 1, {1.68, 3.82})) <= tolerance<Scalar>());
  CHECK(max_error(bn.moving_variance(), matrix<Scalar>(2, 1, {4, 12.71})) <= tolerance<Scalar>());
  bn.forward(b3, Phase::training);
  // 0.9·(1.68, 3.82) + 0.1·(6, 20); 0.9·(4, 12.71) + 0.1·(16, 80)
  CHECK(max_error(bn.moving_mean(), matrix<Scalar>(2, 1, {2.112, 5.438})) <= tolerance<Scalar>());
  CHECK(max_error(bn.moving_variance(), matrix<Scalar>(2, 1, {5.2, 19.439})) <= tolerance<Scalar>());
  CHECK(bn.num_batches_tracked() == 3);

  // Many steps on one batch: moving → batch stat geometrically, μ + 0.9^k·(start − μ).
  BatchNorm<Scalar> many(2, hand_options(BatchNormConvention::keras));
  set_hand_weights(many);
  for (int k = 0; k < 10; ++k) many.forward(b1, Phase::training);
  const double f = std::pow(0.9, 10);
  CHECK(max_error(many.moving_mean(), matrix<Scalar>(2, 1, {3 + f * (1 - 3), 10 + f * (2 - 10)})) <=
        tolerance<Scalar>());
  CHECK(max_error(many.moving_variance(), matrix<Scalar>(2, 1, {4, 20 + f * (11 - 20)})) <= tolerance<Scalar>());

  // Keras with a single sample: σ²_B = 0, y = β, moving_var = 0.99·1 + 0.01·0.
  BatchNorm<Scalar> single(2);
  assign(single.parameters(), "beta", {0.25, -3});
  const Matrix<Scalar> y = single.forward(matrix<Scalar>(1, 2, {7, -2}), Phase::training);
  CHECK(max_error(y, matrix<Scalar>(1, 2, {0.25, -3})) <= tolerance<Scalar>());
  CHECK(max_error(single.moving_mean(), matrix<Scalar>(2, 1, {0.07, -0.02})) <= tolerance<Scalar>());
  CHECK(max_error(single.moving_variance(), matrix<Scalar>(2, 1, {0.99, 0.99})) <= tolerance<Scalar>());
}

TEST_CASE("BatchNorm in float weighs the batch by float(1 - momentum), as Keras 3's float32 update") {
  // Keras: moving * momentum + mean * (1.0 - momentum), 1.0 - 0.99 formed in
  // Python and rounded once to float32 (= float(0.01)); 1 - float(0.99)
  // would be 0.0099999905, a relative error of ~1e-6 in every update.
  // A batch with an exact mean (3, and 300) from moving mean 0: the new moving
  // mean is float(0.01) * mean exactly.
  BatchNorm<float> bn(2);
  bn.forward(matrix<float>(4, 2, {1, 100, 2, 200, 3, 300, 6, 600}), Phase::training);
  CHECK(bn.moving_mean()(0) == 0.01f * 3.0f);
  CHECK(bn.moving_mean()(1) == 0.01f * 300.0f);
  CHECK(bn.moving_mean()(0) != (1 - 0.99f) * 3.0f);  // the value before
}

TEST_CASE_TEMPLATE("BatchNorm moving statistics, PyTorch convention and cumulative average", Scalar, float,
                   double) {
  const Matrix<Scalar> b1 = hand_batch<Scalar>();                // μ (3, 10), s² = 4/3·σ² = (16/3, 80/3)
  const Matrix<Scalar> b2 = (b1.array() + Scalar(3)).matrix();    // μ (6, 13), s² (16/3, 80/3)
  const Matrix<Scalar> b3 = (b1.array() * Scalar(2)).matrix();    // μ (6, 20), s² (64/3, 320/3)

  BatchNorm<Scalar> bn(2, hand_options(BatchNormConvention::pytorch));  // momentum 0.1
  set_hand_weights(bn);  // running (1, 2), (4, 11)
  bn.forward(b1, Phase::training);
  // 0.9·(1, 2) + 0.1·(3, 10); 0.9·(4, 11) + 0.1·(16/3, 80/3)
  CHECK(max_error(bn.moving_mean(), matrix<Scalar>(2, 1, {1.2, 2.8})) <= tolerance<Scalar>());
  CHECK(max_error(bn.moving_variance(), matrix<Scalar>(2, 1, {3.6 + 1.6 / 3, 9.9 + 8.0 / 3})) <=
        tolerance<Scalar>());
  bn.forward(b2, Phase::training);
  bn.forward(b3, Phase::training);
  // After three steps: 0.9³·start + 0.9²·0.1·s1 + 0.9·0.1·s2 + 0.1·s3.
  CHECK(max_error(bn.moving_mean(), matrix<Scalar>(2, 1, {0.729 * 1 + 0.081 * 3 + 0.09 * 6 + 0.1 * 6,
                                                           0.729 * 2 + 0.081 * 10 + 0.09 * 13 + 0.1 * 20})) <=
        tolerance<Scalar>());
  CHECK(max_error(bn.moving_variance(),
                  matrix<Scalar>(2, 1, {0.729 * 4 + 0.171 * 16.0 / 3 + 0.1 * 64.0 / 3,
                                        0.729 * 11 + 0.171 * 80.0 / 3 + 0.1 * 320.0 / 3})) <= tolerance<Scalar>());
  CHECK(bn.num_batches_tracked() == 3);

  // momentum=None: factor 1/t, so the running stats are the plain mean of the
  // batch stats; the starting values and the momentum no longer matter.
  auto options = hand_options(BatchNormConvention::pytorch);
  options.cumulative_average = true;
  BatchNorm<Scalar> avg(2, options);
  set_hand_weights(avg);
  avg.forward(b1, Phase::training);
  CHECK(max_error(avg.moving_mean(), matrix<Scalar>(2, 1, {3, 10})) <= tolerance<Scalar>());
  CHECK(max_error(avg.moving_variance(), matrix<Scalar>(2, 1, {16. / 3, 80. / 3})) <= tolerance<Scalar>());
  avg.forward(b2, Phase::training);
  CHECK(max_error(avg.moving_mean(), matrix<Scalar>(2, 1, {4.5, 11.5})) <= tolerance<Scalar>());
  CHECK(max_error(avg.moving_variance(), matrix<Scalar>(2, 1, {16. / 3, 80. / 3})) <= tolerance<Scalar>());
  avg.forward(b3, Phase::training);
  CHECK(max_error(avg.moving_mean(), matrix<Scalar>(2, 1, {5, 43. / 3})) <= tolerance<Scalar>());
  CHECK(max_error(avg.moving_variance(), matrix<Scalar>(2, 1, {32. / 3, 160. / 3})) <= tolerance<Scalar>());
  CHECK(avg.num_batches_tracked() == 3);
}

namespace {

/// One case of tests/data/batchnorm_torch.txt: named matrices (see the file's header).
struct TorchCase {
  std::string name;
  std::map<std::string, Matrix<double>> values;
  const Matrix<double>& at(const std::string& key) const {
    const auto it = values.find(key);
    if (it == values.end()) throw std::runtime_error("fixture case " + name + " has no " + key);
    return it->second;
  }
};

std::vector<TorchCase> read_torch_fixture() {
  const std::string path = std::string(MINIDL_TEST_DATA_DIR) + "/batchnorm_torch.txt";
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::vector<TorchCase> cases;
  bool open = false;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string key;
    fields >> key;
    if (key == "case") {
      cases.emplace_back();
      fields >> cases.back().name;
      open = true;
    } else if (key == "end") {
      open = false;
    } else {
      if (!open) throw std::runtime_error("fixture line outside a case: " + line.substr(0, 60));
      cases.back().values[key] = minidl::test::read_fixture_matrix(fields, key);
    }
  }
  if (open) throw std::runtime_error("fixture ends inside case " + cases.back().name);
  return cases;
}

Shape shape_of(const Matrix<double>& dims) {
  const auto d = [&](Index i) { return static_cast<Index>(dims(0, i)); };
  if (dims.cols() == 1) return Shape{d(0)};
  if (dims.cols() == 3) return Shape{d(0), d(1), d(2)};
  throw std::runtime_error("unexpected fixture shape rank");
}

}  // namespace

TEST_CASE_TEMPLATE("BatchNorm with the PyTorch convention matches torch.nn.BatchNorm1d/2d", Scalar, float,
                   double) {
  const auto cases = read_torch_fixture();
  REQUIRE(cases.size() == 5);
  const double tol = tolerance<Scalar>();
  for (const auto& c : cases) {
    CAPTURE(c.name);
    auto options = BatchNormOptions::pytorch();
    if (c.values.count("momentum")) {
      options.momentum = c.at("momentum")(0, 0);
    } else {
      options.cumulative_average = true;
    }
    options.epsilon = c.at("epsilon")(0, 0);
    BatchNorm<Scalar> bn(shape_of(c.at("shape")), options);
    auto set = [](const minidl::Parameter<Scalar>& p, const Matrix<double>& v) {
      REQUIRE(v.size() == p.size);
      p.values() = v.row(0).transpose().template cast<Scalar>();
    };
    set(bn.parameters()[0], c.at("gamma"));
    set(bn.parameters()[1], c.at("beta"));
    set(bn.state()[0], c.at("running_mean"));
    set(bn.state()[1], c.at("running_var"));

    const int steps = static_cast<int>(c.at("steps")(0, 0));
    REQUIRE(steps >= 2);
    for (int s = 0; s < steps; ++s) {
      CAPTURE(s);
      const auto key = [s](const char* k) { return std::string(k) + "." + std::to_string(s); };
      const Matrix<Scalar> x = c.at(key("x")).template cast<Scalar>();
      const Matrix<Scalar> dy = c.at(key("dy")).template cast<Scalar>();
      CHECK(max_error(bn.forward(x, Phase::training), c.at(key("y"))) <= tol);
      CHECK(max_error(bn.backward(x, dy), c.at(key("dx"))) <= tol);
      CHECK(max_error(bn.parameters()[0].gradient().transpose(), c.at(key("dgamma"))) <= tol);
      CHECK(max_error(bn.parameters()[1].gradient().transpose(), c.at(key("dbeta"))) <= tol);
      CHECK(max_error(bn.moving_mean().transpose(), c.at(key("running_mean"))) <= tol);
      CHECK(max_error(bn.moving_variance().transpose(), c.at(key("running_var"))) <= tol);
      CHECK(bn.num_batches_tracked() == static_cast<std::int64_t>(c.at(key("num_batches_tracked"))(0, 0)));
    }
    const Matrix<Scalar> x = c.at("eval_x").template cast<Scalar>();
    CHECK(max_error(bn.forward(x, Phase::inference), c.at("eval_y")) <= tol);
  }
}

namespace {

/// Per-channel offsets and scales so the batch statistics are far from (0, 1).
Matrix<double> random_batch(Index rows, const Shape& shape, std::uint64_t seed) {
  minidl::Rng rng(seed);
  Matrix<double> x(rows, shape.size());
  for (Index i = 0; i < x.size(); ++i) {
    const Index channel = i % shape.back();
    x.data()[i] = 0.5 * static_cast<double>(channel) - 1 + (1 + 0.5 * static_cast<double>(channel)) * rng.normal();
  }
  return x;
}

/// γ, β and moving statistics away from their defaults.
void randomize(BatchNorm<double>& bn, std::uint64_t seed) {
  minidl::Rng rng(seed);
  for (auto& p : bn.parameters())
    for (Index i = 0; i < p.size; ++i) p.value[i] = rng.uniform(0.5, 2);
  auto state = bn.state();
  for (Index i = 0; i < state[0].size; ++i) state[0].value[i] = rng.uniform(-1, 1);
  for (Index i = 0; i < state[1].size; ++i) state[1].value[i] = rng.uniform(0.5, 3);
}

}  // namespace

TEST_CASE("BatchNorm gradients pass the finite-difference check in every training path") {
  struct Config {
    const char* what;
    bool frozen;
    FrozenBatchNormPolicy policy;
  };
  const Config configs[] = {{"trainable", false, FrozenBatchNormPolicy::moving_statistics},
                            {"frozen, batch statistics", true, FrozenBatchNormPolicy::batch_statistics},
                            {"frozen, moving statistics", true, FrozenBatchNormPolicy::moving_statistics}};
  struct Input {
    Shape shape;
    Index rows;
  };
  const Input inputs[] = {{Shape{3}, 2}, {Shape{3}, 5}, {Shape{3}, 16}, {Shape{3, 2, 4}, 1}, {Shape{3, 2, 4}, 3}};
  std::uint64_t seed = 10;
  for (const auto& config : configs)
    for (const auto& input : inputs)
      for (auto options : {BatchNormOptions::keras(), BatchNormOptions::pytorch()}) {
        CAPTURE(config.what);
        CAPTURE(input.shape);
        CAPTURE(input.rows);
        CAPTURE(static_cast<int>(options.convention));
        options.frozen_policy = config.policy;
        BatchNorm<double> bn(input.shape, options);
        bn.set_frozen(config.frozen);
        randomize(bn, ++seed);
        const auto result = minidl::check_gradients(bn, random_batch(input.rows, input.shape, ++seed));
        CHECK(result.input_error <= result.tolerance);
        for (const auto& p : result.parameter_errors) {
          CAPTURE(p.first);
          CHECK(p.second <= result.tolerance);
        }
        CHECK(result.parameter_errors.size() == 2);
      }
}

TEST_CASE_TEMPLATE("A frozen BatchNorm keeps its statistics under both policies", Scalar, float, double) {
  BatchNorm<Scalar> bn(2, hand_options(BatchNormConvention::keras));
  set_hand_weights(bn);
  const Matrix<Scalar> x = hand_batch<Scalar>();
  const Matrix<Scalar> shifted = (x.array() + Scalar(5)).matrix();
  const auto dy = matrix<Scalar>(4, 2, {0.5, -1, 2, 0.25, -1.5, 1, 0.75, -0.5});

  // A trainable step first, so the gradients hold values a frozen step must keep.
  bn.forward(x, Phase::training);
  bn.backward(x, dy);
  REQUIRE(bn.parameters()[0].gradient().cwiseAbs().maxCoeff() > 0);
  assign(bn.state(), "moving_mean", {1, 2});  // back to the hand values the step moved
  assign(bn.state(), "moving_variance", {4, 11});
  bn.set_frozen(true);
  for (auto policy : {FrozenBatchNormPolicy::moving_statistics, FrozenBatchNormPolicy::batch_statistics}) {
    CAPTURE(static_cast<int>(policy));
    bn.set_frozen_policy(policy);
    CHECK(bn.frozen_policy() == policy);
    const auto before = snapshot(bn);  // γ, β, their gradients, statistics, step count
    const Matrix<Scalar> training = bn.forward(shifted, Phase::training);
    const Matrix<Scalar> dx = bn.backward(shifted, dy);
    bn.forward(x, Phase::training);
    CHECK(snapshot(bn) == before);
    const Matrix<Scalar> inference = bn.forward(shifted, Phase::inference);
    if (policy == FrozenBatchNormPolicy::moving_statistics) {
      // TF2 / Keras 3: exactly the inference computation, bit for bit.
      CHECK(bitwise_equal(training, inference));
      // Backward is the affine map γ·dy/sqrt(moving_var + ε): γ/(3, 4) = (2/3, −1/4).
      const auto expected = matrix<Scalar>(4, 2, {1. / 3, 0.25, 4. / 3, -1. / 16, -1, -0.25, 0.5, 0.125});
      CHECK(max_error(dx, expected) <= tolerance<Scalar>());
    } else {
      // Keras 2.1.3–2.3.1: batch statistics in training, so the shift disappears:
      // the output is the hand example's, while inference sees the shift.
      const auto batch = matrix<Scalar>(4, 2, {-5. / 6, 2.2, 11. / 6, 1.4, 11. / 6, 0.6, -5. / 6, -0.2});
      CHECK(max_error(training, batch) <= tolerance<Scalar>());
      CHECK(max_error(training, inference) > 1);
    }
  }
}

TEST_CASE_TEMPLATE("BatchNorm rejects bad options and bad input and stays unchanged", Scalar, float, double) {
  auto with = [](double momentum, double epsilon) {
    BatchNormOptions o;
    o.momentum = momentum;
    o.epsilon = epsilon;
    return o;
  };
  CHECK_THROWS_WITH_AS(BatchNorm<Scalar>(3, with(-0.1, 1e-3)),
                       "BatchNormalization: momentum must be in [0, 1], got -0.1", minidl::ValueError);
  CHECK_THROWS_WITH_AS(BatchNorm<Scalar>(Shape{2, 2, 3}, with(1.5, 1e-3)),
                       "BatchNormalization: momentum must be in [0, 1], got 1.5", minidl::ValueError);
  CHECK_THROWS_WITH_AS(BatchNorm<Scalar>(with(0.99, 0)),
                       "BatchNormalization: epsilon must be a finite number > 0, got 0", minidl::ValueError);
  CHECK_THROWS_WITH_AS(BatchNorm<Scalar>(3, with(0.99, -1)),
                       "BatchNormalization: epsilon must be a finite number > 0, got -1", minidl::ValueError);
  CHECK_THROWS_WITH_AS(BatchNorm<Scalar>(3, with(0.99, std::numeric_limits<double>::quiet_NaN())),
                       "BatchNormalization: epsilon must be a finite number > 0, got nan", minidl::ValueError);
  CHECK_THROWS_AS(BatchNorm<Scalar>(3, with(0.99, std::numeric_limits<double>::infinity())), minidl::ValueError);
  CHECK_THROWS_AS(BatchNorm<Scalar>(3, with(std::numeric_limits<double>::quiet_NaN(), 1e-3)), minidl::ValueError);
  BatchNormOptions cumulative;
  cumulative.cumulative_average = true;
  CHECK_THROWS_WITH_AS(BatchNorm<Scalar>(3, cumulative),
                       "BatchNormalization: cumulative_average (PyTorch momentum=None) needs the pytorch "
                       "convention, got the keras convention",
                       minidl::ValueError);
  CHECK_THROWS_WITH_AS(BatchNorm<Scalar>(0), "BatchNormalization: features must be positive, got 0",
                       minidl::ShapeError);
  // The bounds themselves are valid.
  CHECK_NOTHROW(BatchNorm<Scalar>(3, with(0, 1e-3)));
  CHECK_NOTHROW(BatchNorm<Scalar>(3, with(1, 1e-3)));

  // Wrong feature count: ShapeError from the layer; nothing changes.
  BatchNorm<Scalar> bn(2, hand_options(BatchNormConvention::pytorch));
  bn.set_name("bn");
  set_hand_weights(bn);
  const Matrix<Scalar> x = hand_batch<Scalar>();
  bn.forward(x, Phase::training);
  bn.backward(x, Matrix<Scalar>::Ones(4, 2));
  const auto before = snapshot(bn);
  for (auto phase : {Phase::training, Phase::inference})
    CHECK_THROWS_WITH_AS(bn.forward(Matrix<Scalar>::Ones(4, 3), phase),
                         "BatchNormalization 'bn': forward() input has 3 values per sample, expected 2 "
                         "(input shape (None, 2))",
                         minidl::ShapeError);
  CHECK(snapshot(bn) == before);

  // One value per channel while training with the PyTorch convention (as PyTorch:
  // "Expected more than 1 value per channel when training"); nothing changes.
  CHECK_THROWS_WITH_AS(bn.forward(matrix<Scalar>(1, 2, {1, 2}), Phase::training),
                       "BatchNormalization 'bn': training with the pytorch convention expects more than 1 "
                       "value per channel (as PyTorch), got 1 (a batch of 1 x (None, 2))",
                       minidl::ValueError);
  CHECK(snapshot(bn) == before);
  // Inference on one sample is fine, and so is an image sample with H*W > 1.
  CHECK_NOTHROW(bn.forward(matrix<Scalar>(1, 2, {1, 2}), Phase::inference));
  BatchNorm<Scalar> image(Shape{2, 1, 2}, BatchNormOptions::pytorch());
  CHECK_NOTHROW(image.forward(matrix<Scalar>(1, 4, {1, 2, 3, 4}), Phase::training));
  CHECK(image.num_batches_tracked() == 1);
}

TEST_CASE("a rejected forward (n = 1, pytorch convention) keeps the previous backward cache") {
  minidl::BatchNorm<double> bn(3, minidl::BatchNormOptions::pytorch());
  minidl::Matrix<double> x(4, 3);
  x << 1, 2, 3, 4, 5, 6, 7, 8, 10, -1, 0, 2;
  const minidl::Matrix<double> y = bn.forward(x, minidl::Phase::training);
  const minidl::Matrix<double> dy = minidl::Matrix<double>::Ones(4, 3);
  const minidl::Matrix<double> dx = bn.backward(x, dy);
  CHECK_THROWS_AS(bn.forward(x.topRows(1), minidl::Phase::training), minidl::ValueError);
  CHECK((bn.output().array() == y.array()).all());
  CHECK((bn.backward(x, dy).array() == dx.array()).all());
}
