// Pinning layers to the inference phase while training (Keras's
// `base(x, training=False)`): a pinned Dropout keeps every unit, a pinned
// BatchNorm uses and keeps its moving statistics, gradients flow through the
// inference function, and a model whose frozen base is pinned trains exactly
// as the "split" fix trains its top on base.predict features.
#include <doctest/doctest.h>

#include <minidl/explain_gap.hpp>
#include <minidl/gradient_check.hpp>
#include <minidl/io.hpp>
#include <sstream>
#include <string>

#include "support.hpp"

using namespace minidl;
using test::bitwise_equal;

namespace {

/// A base with every kind of phase difference: Dense -> BatchNorm (Keras) ->
/// ReLU -> Dropout(0.3) -> Dense -> BatchNorm -> ReLU, then a head Dense ->
/// Dropout(0.2) -> Dense. Layers [0, 7) are the base.
template <class Scalar>
Sequential<Scalar> transfer_model() {
  Sequential<Scalar> model(11);
  model.add(Dense<Scalar>(12, 16));
  model.add(BatchNorm<Scalar>());
  model.add(ReLU<Scalar>());
  model.add(Dropout<Scalar>(0.3));
  model.add(Dense<Scalar>(16, 8));
  model.add(BatchNorm<Scalar>());
  model.add(ReLU<Scalar>());
  model.add(Dense<Scalar>(8, 8, Activation::tanh));
  model.add(Dropout<Scalar>(0.2));
  model.add(Dense<Scalar>(8, 1));
  return model;
}
constexpr std::size_t base_layers = 7;

/// Moves both BatchNorms' moving statistics away from (0, 1), so that the
/// inference path differs from a fresh layer's.
template <class Scalar>
void pretrain(Sequential<Scalar>& model, const Matrix<Scalar>& x, const Matrix<Scalar>& y) {
  model.compile(MeanSquaredError{}, Adam<Scalar>{Scalar(1e-2)});
  model.fit(x, y, test::silent_fit<Scalar>(3, 16, 3));
}

}  // namespace

TEST_CASE_TEMPLATE("a pinned Dropout keeps every unit while training, draws nothing, and passes gradients through",
                   Scalar, float, double) {
  const Matrix<Scalar> x = test::uniform<Scalar>(6, 10, 1);
  Dropout<Scalar> pinned(0.5, 7), twin(0.5, 7);
  pinned.build(Shape{10});
  twin.build(Shape{10});
  pinned.set_inference_pinned(true);
  CHECK(pinned.inference_pinned());
  CHECK_FALSE(pinned.phases_differ());
  CHECK(twin.phases_differ());
  CHECK(pinned.forward(x, Phase::training) == x);
  const Matrix<Scalar> dy = test::uniform<Scalar>(6, 10, 2);
  CHECK(pinned.backward(x, dy) == dy);
  // Its generator did not move: unpinned, it draws the twin's first mask.
  pinned.set_inference_pinned(false);
  CHECK(pinned.forward(x, Phase::training) == twin.forward(x, Phase::training));
  // A clone keeps the flag.
  pinned.set_inference_pinned(true);
  CHECK(pinned.clone()->inference_pinned());
}

TEST_CASE_TEMPLATE("a pinned BatchNorm normalizes with its moving statistics while training and never updates them",
                   Scalar, float, double) {
  const Matrix<Scalar> x = test::uniform<Scalar>(8, 3, 3, -2, 4);
  BatchNorm<Scalar> bn(Shape{3});
  bn.set_moving_mean((Vector<Scalar>(3) << 1, -1, Scalar(0.5)).finished());
  bn.set_moving_variance((Vector<Scalar>(3) << 4, 1, Scalar(0.25)).finished());
  bn.set_gamma((Vector<Scalar>(3) << 2, Scalar(0.5), 1).finished());
  bn.set_inference_pinned(true);
  CHECK_FALSE(bn.phases_differ());  // trainable, yet pinned
  const Matrix<Scalar> inference = bn.forward(x, Phase::inference);
  CHECK(bn.forward(x, Phase::training) == inference);
  CHECK(bn.moving_mean() == (Vector<Scalar>(3) << 1, -1, Scalar(0.5)).finished());
  CHECK(bn.moving_variance() == (Vector<Scalar>(3) << 4, 1, Scalar(0.25)).finished());
  CHECK(bn.num_batches_tracked() == 0);

  // Its gradients are those of the inference function, γ and β included
  // (it is not frozen): checked against finite differences in double.
  if constexpr (std::is_same_v<Scalar, double>) {
    const GradientCheckResult result = check_gradients(bn, x);
    CHECK(result.passed());
    BatchNorm<double> batch_statistics = bn;  // the same layer unpinned: the batch's statistics
    batch_statistics.set_inference_pinned(false);
    CHECK(batch_statistics.forward(x, Phase::training) != inference);
  }

  // The pytorch convention refuses to train on one value per channel with
  // batch statistics; pinned, it uses none, so one sample is fine.
  BatchNorm<Scalar> torch(Shape{3}, BatchNormOptions::pytorch());
  CHECK_THROWS_AS(torch.forward(x.topRows(1), Phase::training), ValueError);
  torch.set_inference_pinned(true);
  CHECK(torch.forward(x.topRows(1), Phase::training).rows() == 1);
}

TEST_CASE_TEMPLATE("fit with a frozen base pinned to inference equals the split fix, bit for bit", Scalar, float,
                   double) {
  const Matrix<Scalar> x = test::uniform<Scalar>(96, 12, 4);
  Matrix<Scalar> y(96, 1);
  for (Index r = 0; r < 96; ++r) y(r, 0) = x.row(r).head(6).sum() - x.row(r).tail(6).sum();
  Sequential<Scalar> pretrained = transfer_model<Scalar>();
  pretrain(pretrained, x, y);

  // Fix 3 with pinning: the whole model, its base frozen and pinned.
  Sequential<Scalar> pinned = pretrained.clone();
  pinned.freeze(0, base_layers);
  pinned.pin_inference(0, base_layers);
  pinned.compile(MeanSquaredError{}, Adam<Scalar>{Scalar(3e-3)});
  const History pinned_history = pinned.fit(x, y, test::silent_fit<Scalar>(4, 16, 3));

  // Fix 2: base features once, then the top alone.
  auto [base, top] = pretrained.clone().split(base_layers);
  const Matrix<Scalar> features = base.predict(x, 16);
  top.compile(MeanSquaredError{}, Adam<Scalar>{Scalar(3e-3)});
  const History top_history = top.fit(features, y, test::silent_fit<Scalar>(4, 16, 3));

  CHECK(pinned_history.loss() == top_history.loss());
  CHECK(bitwise_equal(pinned.get_weights(), [&] {
    auto weights = base.get_weights();
    for (auto& w : top.get_weights()) weights.push_back(w);
    return weights;
  }()));
  CHECK(pinned.evaluate(x, y) == top.evaluate(features, y));

  // Without the pin, the frozen base's Dropout still drops during fit (its
  // BatchNorms already use moving statistics): not the split fix's numbers.
  Sequential<Scalar> unpinned = pretrained.clone();
  unpinned.freeze(0, base_layers);
  unpinned.compile(MeanSquaredError{}, Adam<Scalar>{Scalar(3e-3)});
  CHECK(unpinned.fit(x, y, test::silent_fit<Scalar>(4, 16, 3)).loss() != top_history.loss());
}

TEST_CASE("pinning is saved with the model, shown by summary, and explained by explain_gap") {
  const Matrix<float> x = test::uniform<float>(64, 12, 5);
  const Matrix<float> y = test::uniform<float>(64, 1, 6);
  Sequential<float> model = transfer_model<float>();
  pretrain(model, x, y);
  model.pin_inference(0, base_layers);
  CHECK_THROWS_WITH_AS(model.pin_inference(3, 11), "Sequential::pin_inference: range [3, 11) is not within [0, 10]",
                       ValueError);

  const test::TempDir dir;
  save_model(model, dir.file("pinned.safetensors"));
  const Sequential<float> loaded = load_model<float>(dir.file("pinned.safetensors"));
  for (std::size_t i = 0; i < model.size(); ++i) CHECK(loaded.layer(i).inference_pinned() == (i < base_layers));

  std::ostringstream summary;
  model.summary(summary);
  CHECK(summary.str().find("no, pinned to inference") != std::string::npos);

  // The base's BatchNorms and Dropout are listed with the reason and a share
  // of exactly 0; the head's Dropout still explains the whole gap.
  const GapReport report = explain_gap(model, x, y);
  REQUIRE(report.layers.size() == 4);
  for (std::size_t i : {0, 2})
    CHECK(report.layers[i].reason == "pinned to the inference phase (unpinned: batch statistics (trainable))");
  CHECK(report.layers[1].reason == "pinned to the inference phase (unpinned: drops 30% of units)");
  for (std::size_t i = 0; i < 3; ++i) CHECK(report.layers[i].share == 0);
  CHECK(report.layers[3].reason == "drops 20% of units");
  CHECK(report.layers[3].share == doctest::Approx(report.inference_loss - report.training_loss));

  // Pinned everywhere, the two phases are one function: no gap at all.
  model.pin_inference();
  const GapReport none = explain_gap(model, x, y);
  CHECK(none.training_loss == none.inference_loss);
}
