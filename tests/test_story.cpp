// The story, as tests: the three causes of "fit printed 2.56, evaluate printed
// 29.28 on the same images", and the fixes, on real Fashion-MNIST where needed.
#include <doctest/doctest.h>

#include <filesystem>
#include <minidl/fashion_mnist.hpp>
#include <minidl/minidl.hpp>

#include "support.hpp"

using namespace minidl;

namespace {

bool have_fashion_mnist() {
  return std::filesystem::exists(default_fashion_mnist_dir() + "/train-images-idx3-ubyte.gz");
}


// Rows of `images` whose label is in [first, last], scaled by `brightness`.
Matrix<float> select(const Matrix<float>& images, const std::vector<int>& labels, int first, int last, Index count,
                     float brightness) {
  Matrix<float> out(count, images.cols());
  Index r = 0;
  for (std::size_t i = 0; i < labels.size() && r < count; ++i)
    if (labels[i] >= first && labels[i] <= last) out.row(r++) = brightness * images.row(static_cast<Index>(i));
  REQUIRE(r == count);
  return out;
}

struct Story {
  Sequential<float> base;  // Dense-BN-ReLU x2, pretrained on clothes
  Matrix<float> x, y;      // dimmed footwear/bags and their coverage targets
};

// Pretrains a small base as a classifier of clothes (labels 0-4), and prepares
// a domain-shifted regression set: footwear and bags (labels 5-9) in dimmer
// light, target = % of the frame the item covers.
Story make_story() {
  static const FashionMnist<float> data = load_fashion_mnist<float>(default_fashion_mnist_dir(), 20000);
  Matrix<float> clothes = select(data.train_x, data.train_y, 0, 4, 3000, 1.0f);
  Matrix<float> labels = Matrix<float>::Zero(3000, 5);
  for (Index r = 0, i = 0; r < 3000; ++i)
    if (data.train_y[static_cast<std::size_t>(i)] <= 4) labels(r++, data.train_y[static_cast<std::size_t>(i)]) = 1;

  Sequential<float> pretrained(1);
  pretrained.add(Dense<float>(784, 64));
  pretrained.add(BatchNorm<float>());
  pretrained.add(ReLU<float>());
  pretrained.add(Dense<float>(64, 32));
  pretrained.add(BatchNorm<float>());
  pretrained.add(ReLU<float>());
  pretrained.add(Dense<float>(32, 5, Activation::softmax));
  pretrained.compile(CategoricalCrossentropy{}, Adam<float>{1e-3f}, {Metric::accuracy});
  const History h = pretrained.fit(clothes, labels, test::quiet<float>(2, 64));
  CHECK(h["accuracy"].back() > 0.6);  // the base learned something

  Story story{pretrained.split(6).first, select(data.train_x, data.train_y, 5, 9, 512, 0.5f), Matrix<float>()};
  story.y.resize(512, 1);
  for (Index r = 0; r < 512; ++r) story.y(r, 0) = 100.0f * (story.x.row(r).array() > 0.1f).cast<float>().mean();
  return story;
}

Sequential<float> head_on(const Sequential<float>& base) {
  Sequential<float> model(2);
  model.add(base.clone());
  model.add(Dense<float>(32, 32, Activation::relu));
  model.add(Dense<float>(32, 1));
  return model;
}

}  // namespace

TEST_CASE("cause 1, update order: fit reports the pre-update loss, validation equals evaluate") {
  // The story's second program: Dense(1000, relu) on 100 inputs -> Dense(1), MSE, Adam, 32 samples.
  Rng rng(7);
  Matrix<float> x(32, 100), y(32, 1);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(rng.uniform());
  for (Index i = 0; i < y.size(); ++i) y.data()[i] = static_cast<float>(rng.uniform(0, 10));
  Sequential<float> model(1);
  model.add(Dense<float>(100, 1000, Activation::relu));
  model.add(Dense<float>(1000, 1));
  model.compile(MeanSquaredError{}, Adam<float>{});
  auto before = model.clone();
  FitOptions<float> options = test::quiet<float>(1);
  options.validation_data = ValidationData<float>{x, y};
  const History h = model.fit(x, y, options);
  CHECK(static_cast<float>(h.loss()[0]) == before.evaluate(x, y));  // one batch: the loss before the update
  CHECK(static_cast<float>(h.val_loss()[0]) == model.evaluate(x, y));
  CHECK(model.evaluate(x, y) < static_cast<float>(h.loss()[0]));  // the update helped
}

TEST_CASE("cause 2, Dropout: active in the training phase only") {
  Rng rng(8);
  Matrix<float> x(64, 20), y(64, 1);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(rng.uniform(-1, 1));
  for (Index r = 0; r < 64; ++r) y(r, 0) = x.row(r).sum();
  for (double rate : {0.0, 0.5}) {
    Sequential<float> model(3);
    model.add(Dense<float>(20, 64, Activation::relu));
    model.add(Dropout<float>(rate));
    model.add(Dense<float>(64, 1));
    model.compile(MeanSquaredError{}, Adam<float>{});
    const float inference = model.evaluate(x, y);
    const float training = model.clone().loss_in_phases(x, y, std::vector<Phase>(3, Phase::training));
    if (rate == 0)
      CHECK(training == inference);
    else
      CHECK(training != inference);
  }
}

TEST_CASE("cause 3, frozen BatchNorm on real data: the legacy policy opens the gap, the default and the fixes close it") {
  if (!have_fashion_mnist()) {
    MESSAGE("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist): skipped");
    return;
  }
  const Story story = make_story();
  const auto fine_tune = [&](Sequential<float>& model, const Matrix<float>& x) {
    model.compile(MeanSquaredError{}, Adam<float>{3e-3f});
    const double fit_loss = model.fit(x, story.y, test::quiet<float>(15)).loss().back();
    return std::make_pair(fit_loss, static_cast<double>(model.evaluate(x, story.y)));
  };

  // Legacy (Keras 2.1.3-2.3.1): frozen BN normalizes training batches with their own statistics.
  auto legacy = head_on(story.base);
  legacy.freeze(0, 6);
  legacy.set_frozen_batchnorm_policy(FrozenBatchNormPolicy::batch_statistics);
  const auto [legacy_fit, legacy_eval] = fine_tune(legacy, story.x);
  CHECK(legacy_eval > 3 * legacy_fit);

  // Default policy: with every BN frozen and no Dropout, both phases compute the same function.
  auto standard = head_on(story.base);
  standard.freeze(0, 6);
  const auto [fit_loss, eval_loss] = fine_tune(standard, story.x);
  const float training = standard.clone().loss_in_phases(story.x, story.y, std::vector<Phase>(8, Phase::training));
  CHECK(training == standard.evaluate(story.x, story.y));
  CHECK(eval_loss < 1.5 * fit_loss);

  // Fix 1: BN trainable; its moving statistics follow the new data.
  auto trainable_bn = head_on(story.base);
  trainable_bn.freeze(0, 6);
  trainable_bn.layer(1).set_frozen(false);
  trainable_bn.layer(4).set_frozen(false);
  const auto [fix1_fit, fix1_eval] = fine_tune(trainable_bn, story.x);
  CHECK(fix1_eval < 1.5 * fix1_fit);

  // Fix 2: split; features computed once in the inference phase, only the top trains.
  auto split_model = head_on(story.base);
  auto [front, top] = split_model.split(6);
  const Matrix<float> features = front.predict(story.x);
  const auto [fix2_fit, fix2_eval] = fine_tune(top, features);
  CHECK(fix2_eval < 1.5 * fix2_fit);
  split_model.compile(MeanSquaredError{}, Adam<float>{});
  CHECK(split_model.evaluate(story.x, story.y) == doctest::Approx(fix2_eval).epsilon(1e-5));
}
