// explain_gap: the decomposition of evaluate − fit's loss adds up, names the
// right layers, and never changes the model.
#include <doctest/doctest.h>

#include <minidl/minidl.hpp>

#include "support.hpp"
#include <sstream>

using namespace minidl;

namespace {

using test::uniform;

// Dense -> BN -> ReLU -> Dropout -> Dense, trained a little.
Sequential<double> trained_model(const Matrix<double>& x, const Matrix<double>& y, History& history) {
  Sequential<double> model(4);
  model.add(Dense<double>(5, 12));
  model.add(BatchNorm<double>());
  model.add(ReLU<double>());
  model.add(Dropout<double>(0.3));
  model.add(Dense<double>(12, 1));
  model.compile(MeanSquaredError{}, Adam<double>{1e-2});
  FitOptions<double> options;
  options.verbose = 0;
  options.epochs = 2;
  options.batch_size = 16;
  history = model.fit(x, y, options);
  return model;
}

}  // namespace

TEST_CASE("explain_gap: fit's loss + update order + layer shares = evaluate, exactly") {
  const auto x = uniform(64, 5, 1, -1, 1);
  const auto y = uniform(64, 1, 2, 0, 3);
  History history;
  auto model = trained_model(x, y, history);
  const auto report = explain_gap(model, x, y, &history, {16});

  REQUIRE(report.layers.size() == 2);
  CHECK(report.layers[0].layer == "batch_normalization (BatchNormalization)");
  CHECK(report.layers[1].layer == "dropout (Dropout)");
  CHECK(report.layers[1].reason == "drops 30% of units");
  CHECK(report.fit_loss == history.loss().back());
  CHECK(report.inference_loss == doctest::Approx(model.evaluate(x, y, 16)).epsilon(1e-12));
  double sum = report.fit_loss + report.update_order;
  CHECK(sum == doctest::Approx(report.training_loss).epsilon(1e-12));
  for (const auto& share : report.layers) sum += share.share;
  CHECK(sum == doctest::Approx(report.inference_loss).epsilon(1e-12));
  CHECK(report.layers[0].share != 0);
  CHECK(report.layers[1].share != 0);

  std::ostringstream text;
  text << report;
  CHECK(text.str().find("+ update order") != std::string::npos);
  CHECK(text.str().find("= inference-phase loss (evaluate)") != std::string::npos);
}

TEST_CASE("explain_gap never changes the model, not even its dropout generator") {
  const auto x = uniform(48, 5, 3, -1, 1);
  const auto y = uniform(48, 1, 4, 0, 3);
  History history;
  auto model = trained_model(x, y, history);
  auto twin = model.clone();
  const auto weights = model.get_weights();
  explain_gap(model, x, y, &history);
  const auto after = model.get_weights();
  CHECK(test::bitwise_equal(weights, after));
  // Training on afterwards gives what the untouched twin gives: same masks, same statistics.
  FitOptions<double> options;
  options.verbose = 0;
  CHECK(model.fit(x, y, options).loss() == twin.fit(x, y, options).loss());
}

TEST_CASE("a single phase-dependent layer gets the whole phase gap, a frozen moving-statistics BN gets exactly 0") {
  const auto x = uniform(40, 5, 5, -1, 1);
  const auto y = uniform(40, 1, 6, 0, 3);
  History history;
  auto model = trained_model(x, y, history);
  model.layer(1).set_frozen(true);  // BatchNorm, default policy: moving statistics in both phases
  const auto report = explain_gap(model, x, y);
  REQUIRE(report.layers.size() == 2);
  CHECK(report.layers[0].share == 0);
  CHECK(report.layers[0].reason == "frozen, moving statistics in both phases");
  CHECK(report.layers[1].share == doctest::Approx(report.phase_gap()).epsilon(1e-12));
  CHECK(std::isnan(report.fit_loss));  // no History given

  // Legacy policy: the frozen BN now differs between the phases and gets a share.
  model.set_frozen_batchnorm_policy(FrozenBatchNormPolicy::batch_statistics);
  const auto legacy = explain_gap(model, x, y);
  CHECK(legacy.layers[0].reason == "batch statistics while frozen (legacy policy)");
  CHECK(legacy.layers[0].share != 0);
}

TEST_CASE("explain_gap takes fit's batch size from the History, and says when it had to assume one") {
  const auto x = uniform(64, 5, 1, -1, 1);
  const auto y = uniform(64, 1, 2, 0, 3);
  History history;
  const auto model = trained_model(x, y, history);  // fit with batch 16
  REQUIRE(history.params());
  CHECK(history.params()->batch_size == 16);
  CHECK(history.params()->epochs == 2);
  CHECK(history.params()->steps == 4);
  CHECK(history.params()->samples == 64);

  const auto from_history = explain_gap(model, x, y, &history);
  CHECK(from_history.batch_size == 16);
  CHECK(from_history.batch_size_from == "History");
  const auto explicit_16 = explain_gap(model, x, y, &history, {16});
  CHECK(explicit_16.batch_size_from == "ExplainOptions");
  CHECK(from_history.training_loss == explicit_16.training_loss);
  CHECK(from_history.update_order == explicit_16.update_order);
  // Batches of 32 normalize with other statistics: another training-phase loss.
  const auto explicit_32 = explain_gap(model, x, y, &history, {32});
  CHECK(explicit_32.training_loss != from_history.training_loss);

  // No History: 32, and the table says so.
  const auto assumed = explain_gap(model, x, y);
  CHECK(assumed.batch_size == 32);
  CHECK(assumed.batch_size_from == "default");
  CHECK(assumed.training_loss == explicit_32.training_loss);
  std::ostringstream text;
  text << assumed;
  CHECK(text.str().find("(training phase in batches of 32, the default: pass fit's History or "
                        "ExplainOptions::batch_size)") != std::string::npos);
  std::ostringstream quiet_text;
  quiet_text << from_history;
  CHECK(quiet_text.str().find("the default") == std::string::npos);

  CHECK_THROWS_WITH_AS(explain_gap(model, x, y, &history, {0}), "explain_gap: batch_size must be > 0, got 0",
                       ValueError);
}

TEST_CASE("with regularizers explain_gap still adds up, reports the weight penalties and where activity ones sit") {
  const auto x = uniform(64, 5, 3, -1, 1);
  const auto y = uniform(64, 1, 4, 0, 3);
  Sequential<double> model(4);
  DenseOptions hidden;
  hidden.kernel_regularizer = regularizers::L2(0.01);
  hidden.activity_regularizer = regularizers::L1(0.001);
  model.add(Dense<double>(5, 12, Activation::linear, hidden));
  model.add(BatchNorm<double>());
  model.add(ReLU<double>());
  model.add(Dropout<double>(0.3));
  model.layer(3).set_activity_regularizer(regularizers::L2(0.01));  // a penalty that differs between phases
  model.add(Dense<double>(12, 1));
  model.compile(MeanSquaredError{}, Adam<double>{1e-2});
  const History history = model.fit(x, y, test::quiet<double>(2, 16));
  const auto report = explain_gap(model, x, y, &history);

  CHECK(report.inference_loss == doctest::Approx(model.evaluate(x, y, 16)).epsilon(1e-12));
  double sum = report.fit_loss + report.update_order;
  for (const auto& share : report.layers) sum += share.share;
  CHECK(sum == doctest::Approx(report.inference_loss).epsilon(1e-12));
  CHECK(report.weight_penalties == model.regularization_loss());
  CHECK(report.weight_penalties > 0);
  REQUIRE(report.activity_regularized.size() == 2);
  CHECK(report.activity_regularized[1] == "dropout (Dropout)");
  std::ostringstream text;
  text << report;
  CHECK(text.str().find("includes the regularizers' penalties: weight penalties") != std::string::npos);
  CHECK(text.str().find("activity penalties of dense (Dense) dropout (Dropout)") != std::string::npos);
}
