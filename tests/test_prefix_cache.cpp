// fit's cache of a frozen prefix (model/prefix_cache.hpp): which layers it
// covers (the layers' own answers, not a list of types), that a cached fit
// gives the uncached fit's losses, History and weights (bit for bit on the
// main example's conv base in float and double and on a Dense-BatchNorm base
// in double; in float that base's rows depend on their batch, and the test
// bounds the measured difference), the budget's fallback, the messages, and a
// prefix that changes during fit.
#include <doctest/doctest.h>

#include <memory>
#include <minidl/minidl.hpp>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "support.hpp"

using namespace minidl;

namespace {

using test::bitwise_equal;

/// The main example's conv base (examples/frozen_batchnorm.cpp): Conv2D-BN-ReLU-MaxPool x2, global average pooling.
template <class Scalar>
void add_conv_base(Sequential<Scalar>& model) {
  Conv2DOptions same;
  same.padding = Padding::same;
  BatchNormOptions bn;
  bn.momentum = 0.9;
  model.add(Conv2D<Scalar>(Shape{28, 28, 1}, 16, 3, same));
  model.add(BatchNorm<Scalar>(bn));
  model.add(ReLU<Scalar>());
  model.add(MaxPooling2D<Scalar>());
  model.add(Conv2D<Scalar>(32, 3, same));
  model.add(BatchNorm<Scalar>(bn));
  model.add(ReLU<Scalar>());
  model.add(MaxPooling2D<Scalar>());
  model.add(GlobalAveragePooling2D<Scalar>());
}

/// Dense-BN-ReLU x2 on 12 features.
template <class Scalar>
void add_dense_base(Sequential<Scalar>& model) {
  model.add(Dense<Scalar>(12, 24));
  model.add(BatchNorm<Scalar>());
  model.add(ReLU<Scalar>());
  model.add(Dense<Scalar>(24, 16));
  model.add(BatchNorm<Scalar>());
  model.add(ReLU<Scalar>());
}

/// A base, briefly trained (so that BatchNorm's moving statistics are not their defaults), then frozen, and a
/// head with Dropout: the story's model. Returns the number of base layers.
template <class Scalar>
std::size_t story_model(Sequential<Scalar>& model, bool conv, const Matrix<Scalar>& x, const Matrix<Scalar>& y) {
  if (conv) add_conv_base(model);
  else add_dense_base(model);
  const std::size_t base = model.size();
  model.add(Dense<Scalar>(16, Activation::relu));
  model.add(Dropout<Scalar>(0.3));
  model.add(Dense<Scalar>(y.cols(), Activation::softmax));
  model.compile(CategoricalCrossentropy{}, Adam<Scalar>{Scalar(1e-2)}, {Metric::accuracy});
  model.fit(x, y, test::quiet<Scalar>(1, 16));  // "pretraining"
  model.freeze(0, base);
  return base;
}

template <class Scalar>
Matrix<Scalar> labels(Index rows, Index classes, std::uint64_t seed) {
  Rng rng(seed);
  Matrix<Scalar> y = Matrix<Scalar>::Zero(rows, classes);
  for (Index r = 0; r < rows; ++r) y(r, static_cast<Index>(rng.below(static_cast<std::uint64_t>(classes)))) = 1;
  return y;
}

/// fit with the cache as `mode`; returns its History, its output in `out`.
template <class Scalar>
History fit_with(Sequential<Scalar>& model, const Matrix<Scalar>& x, const Matrix<Scalar>& y, PrefixCache mode,
                 std::string* out = nullptr, std::vector<std::shared_ptr<Callback<Scalar>>> callbacks = {}) {
  FitOptions<Scalar> options = test::silent_fit<Scalar>(4, 16, 3);  // 4 epochs of 16, shuffled: the last batch is short
  options.validation_data = ValidationData<Scalar>(x.topRows(20), y.topRows(20));
  options.validation_batch_size = 8;
  options.cache_frozen_prefix = mode;
  options.callbacks = std::move(callbacks);
  std::ostringstream text;
  if (out) {
    options.verbose = 2;
    options.out = &text;
  }
  History history = model.fit(x, y, options);
  if (out) *out = text.str();
  return history;
}

template <class Scalar>
void check_same_run(Sequential<Scalar>& cached, Sequential<Scalar>& uncached, const History& a, const History& b) {
  for (const char* name : {"loss", "accuracy", "val_loss", "val_accuracy"}) {
    CAPTURE(name);
    CHECK(a[name] == b[name]);  // bit for bit: doubles compared with ==
  }
  CHECK(bitwise_equal(cached.get_weights(), uncached.get_weights()));
  // The Dropout generator advanced the same way: the next fit would draw the same masks.
  for (std::size_t i = 0; i < cached.size(); ++i)
    CHECK(cached.layer(i).generator_state() == uncached.layer(i).generator_state());
}

}  // namespace

TEST_CASE_TEMPLATE("a cached fit is the uncached fit, bit for bit: the main example's conv base", T, float, double) {
  const Matrix<T> x = test::uniform<T>(70, 28 * 28, 1, 0, 1);
  const Matrix<T> y = labels<T>(70, 4, 2);
  Sequential<T> model(7);
  const std::size_t base = story_model(model, /*conv=*/true, x, y);
  REQUIRE(model.frozen_prefix() == base);  // the whole base: frozen BN with the moving-statistics policy
  Sequential<T> uncached = model.clone();
  std::string said;
  const History a = fit_with(model, x, y, PrefixCache::always, &said);
  const History b = fit_with(uncached, x, y, PrefixCache::never);
  check_same_run(model, uncached, a, b);
  CHECK(said.find("fit: layers 0-8 (conv2d ... global_average_pooling2d) are frozen and the same in both phases")
        != std::string::npos);
}

TEST_CASE_TEMPLATE("a cached fit is the uncached fit: a Dense-BatchNorm base (bit for bit in double)", T, float,
                   double) {
  const Matrix<T> x = test::uniform<T>(90, 12, 3);
  const Matrix<T> y = labels<T>(90, 3, 4);
  Sequential<T> model(8);
  const std::size_t base = story_model(model, /*conv=*/false, x, y);
  REQUIRE(model.frozen_prefix() == base);
  Sequential<T> uncached = model.clone();
  const History a = fit_with(model, x, y, PrefixCache::automatic);
  const History b = fit_with(uncached, x, y, PrefixCache::never);
  if constexpr (std::is_same_v<T, double>) {
    check_same_run(model, uncached, a, b);
  } else {
    // Eigen's small float products compute a row of a batch differently by its place in the batch (rows of a
    // 4-row tile vs the remainder rows): the cached prefix's rows, computed in data order, differ from the
    // shuffled batches' in the last bit, and so do the weights after training on them. Measured here: the losses
    // are equal, the weights within 3e-8 after 4 epochs. The bound below is 30 times that.
    double worst = 0;
    const auto wa = model.get_weights(), wb = uncached.get_weights();
    for (std::size_t i = 0; i < wa.size(); ++i) worst = std::max(worst, test::max_error(wa[i], wb[i]));
    CHECK(worst < 1e-6);
    for (std::size_t e = 0; e < a.loss().size(); ++e)
      CHECK(a.loss()[e] == doctest::Approx(b.loss()[e]).epsilon(1e-6));
  }
  // Nothing outlives fit: evaluate and predict are those of the uncached model.
  CHECK(model.evaluate(x, y) == uncached.evaluate(x, y));
}

TEST_CASE("the prefix ends at the first layer that trains, differs between its phases or has an activity penalty") {
  using S = double;
  const auto prefix = [](auto build) {
    Sequential<S> model(1);
    build(model);
    model.add(Dense<S>(2));
    return model.frozen_prefix();
  };
  // Trainable weights end it; a layer without weights does not.
  CHECK(prefix([](Sequential<S>& m) { m.add(Dense<S>(4, 4)); }) == 0);
  CHECK(prefix([](Sequential<S>& m) { m.add(Dense<S>(4, 4)).set_frozen(true); }) == 1);
  CHECK(prefix([](Sequential<S>& m) {
          m.add(Dense<S>(4, 4)).set_frozen(true);
          m.add(ReLU<S>());
          m.add(Dense<S>(4, 4));
        }) == 2);
  // Dropout that drops ends it, frozen or not; pinned to the inference phase, or with rate 0, it computes
  // one function.
  const auto frozen_dense_then = [](auto add) {
    return [add](Sequential<S>& m) {
      m.add(Dense<S>(4, 4)).set_frozen(true);
      add(m);
    };
  };
  CHECK(prefix(frozen_dense_then([](Sequential<S>& m) { m.add(Dropout<S>(0.5)).set_frozen(true); })) == 1);
  CHECK(prefix(frozen_dense_then([](Sequential<S>& m) { m.add(Dropout<S>(0.5)).set_inference_pinned(true); })) == 2);
  CHECK(prefix(frozen_dense_then([](Sequential<S>& m) { m.add(Dropout<S>(0.0)); })) == 2);
  // A frozen BatchNorm: in the prefix with the moving-statistics policy, not with batch statistics.
  CHECK(prefix([](Sequential<S>& m) { m.add(BatchNorm<S>(4)).set_frozen(true); }) == 1);
  CHECK(prefix([](Sequential<S>& m) {
          m.add(BatchNorm<S>(4)).set_frozen(true);
          m.set_frozen_batchnorm_policy(FrozenBatchNormPolicy::batch_statistics);
        }) == 0);
  CHECK(prefix([](Sequential<S>& m) { m.add(BatchNorm<S>(4)); }) == 0);  // trainable
  // An activity penalty depends on each batch's outputs: it ends the prefix.
  CHECK(prefix([](Sequential<S>& m) {
          m.add(Dense<S>(4, 4)).set_frozen(true);
          m.layer(0).set_activity_regularizer(regularizers::L2(0.1));
        }) == 0);
  // Never the last layer: a wholly frozen model still runs its last layer each batch.
  Sequential<S> frozen(1);
  frozen.add(Dense<S>(4, 4));
  frozen.add(Dense<S>(2));
  frozen.freeze();
  CHECK(frozen.frozen_prefix() == 1);
}

namespace {
/// A user's layer: y = x·s with one frozen weight per feature, the same in both phases (it says so by not
/// overriding phases_differ_impl).
template <class Scalar>
class Scale : public LayerBase<Scale<Scalar>, Scalar> {
 public:
  explicit Scale(Index features) : LayerBase<Scale<Scalar>, Scalar>(Shape{features}, Shape{features}) {
    scale_ = Vector<Scalar>::LinSpaced(features, Scalar(0.5), Scalar(2));
    grad_ = Vector<Scalar>::Zero(features);
  }
  const char* type() const override { return "Scale"; }

 protected:
  void forward_training(const Matrix<Scalar>& x, Matrix<Scalar>& y) override {
    y = x * scale_.asDiagonal();
    ++training_calls;
  }
  void forward_inference(const Matrix<Scalar>& x, Matrix<Scalar>& y) override { y = x * scale_.asDiagonal(); }
  void backward_impl(const Matrix<Scalar>& x, const Matrix<Scalar>& dy, Matrix<Scalar>* dx) override {
    if (!this->frozen()) grad_ = (x.array() * dy.array()).colwise().sum().transpose();
    if (dx) *dx = dy * scale_.asDiagonal();
  }
  void collect_parameters(std::vector<Parameter<Scalar>>& out) override {
    out.push_back({"scale", scale_.data(), grad_.data(), scale_.size()});
  }

 public:
  int training_calls = 0;

 private:
  Vector<Scalar> scale_, grad_;
};
}  // namespace

TEST_CASE("a user's layer that declares equal phases is cached: it runs once per batch of the cache, not per step") {
  const Matrix<double> x = test::uniform(40, 6, 5);
  const Matrix<double> y = labels<double>(40, 2, 6);
  const auto run = [&](PrefixCache mode, int& calls) {
    Sequential<double> model(2);
    model.add(Scale<double>(6)).set_frozen(true);
    model.add(Dense<double>(2, Activation::softmax));
    model.compile(CategoricalCrossentropy{}, SGD<double>{0.1});
    REQUIRE(model.frozen_prefix() == 1);
    const History h = fit_with(model, x, y, mode);
    calls = static_cast<Scale<double>&>(model.layer(0)).training_calls;
    return std::make_pair(h, model.get_weights());
  };
  int cached_calls = 0, uncached_calls = 0;
  const auto [a, wa] = run(PrefixCache::always, cached_calls);
  const auto [b, wb] = run(PrefixCache::never, uncached_calls);
  CHECK(a.loss() == b.loss());
  CHECK(bitwise_equal(wa, wb));
  CHECK(cached_calls == 3);                // 40 rows in batches of 16, once
  CHECK(uncached_calls == 4 * 3);          // every batch of 4 epochs
}

TEST_CASE("over the memory budget fit says so once and runs every layer, with the same results") {
  const Matrix<double> x = test::uniform(48, 12, 7);
  const Matrix<double> y = labels<double>(48, 3, 8);
  Sequential<double> model(3);
  story_model(model, false, x, y);
  Sequential<double> uncached = model.clone();
  FitOptions<double> options = test::silent_fit<double>(2, 16, 3);
  options.verbose = 2;
  std::ostringstream text;
  options.out = &text;
  options.cache_memory_budget = 100;  // bytes: the 48 x 16 doubles need 6144
  const History a = model.fit(x, y, options);
  CHECK(text.str().find("fit: not caching the frozen prefix, layers 0-5 (dense ... re_lu_1): its outputs need "
                        "6.0 KiB, over the budget of 100 bytes") != std::string::npos);
  CHECK(text.str().find("are frozen and the same") == std::string::npos);
  options.cache_memory_budget.reset();
  options.cache_frozen_prefix = PrefixCache::never;
  text.str("");
  const History b = uncached.fit(x, y, options);
  CHECK(text.str().find("frozen prefix") == std::string::npos);  // never: not a word
  CHECK(a.loss() == b.loss());
  CHECK(bitwise_equal(model.get_weights(), uncached.get_weights()));
  // PrefixCache::always ignores the budget.
  options.cache_frozen_prefix = PrefixCache::always;
  options.cache_memory_budget = 100;
  text.str("");
  model.fit(x, y, options);
  CHECK(text.str().find("are frozen and the same in both phases") != std::string::npos);
}

TEST_CASE_TEMPLATE("a callback that unfreezes a cached layer mid-fit: the cache is dropped, the run is uncached",
                   T, float, double) {
  const Matrix<T> x = test::uniform<T>(64, 12, 9);
  const Matrix<T> y = labels<T>(64, 3, 10);
  Sequential<T> model(4);
  story_model(model, false, x, y);
  Sequential<T> uncached = model.clone();
  const auto unfreeze_at_epoch_2 = [] {
    auto callback = std::make_shared<LambdaCallback<T>>();
    callback->epoch_begin = [](Sequential<T>& m, int epoch) {
      if (epoch == 2) m.layer(3).set_frozen(false);  // the second Dense of the base trains from epoch 3
    };
    return std::vector<std::shared_ptr<Callback<T>>>{callback};
  };
  std::string said;
  const History a = fit_with(model, x, y, PrefixCache::always, &said, unfreeze_at_epoch_2());
  const History b = fit_with(uncached, x, y, PrefixCache::never, nullptr, unfreeze_at_epoch_2());
  check_same_run(model, uncached, a, b);
  CHECK(said.find("Dense 'dense_1' left the frozen prefix") != std::string::npos);
  CHECK(model.frozen_prefix() == 3);
}
