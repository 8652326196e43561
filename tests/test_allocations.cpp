// Zero heap allocations in a steady-state training step and inference batch.
//
// This file is its own executable (minidl_alloc_tests): counting_allocations.hpp
// replaces the global operator new and delete with counting versions.
//
// "Steady state": after a few warm-up steps with the same batch size, when
// every buffer has its size. The first batch and a change of batch size
// (an epoch's smaller last batch) resize buffers and do allocate.

#include "counting_allocations.hpp"

#include <doctest/doctest.h>

#include <functional>
#include <minidl/minidl.hpp>
#include <string>
#include <vector>

#include "support.hpp"

namespace {

using namespace minidl;
using minidl::test::uniform;
using counting::allocations_in;

// Keeps a pointer observable, so the compiler cannot drop the allocation behind it.
void* volatile sink = nullptr;

constexpr Index batch = 16, inputs = 6, hidden = 8, outputs = 3;
constexpr int steps = 100, warm_up = 3;

/// Adds the layers under test to a model.
template <class Scalar>
using Builder = std::function<void(Sequential<Scalar>&)>;

/// A model: Dense(inputs -> hidden, relu), then what `middle` adds (taking and
/// giving `hidden` features), then Dense(hidden -> outputs, `head`): the layers
/// under test get gradients from above and pass them below.
template <class Scalar>
Sequential<Scalar> make_model(const Builder<Scalar>& middle, Activation head = Activation::linear) {
  Sequential<Scalar> model(7);
  model.add(Dense<Scalar>(inputs, hidden, Activation::relu));
  middle(model);
  model.add(Dense<Scalar>(hidden, outputs, head));
  return model;
}

/// Targets that suit every loss: one-hot rows (valid for both cross-entropies,
/// and as regression targets).
template <class Scalar>
Matrix<Scalar> one_hot_targets(Index rows) {
  Matrix<Scalar> y = Matrix<Scalar>::Zero(rows, outputs);
  for (Index r = 0; r < rows; ++r) y(r, r % outputs) = 1;
  return y;
}

struct Counts {
  long train = -1, inference = -1;
};

/// Allocations in `steps` train_on_batch calls and in `steps` inference batches
/// (one predict into a reused output), after warm-up with the same batch size.
template <class Scalar>
Counts steady_state(Sequential<Scalar>& model) {
  const Index features = model.input_shape().size();
  const Matrix<Scalar> x = uniform<Scalar>(batch, features, 1);
  const Matrix<Scalar> y = one_hot_targets<Scalar>(batch);
  for (int i = 0; i < warm_up; ++i) model.train_on_batch(x, y);
  Counts counts;
  counts.train = allocations_in([&] {
    for (int i = 0; i < steps; ++i) model.train_on_batch(x, y);
  });

  const Matrix<Scalar> many = uniform<Scalar>(steps * batch, features, 2);
  Matrix<Scalar> out(many.rows(), outputs);
  Matrix<Scalar> first(batch, outputs);
  model.predict(many.topRows(batch), first, batch);  // warm-up: the inference buffers get their size
  counts.inference = allocations_in([&] { model.predict(many, out, batch); });
  // The outputs are those of the returning predict, bit for bit.
  CHECK((out.array() == model.predict(many, batch).array()).all());
  return counts;
}

template <class Scalar>
struct Case {
  std::string name;
  Builder<Scalar> middle;
};

/// Checks 0 allocations for every case, with the loss and optimizer given.
template <class Scalar, class Loss, class Opt>
void check_cases(const std::vector<Case<Scalar>>& cases, const Loss& loss, const Opt& optimizer,
                 Activation head = Activation::linear) {
  for (const auto& c : cases) {
    INFO("model: ", c.name);
    auto model = make_model<Scalar>(c.middle, head);
    model.compile(loss, optimizer);
    const Counts counts = steady_state(model);
    CHECK(counts.train == 0);
    CHECK(counts.inference == 0);
  }
}

template <class Scalar>
Builder<Scalar> nothing() {
  return [](Sequential<Scalar>&) {};
}

template <class Scalar>
Builder<Scalar> batch_norm(BatchNormOptions options, bool frozen) {
  return [=](Sequential<Scalar>& m) { m.add(BatchNorm<Scalar>(hidden, options)).set_frozen(frozen); };
}

}  // namespace

TEST_CASE("allocations: the counters see operator new and Eigen's heap allocations") {
  const long news = allocations_in([] {
    auto* v = new std::vector<int>(100);  // two allocations: the vector and its elements
    sink = v->data();
    delete v;
  });
  CHECK(news == 2);
  const long aligned = allocations_in([] {
    struct alignas(64) Wide {
      double values[8];
    };
    auto* w = new Wide[3];
    sink = w;
    delete[] w;
  });
  CHECK(aligned == 1);
  const long eigen = allocations_in([] {
    Matrix<double> a = Matrix<double>::Ones(40, 40);
    sink = a.data();
  });
  CHECK(eigen == 1);
  CHECK(allocations_in([] {}) == 0);
}

TEST_CASE_TEMPLATE("allocations: Dense with every activation, with and without bias", Scalar, float, double) {
  std::vector<Case<Scalar>> cases;
  for (Activation a : {Activation::linear, Activation::relu, Activation::sigmoid, Activation::tanh,
                       Activation::softmax})
    for (bool use_bias : {true, false}) {
      DenseOptions options;
      options.use_bias = use_bias;
      cases.push_back({std::string(to_string(a)) + (use_bias ? "" : ", no bias"),
                       [=](Sequential<Scalar>& m) { m.add(Dense<Scalar>(hidden, hidden, a, options)); }});
    }
  check_cases(cases, MeanSquaredError{}, Adam<Scalar>{});
}

TEST_CASE_TEMPLATE("allocations: activation layers and Dropout", Scalar, float, double) {
  check_cases<Scalar>({{"ReLU", [](Sequential<Scalar>& m) { m.add(ReLU<Scalar>()); }},
                       {"Sigmoid", [](Sequential<Scalar>& m) { m.add(Sigmoid<Scalar>()); }},
                       {"Tanh", [](Sequential<Scalar>& m) { m.add(Tanh<Scalar>()); }},
                       {"Softmax", [](Sequential<Scalar>& m) { m.add(Softmax<Scalar>()); }},
                       {"Linear", [](Sequential<Scalar>& m) { m.add(Linear<Scalar>()); }},
                       {"Dropout", [](Sequential<Scalar>& m) { m.add(Dropout<Scalar>(0.3)); }},
                       {"Dropout rate 0", [](Sequential<Scalar>& m) { m.add(Dropout<Scalar>(0.0)); }}},
                      MeanSquaredError{}, Adam<Scalar>{});
}

TEST_CASE_TEMPLATE("allocations: BatchNorm in every mode", Scalar, float, double) {
  BatchNormOptions legacy;
  legacy.frozen_policy = FrozenBatchNormPolicy::batch_statistics;
  BatchNormOptions cumulative = BatchNormOptions::pytorch();
  cumulative.cumulative_average = true;
  check_cases<Scalar>(
      {{"trainable", batch_norm<Scalar>({}, false)},
       {"frozen, batch statistics", batch_norm<Scalar>(legacy, true)},
       {"frozen, moving statistics", batch_norm<Scalar>({}, true)},
       {"pytorch convention", batch_norm<Scalar>(BatchNormOptions::pytorch(), false)},
       {"pytorch cumulative average", batch_norm<Scalar>(cumulative, false)}},
      MeanSquaredError{}, Adam<Scalar>{});
}

TEST_CASE_TEMPLATE("allocations: convolution and pooling layers", Scalar, float, double) {
  // Images (6, 6, 2): Conv2D 'same' -> BatchNorm per channel -> max pooling ->
  // Conv2D 'valid' -> average or global average pooling -> Flatten -> Dense.
  for (bool global : {false, true}) {
    INFO("global average pooling: ", global);
    Conv2DOptions same;
    same.padding = Padding::same;
    same.activation = Activation::relu;
    Sequential<Scalar> model(3);
    model.add(Conv2D<Scalar>(Shape{6, 6, 2}, 4, 3, same));
    model.add(BatchNorm<Scalar>());
    model.add(MaxPooling2D<Scalar>());
    model.add(Conv2D<Scalar>(4, 2));
    if (global) {
      model.add(GlobalAveragePooling2D<Scalar>());
    } else {
      model.add(AveragePooling2D<Scalar>());
      model.add(Flatten<Scalar>());
    }
    model.add(Dense<Scalar>(4, outputs));
    model.compile(MeanSquaredError{}, Adam<Scalar>{});
    const Counts counts = steady_state(model);
    CHECK(counts.train == 0);
    CHECK(counts.inference == 0);
  }
}

TEST_CASE_TEMPLATE("allocations: every optimizer", Scalar, float, double) {
  // A model with weights in Dense and BatchNorm layers, and a frozen part.
  const std::vector<Case<Scalar>> cases = {
      {"Dense, BatchNorm, Dropout",
       [](Sequential<Scalar>& m) {
         m.add(BatchNorm<Scalar>(hidden));
         m.add(Dropout<Scalar>(0.2));
         m.add(Dense<Scalar>(hidden, hidden, Activation::tanh));
       }},
      {"frozen first layers", [](Sequential<Scalar>& m) {
         m.add(Dense<Scalar>(hidden, hidden, Activation::sigmoid));
         m.freeze(0, 2);
       }}};
  SUBCASE("SGD") { check_cases(cases, MeanSquaredError{}, SGD<Scalar>{}); }
  SUBCASE("SGD with momentum") { check_cases(cases, MeanSquaredError{}, SGD<Scalar>{Scalar(0.01), Scalar(0.9)}); }
  SUBCASE("SGD Nesterov") { check_cases(cases, MeanSquaredError{}, SGD<Scalar>{Scalar(0.01), Scalar(0.9), true}); }
  SUBCASE("Adam") { check_cases(cases, MeanSquaredError{}, Adam<Scalar>{}); }
  SUBCASE("RMSprop") { check_cases(cases, MeanSquaredError{}, RMSprop<Scalar>{}); }
}

TEST_CASE_TEMPLATE("allocations: every loss", Scalar, float, double) {
  const std::vector<Case<Scalar>> cases = {{"Dense only", nothing<Scalar>()}};
  SUBCASE("MSE") { check_cases(cases, MeanSquaredError{}, Adam<Scalar>{}); }
  SUBCASE("MAE") { check_cases(cases, MeanAbsoluteError{}, Adam<Scalar>{}); }
  SUBCASE("binary cross-entropy") {
    check_cases(cases, BinaryCrossentropy{}, Adam<Scalar>{}, Activation::sigmoid);
  }
  SUBCASE("binary cross-entropy from logits") { check_cases(cases, BinaryCrossentropy{true}, Adam<Scalar>{}); }
  SUBCASE("categorical cross-entropy") {
    check_cases(cases, CategoricalCrossentropy{}, Adam<Scalar>{}, Activation::softmax);
  }
  SUBCASE("categorical cross-entropy from logits") {
    check_cases(cases, CategoricalCrossentropy{true}, Adam<Scalar>{});
  }
}

namespace {
/// Checks that fit's batches allocate nothing after the first epoch (which sizes the buffers). `cache` is
/// the frozen-prefix cache setting.
template <class Scalar>
void check_fit_steps(Sequential<Scalar>& model, PrefixCache cache) {
  const Index batches = 8;
  const int epochs = 3;
  const Matrix<Scalar> x = uniform<Scalar>(batches * batch, inputs, 3);
  const Matrix<Scalar> y = one_hot_targets<Scalar>(x.rows());

  FitOptions<Scalar> options;
  options.batch_size = batch;  // all batches the same size
  options.epochs = epochs;
  options.verbose = 0;
  options.validation_data = ValidationData<Scalar>{x.topRows(2 * batch), y.topRows(2 * batch)};
  options.cache_frozen_prefix = cache;
  counting::check_steady_state_fit(model, x, y, options);
}
}  // namespace

TEST_CASE_TEMPLATE("allocations: a fit step allocates nothing after the first epoch", Scalar, float, double) {
  auto model = make_model<Scalar>(
      [](Sequential<Scalar>& m) {
        m.add(BatchNorm<Scalar>(hidden));
        m.add(Dropout<Scalar>(0.2));
      },
      Activation::softmax);
  model.compile(CategoricalCrossentropy{}, Adam<Scalar>{}, {Metric::accuracy, Metric::mae});
  check_fit_steps(model, PrefixCache::never);
}

TEST_CASE_TEMPLATE("allocations: a fit step on a cached frozen prefix allocates nothing after the first epoch", Scalar,
                   float, double) {
  auto model = make_model<Scalar>(
      [](Sequential<Scalar>& m) {
        m.add(BatchNorm<Scalar>(hidden));
        m.add(Dense<Scalar>(hidden, Activation::relu));
        m.add(Dropout<Scalar>(0.2));
      },
      Activation::softmax);
  model.freeze(0, 3);  // Dense, BatchNorm (moving statistics), Dense
  model.compile(CategoricalCrossentropy{}, Adam<Scalar>{}, {Metric::accuracy, Metric::mae});
  REQUIRE(model.frozen_prefix() == 3);
  check_fit_steps(model, PrefixCache::always);
}

TEST_CASE_TEMPLATE("allocations: evaluate allocates per call, not per batch", Scalar, float, double) {
  auto model = make_model<Scalar>(batch_norm<Scalar>({}, false));
  model.compile(MeanSquaredError{}, SGD<Scalar>{}, {Metric::mae});
  const Matrix<Scalar> x = uniform<Scalar>(steps * batch, inputs, 4);
  const Matrix<Scalar> y = one_hot_targets<Scalar>(x.rows());
  model.evaluate(x, y, batch);  // warm-up
  const long one_batch = allocations_in([&] { model.evaluate(x.topRows(batch), y.topRows(batch), batch); });
  const long many_batches = allocations_in([&] { model.evaluate(x, y, batch); });
  CHECK(many_batches == one_batch);
}

TEST_CASE_TEMPLATE("predict into a caller's matrix", Scalar, float, double) {
  auto model = make_model<Scalar>(nothing<Scalar>());
  const Matrix<Scalar> x = uniform<Scalar>(10, inputs, 5);
  Matrix<Scalar> out(10, outputs);
  model.predict(x, out, 4);  // 4 + 4 + 2 rows
  CHECK((out.array() == model.predict(x, 4).array()).all());

  Matrix<Scalar> wrong = Matrix<Scalar>::Constant(9, outputs, 5);
  CHECK_THROWS_WITH_AS(model.predict(x, wrong), "Sequential::predict: out is 9 x 3, expected 10 x 3 "
                                                "(a row per row of x, a column per output)", ShapeError);
  CHECK((wrong.array() == 5).all());  // unchanged
  Matrix<Scalar> wide(10, outputs + 1);
  CHECK_THROWS_AS(model.predict(x, wide), ShapeError);
  CHECK_THROWS_AS(model.predict(x, out, 0), ValueError);
}

// The thread setting of the products (threads.hpp). Without OpenMP there is one
// thread whatever is asked; with it, what was asked.
TEST_CASE("set_num_threads and num_threads") {
  const int before = num_threads();
  CHECK(before >= 1);
  CHECK_THROWS_WITH_AS(set_num_threads(-1), "set_num_threads: n must be >= 0 (0: the default), got -1", ValueError);
  CHECK(num_threads() == before);
  set_num_threads(2);
#ifdef _OPENMP
  CHECK(num_threads() == 2);
#else
  CHECK(num_threads() == 1);
#endif
  set_num_threads(0);  // back to the default
  CHECK(num_threads() == before);
}

TEST_CASE_TEMPLATE("allocations: the new activations, fused into Dense and Conv2D and as layers", Scalar, float,
                   double) {
  // GELU and SiLU keep the pre-activations in a buffer of their own: sized once, like the output.
  std::vector<Case<Scalar>> cases;
  for (Activation a : {Activation::leaky_relu, Activation::elu, Activation::gelu, Activation::gelu_approximate,
                       Activation::silu, Activation::softplus, Activation::relu6})
    for (bool use_bias : {true, false}) {
      DenseOptions options;
      options.use_bias = use_bias;
      cases.push_back({std::string(to_string(a)) + (use_bias ? "" : ", no bias"),
                       [=](Sequential<Scalar>& m) { m.add(Dense<Scalar>(hidden, hidden, a, options)); }});
    }
  cases.push_back({"LeakyReLU", [](Sequential<Scalar>& m) { m.add(LeakyReLU<Scalar>(0.1)); }});
  cases.push_back({"ELU", [](Sequential<Scalar>& m) { m.add(ELU<Scalar>(0.5)); }});
  cases.push_back({"GELU", [](Sequential<Scalar>& m) { m.add(GELU<Scalar>()); }});
  cases.push_back({"GELU approximate", [](Sequential<Scalar>& m) { m.add(GELU<Scalar>(true)); }});
  cases.push_back({"SiLU", [](Sequential<Scalar>& m) { m.add(SiLU<Scalar>()); }});
  cases.push_back({"Softplus", [](Sequential<Scalar>& m) { m.add(Softplus<Scalar>()); }});
  cases.push_back({"ReLU6", [](Sequential<Scalar>& m) { m.add(ReLU6<Scalar>()); }});
  check_cases(cases, MeanSquaredError{}, Adam<Scalar>{}, Activation::silu);

  // Images (6, 6, 2): Conv2D 'same' with GELU -> Conv2D 'valid' with SiLU -> global average pooling -> Dense.
  Conv2DOptions gelu;
  gelu.padding = Padding::same;
  gelu.activation = Activation::gelu;
  Conv2DOptions silu;
  silu.activation = Activation::silu;
  Sequential<Scalar> model(3);
  model.add(Conv2D<Scalar>(Shape{6, 6, 2}, 4, 3, gelu));
  model.add(Conv2D<Scalar>(4, 2, silu));
  model.add(GlobalAveragePooling2D<Scalar>());
  model.add(Dense<Scalar>(4, outputs, Activation::gelu_approximate));
  model.compile(MeanSquaredError{}, Adam<Scalar>{});
  const Counts counts = steady_state(model);
  CHECK(counts.train == 0);
  CHECK(counts.inference == 0);
}

TEST_CASE_TEMPLATE("allocations: weight decay, each clipping, schedules, AMSGrad and centered RMSprop", Scalar, float,
                   double) {
  // Clipping writes into a buffer build() allocates, the global norm is a sum kept in the optimizer, the names
  // for exclude_from_weight_decay are compared as string views and the schedule is a virtual call: a steady-state
  // step must still allocate nothing. The frozen case checks that skipped tensors change none of this.
  const std::vector<Case<Scalar>> cases = {
      {"Dense, BatchNorm (gamma, beta)", [](Sequential<Scalar>& m) { m.add(BatchNorm<Scalar>(hidden)); }},
      {"frozen first layers", [](Sequential<Scalar>& m) {
         m.add(Dense<Scalar>(hidden, hidden, Activation::sigmoid));
         m.freeze(0, 2);
       }}};
  const std::vector<std::string> excluded = {"bias", "gamma", "beta"};
  SUBCASE("AdamW, AMSGrad, clipnorm, CosineDecay with warm-up") {
    check_cases(cases, MeanSquaredError{},
                AdamW<Scalar>(CosineDecay<Scalar>(0, 100, 0.1, 1e-3, 5), Scalar(0.004), Scalar(0.9), Scalar(0.999),
                              Scalar(1e-7), true)
                    .exclude_from_weight_decay(excluded)
                    .set_clipnorm(Scalar(0.5)));
  }
  SUBCASE("RMSprop centered with momentum, weight decay, global_clipnorm, ExponentialDecay") {
    check_cases(cases, MeanSquaredError{},
                RMSprop<Scalar>(ExponentialDecay<Scalar>(1e-3, 10, 0.9, true), Scalar(0.9), Scalar(1e-7),
                                Scalar(0.5), true)
                    .set_weight_decay(Scalar(0.01))
                    .exclude_from_weight_decay(excluded)
                    .set_global_clipnorm(Scalar(1)));
  }
  SUBCASE("SGD Nesterov, weight decay, clipvalue, PiecewiseConstantDecay") {
    check_cases(cases, MeanSquaredError{},
                SGD<Scalar>(PiecewiseConstantDecay<Scalar>({2, 4}, {0.1, 0.05, 0.01}), Scalar(0.9), true)
                    .set_weight_decay(Scalar(0.01))
                    .set_clipvalue(Scalar(0.1)));
  }
  SUBCASE("Adam, PolynomialDecay with cycle, InverseTimeDecay") {
    check_cases(cases, MeanSquaredError{}, Adam<Scalar>(PolynomialDecay<Scalar>(1e-3, 3, 1e-4, 2, true)));
    check_cases(cases, MeanSquaredError{}, Adam<Scalar>(InverseTimeDecay<Scalar>(1e-3, 3, 0.5)));
  }
}

TEST_CASE_TEMPLATE("allocations: weighted fit steps, every new loss and metric, train_on_batch with weights", Scalar,
                   float, double) {
  const Index batches = 6;
  const int epochs = 3;
  const Matrix<Scalar> x = uniform<Scalar>(batches * batch, inputs, 5);
  Matrix<Scalar> labels(x.rows(), 1);
  for (Index i = 0; i < x.rows(); ++i) labels(i, 0) = static_cast<Scalar>(i % outputs);
  const Matrix<Scalar> y = one_hot_targets<Scalar>(x.rows());
  const Metric custom = Metric::custom("abs", [](const auto& t, const auto& p) {
    return (t - p).cwiseAbs().rowwise().sum();  // an expression: evaluated into nothing
  });
  const auto run = [&](auto loss, const Matrix<Scalar>& targets, std::vector<Metric> metrics) {
    auto model = make_model<Scalar>([](Sequential<Scalar>&) {}, Activation::softmax);
    model.compile(loss, Adam<Scalar>{}, std::move(metrics));
    std::vector<long> counter_at_batch_end;
    counter_at_batch_end.reserve(static_cast<std::size_t>(batches * epochs));
    auto record = std::make_shared<LambdaCallback<Scalar>>();
    record->batch_end = [&](Sequential<Scalar>&, Index, const Logs&) {
      counter_at_batch_end.push_back(counting::allocations.load());
    };
    FitOptions<Scalar> options;
    options.batch_size = batch;
    options.epochs = epochs;
    options.verbose = 0;
    options.sample_weight = Vector<Scalar>::LinSpaced(x.rows(), Scalar(0.5), Scalar(2));
    options.callbacks = {record};
    allocations_in([&] { model.fit(x, targets, options); });
    REQUIRE(counter_at_batch_end.size() == static_cast<std::size_t>(batches * epochs));
    for (int epoch = 1; epoch < epochs; ++epoch)
      for (Index b = 1; b < batches; ++b) {
        const auto i = static_cast<std::size_t>(epoch * batches + b);
        INFO("epoch ", epoch, ", batch ", b);
        CHECK(counter_at_batch_end[i] - counter_at_batch_end[i - 1] == 0);
      }
    // train_on_batch with weights, after a first call sized its buffers.
    const Vector<Scalar> w = Vector<Scalar>::Constant(batch, Scalar(1.5));
    model.train_on_batch(x.topRows(batch), targets.topRows(batch), w);
    CHECK(allocations_in([&] { model.train_on_batch(x.topRows(batch), targets.topRows(batch), w); }) == 0);
  };
  run(CategoricalCrossentropy{false, 0.1}, y,
      {Metric::accuracy, Metric::mse, Metric::top_k_categorical_accuracy(2), custom});
  run(SparseCategoricalCrossentropy{}, labels, {Metric::accuracy, Metric::sparse_top_k_categorical_accuracy(2)});
  run(Huber{0.5}, y, {Metric::mae, Metric::binary_accuracy});
}

TEST_CASE_TEMPLATE("allocations: regularizers on kernels, biases, γ and β and layer outputs", Scalar, float, double) {
  // The penalties are sums over the tensors and each activity gradient has a buffer per layer (sized by the first
  // batch): a steady-state step allocates nothing, frozen regularized layers included.
  using regularizers::L1;
  using regularizers::L1L2;
  using regularizers::L2;
  DenseOptions dense;
  dense.kernel_regularizer = L1L2(0.01, 0.01);
  dense.bias_regularizer = L2(0.01);
  dense.activity_regularizer = L1(0.001);
  BatchNormOptions bn;
  bn.gamma_regularizer = L2(0.01);
  bn.beta_regularizer = L1(0.01);
  const std::vector<Case<Scalar>> cases{
      {"regularized Dense and BatchNorm",
       [=](Sequential<Scalar>& m) {
         m.add(Dense<Scalar>(hidden, Activation::relu, dense));
         m.add(BatchNorm<Scalar>(bn));
         m.add(ReLU<Scalar>()).set_activity_regularizer(L2(0.01));
       }},
      {"a frozen regularized Dense under a trained one",
       [=](Sequential<Scalar>& m) {
         m.add(Dense<Scalar>(hidden, Activation::tanh, dense)).set_frozen(true);
         m.add(Dense<Scalar>(hidden, Activation::relu, dense));
       }},
  };
  check_cases(cases, MeanSquaredError{}, Adam<Scalar>{});
}
