// Callbacks: model.stop_training, EarlyStopping, ReduceLROnPlateau, CSVLogger,
// TerminateOnNaN. The rules are driven with hand-written sequences of
// monitored values (the callbacks' hooks called directly with crafted logs)
// and checked on real fits against values recorded during the run.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <minidl/minidl.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "support.hpp"

using namespace minidl;

namespace {

using test::bitwise_equal;
using test::quiet;

// Dense(3, 8, tanh) -> Dense(8, 1): small, no randomness in the forward pass.
template <class Scalar>
Sequential<Scalar> regression_model(Scalar learning_rate = Scalar(0.05)) {
  Sequential<Scalar> model(7);
  model.add(Dense<Scalar>(3, 8, Activation::tanh));
  model.add(Dense<Scalar>(8, 1));
  model.compile(MeanSquaredError{}, SGD<Scalar>{learning_rate}, {Metric::mae});
  return model;
}


Logs logs_with(const std::string& name, double value) {
  Logs logs;
  logs.set("loss", 0.0);
  logs.set(name, value);
  return logs;
}

// Feeds `values` as `monitor` to the callback's epoch ends, as fit would, until
// it sets stop_training; returns the epoch at which it did (-1: never).
template <class Scalar>
int drive(Callback<Scalar>& callback, Sequential<Scalar>& model, const std::string& monitor,
          const std::vector<double>& values) {
  model.stop_training = false;
  callback.on_train_begin(model, {"loss", monitor});
  for (std::size_t epoch = 0; epoch < values.size(); ++epoch) {
    callback.on_epoch_end(model, static_cast<int>(epoch), logs_with(monitor, values[epoch]));
    if (model.stop_training) return static_cast<int>(epoch);
  }
  return -1;
}

// A unique file under the temporary directory, removed when the test ends.
struct TempFile {
  std::string path;
  explicit TempFile(const std::string& name)
      : path((std::filesystem::temp_directory_path() / (name + "_" + std::to_string(std::rand()) + ".csv")).string()) {
    std::filesystem::remove(path);
  }
  ~TempFile() { std::filesystem::remove(path); }
  std::vector<std::string> lines() const {
    std::ifstream in(path);
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }
};

std::vector<std::string> split(const std::string& line, char separator) {
  std::vector<std::string> fields;
  std::stringstream in(line);
  for (std::string field; std::getline(in, field, separator);) fields.push_back(field);
  return fields;
}

}  // namespace

// ---- stop_training -----------------------------------------------------------

TEST_CASE("stop_training set in a batch ends that epoch after its bookkeeping, then fit") {
  const auto x = test::uniform<double>(64, 3, 1);  // 4 batches of 16
  const auto y = test::uniform<double>(64, 1, 2);
  auto model = regression_model<double>();
  std::vector<std::pair<int, Index>> batches;
  std::vector<int> epoch_ends;
  int train_begins = 0, train_ends = 0, epoch = -1;
  auto stopper = std::make_shared<LambdaCallback<double>>();
  stopper->train_begin = [&](Sequential<double>&) { ++train_begins; };
  stopper->epoch_begin = [&](Sequential<double>&, int e) { epoch = e; };
  stopper->batch_end = [&](Sequential<double>& m, Index b, const Logs&) {
    batches.emplace_back(epoch, b);
    if (epoch == 1 && b == 2) m.stop_training = true;
  };
  stopper->epoch_end = [&](Sequential<double>&, int e, const Logs&) { epoch_ends.push_back(e); };
  stopper->train_end = [&](Sequential<double>&, const Logs& logs) {
    ++train_ends;
    CHECK(logs.contains("val_loss"));  // the last epoch's logs
  };
  FitOptions<double> options = quiet<double>(5, 16);
  options.validation_data = ValidationData<double>{x, y};
  options.callbacks = {stopper};
  model.stop_training = true;  // fit resets it, as Keras
  const History history = model.fit(x, y, options);

  CHECK(batches.size() == 4 + 3);  // epoch 0 whole, epoch 1 up to its batch 2
  CHECK(batches.back() == std::make_pair(1, Index{2}));
  CHECK(epoch_ends == std::vector<int>{0, 1});
  CHECK(train_begins == 1);
  CHECK(train_ends == 1);
  CHECK(history.epochs() == 2);
  CHECK(model.optimizer().iterations() == 7);
  CHECK(model.stop_training);
  // Validation still ran after the cut epoch, on the weights fit returned.
  CHECK(history.val_loss().back() == static_cast<double>(model.evaluate(x, y, 16)));
}

TEST_CASE("a batch's logs hold only its own epoch's values: no val_* of the epoch before") {
  const auto x = test::uniform<double>(48, 3, 1);  // 3 batches of 16
  const auto y = test::uniform<double>(48, 1, 2);
  auto model = regression_model<double>();
  std::vector<std::vector<std::string>> batch_names;
  auto recorder = std::make_shared<LambdaCallback<double>>();
  recorder->batch_end = [&](Sequential<double>&, Index, const Logs& logs) {
    std::vector<std::string> names;
    for (const auto& entry : logs.entries()) names.push_back(entry.first);
    batch_names.push_back(names);
  };
  FitOptions<double> options = quiet<double>(3, 16);
  options.validation_data = ValidationData<double>{x, y};
  options.callbacks = {recorder};
  const History history = model.fit(x, y, options);
  REQUIRE(batch_names.size() == 9);
  for (const auto& names : batch_names) CHECK(names == std::vector<std::string>{"loss", "mae"});
  CHECK(history.names() == std::vector<std::string>{"loss", "mae", "val_loss", "val_mae"});
  CHECK(history.val_loss().size() == 3);
  // Keras's history.params, with the batch size and the sample count.
  REQUIRE(history.params());
  CHECK(history.params()->epochs == 3);
  CHECK(history.params()->steps == 3);
  CHECK(history.params()->batch_size == 16);
  CHECK(history.params()->samples == 48);
  CHECK(history.params()->verbose == 0);
}

TEST_CASE("LearningRateScheduler and ReduceLROnPlateau put the epoch's learning_rate in the logs (Keras 3)") {
  const auto x = test::uniform<float>(32, 3, 3);
  const auto y = test::uniform<float>(32, 1, 4);
  auto model = regression_model<float>();
  std::vector<double> seen_by_epoch_end;
  auto recorder = std::make_shared<LambdaCallback<float>>();
  recorder->epoch_end = [&](Sequential<float>&, int, const Logs& logs) {
    seen_by_epoch_end.push_back(logs["learning_rate"]);
  };
  // recorder first: learning_rate is in every on_epoch_end's logs, whatever the order.
  FitOptions<float> options = quiet<float>(3, 16);
  options.callbacks = {recorder, std::make_shared<LearningRateScheduler<float>>(
                                     [](int epoch, float) { return 0.1f / static_cast<float>(epoch + 1); })};
  const History scheduled = model.fit(x, y, options);
  CHECK(scheduled.names() == std::vector<std::string>{"loss", "mae", "learning_rate"});
  CHECK(scheduled["learning_rate"] ==
        std::vector<double>{static_cast<double>(0.1f), static_cast<double>(0.1f / 2), static_cast<double>(0.1f / 3)});
  CHECK(seen_by_epoch_end == scheduled["learning_rate"]);

  // ReduceLROnPlateau logs the rate the epoch trained with, before it reduces:
  // patience 0 and a min_delta no loss can beat after epoch 0 (the first
  // value always improves on +inf) halve it at every later epoch end.
  model.optimizer().set_learning_rate(0.5f);
  ReduceLROnPlateauOptions reduce_options;
  reduce_options.monitor = "loss";
  reduce_options.patience = 0;
  reduce_options.factor = 0.5;
  reduce_options.min_delta = 1e9;
  options.callbacks = {std::make_shared<ReduceLROnPlateau<float>>(reduce_options)};
  const History reduced = model.fit(x, y, options);
  CHECK(reduced["learning_rate"] == std::vector<double>{0.5, 0.5, 0.25});
  CHECK(model.optimizer().learning_rate() == 0.125f);
}

TEST_CASE("stop_training set at an epoch's end: no further epoch starts") {
  const auto x = test::uniform<float>(32, 3, 3);
  const auto y = test::uniform<float>(32, 1, 4);
  auto model = regression_model<float>();
  auto stopper = std::make_shared<LambdaCallback<float>>();
  stopper->epoch_end = [](Sequential<float>& m, int e, const Logs&) { m.stop_training = e == 2; };
  FitOptions<float> options = quiet<float>(10, 16);
  options.callbacks = {stopper};
  CHECK(model.fit(x, y, options).epochs() == 3);
  CHECK(model.optimizer().iterations() == 3 * 2);
  options.callbacks = {nullptr};
  CHECK_THROWS_WITH_AS(model.fit(x, y, options), "Sequential::fit: callbacks[0] is null", ValueError);
}

// ---- EarlyStopping: the rule on hand-written sequences -------------------------

TEST_CASE("EarlyStopping: min_delta and patience on a hand-written sequence") {
  auto model = regression_model<double>();
  EarlyStoppingOptions options;
  options.min_delta = 0.1;
  options.patience = 2;
  EarlyStopping<double> stopping(options);
  // e0: first value, best 1.0. e1: 0.95 is not better by more than 0.1 (wait 1).
  // e2: 0.85 is (best 0.85, wait 0). e3: 0.9 no (wait 1). e4: 0.8 no, 0.8 + 0.1 > 0.85 (wait 2 = patience): stop.
  CHECK(drive<double>(stopping, model, "val_loss", {1.0, 0.95, 0.85, 0.9, 0.8, 0.1}) == 4);
  CHECK(stopping.stopped_epoch() == 4);
  CHECK(stopping.best() == 0.85);
  CHECK(stopping.best_epoch() == 2);
  CHECK(stopping.wait() == 2);

  // The instance is reset when fit starts: the same sequence gives the same answer.
  CHECK(drive<double>(stopping, model, "val_loss", {1.0, 0.95, 0.85, 0.9, 0.8, 0.1}) == 4);
  // Never stopped: stopped_epoch stays 0, as Keras's.
  CHECK(drive<double>(stopping, model, "val_loss", {3, 2, 1}) == -1);
  CHECK(stopping.stopped_epoch() == 0);
}

TEST_CASE("EarlyStopping: patience 0 stops at the first epoch without improvement, never at epoch 0") {
  auto model = regression_model<double>();
  EarlyStoppingOptions options;
  options.monitor = "val_accuracy";  // auto mode: accuracy goes up
  EarlyStopping<double> stopping(options);
  CHECK_FALSE(stopping.minimizes());
  CHECK(drive<double>(stopping, model, "val_accuracy", {0.5, 0.6, 0.7, 0.7, 0.9}) == 3);
  options.monitor = "loss";
  options.mode = MonitorMode::max;  // an explicit mode wins over the name
  EarlyStopping<double> maximizing(options);
  CHECK_FALSE(maximizing.minimizes());
  CHECK(drive<double>(maximizing, model, "loss", {0.5, 0.4}) == 1);
  options.monitor = "val_mae";
  options.mode = MonitorMode::automatic;
  CHECK(EarlyStopping<double>(options).minimizes());
}

TEST_CASE("EarlyStopping: baseline — improvements that do not beat it keep counting") {
  auto model = regression_model<double>();
  EarlyStoppingOptions options;
  options.monitor = "loss";
  options.baseline = 0.5;
  options.patience = 1;
  EarlyStopping<double> stopping(options);
  // Every improvement returns before the patience check, so a steadily improving
  // run is never stopped; the first epoch that does not improve stops it (wait is 4 by then).
  CHECK(drive<double>(stopping, model, "loss", {0.9, 0.8, 0.7, 0.75}) == 3);
  CHECK(stopping.wait() == 4);
  // e1 beats the baseline: wait 0; e2 wait 1 (< 2); e3 wait 2: stop.
  options.patience = 2;
  EarlyStopping<double> patient(options);
  CHECK(drive<double>(patient, model, "loss", {0.9, 0.4, 0.45, 0.46, 0.1}) == 3);
  CHECK(patient.best() == 0.4);
}

TEST_CASE("EarlyStopping: start_from_epoch ignores the warm-up epochs") {
  auto model = regression_model<double>();
  EarlyStoppingOptions options;
  options.monitor = "loss";
  EarlyStopping<double> from_start(options);
  CHECK(drive<double>(from_start, model, "loss", {5, 1, 3, 3}) == 2);
  options.start_from_epoch = 2;
  EarlyStopping<double> warm(options);
  CHECK(drive<double>(warm, model, "loss", {5, 1, 3, 3}) == 3);  // 3 at epoch 2 is its first, hence best
  CHECK(warm.best_epoch() == 2);
}

TEST_CASE("EarlyStopping: bad options and unreported monitors are errors before training") {
  EarlyStoppingOptions options;
  options.monitor = "val_f1";
  CHECK_THROWS_WITH_AS(EarlyStopping<float>{options},
                       "EarlyStopping: cannot tell whether monitor 'val_f1' should be minimized or maximized; set "
                       "mode to MonitorMode::min or max",
                       ValueError);
  options.mode = MonitorMode::max;
  CHECK_NOTHROW(EarlyStopping<float>{options});
  options.patience = -1;
  CHECK_THROWS_WITH_AS(EarlyStopping<float>{options}, "EarlyStopping: patience must be >= 0, got -1", ValueError);

  const auto x = test::uniform<float>(32, 3, 5);
  const auto y = test::uniform<float>(32, 1, 6);
  auto model = regression_model<float>();
  const auto weights = model.get_weights();
  FitOptions<float> fit = quiet<float>(3, 16);
  fit.callbacks = {std::make_shared<EarlyStopping<float>>()};  // monitors val_loss: no validation data
  CHECK_THROWS_WITH_AS(model.fit(x, y, fit),
                       "EarlyStopping: monitor 'val_loss' is not among the values fit reports (loss, mae); val_ "
                       "values need fit's validation_data",
                       ValueError);
  CHECK(bitwise_equal(weights, model.get_weights()));
  CHECK(model.optimizer().iterations() == 0);
}

// ---- EarlyStopping on real fits ------------------------------------------------

namespace {

// A fit whose val_loss gets worse from epoch 3 on: the weights are pushed away
// from the fit at the start of epochs 3 and 4. Records the weights and
// val_loss at each epoch end.
struct PerturbedRun {
  History history;
  std::vector<std::vector<Vector<double>>> weights_at_epoch_end;
  std::vector<Vector<double>> final_weights;
};

PerturbedRun perturbed_run(const EarlyStoppingOptions& options, int epochs) {
  const auto x = test::uniform<double>(64, 3, 7);
  const Matrix<double> y = (x.col(0).array() * 0.5 - x.col(1).array() * x.col(2).array()).matrix();
  auto model = regression_model<double>(0.1);
  PerturbedRun run;
  auto spy = std::make_shared<LambdaCallback<double>>();
  spy->epoch_begin = [](Sequential<double>& m, int epoch) {
    if (epoch != 3 && epoch != 4) return;
    auto w = m.get_weights();
    for (auto& tensor : w) tensor.array() += 0.4;
    m.set_weights(w);
  };
  spy->epoch_end = [&](Sequential<double>& m, int, const Logs&) { run.weights_at_epoch_end.push_back(m.get_weights()); };
  FitOptions<double> fit = quiet<double>(epochs, 16);
  fit.validation_data = ValidationData<double>{x, y};
  fit.callbacks = {spy, std::make_shared<EarlyStopping<double>>(options)};
  run.history = model.fit(x, y, fit);
  run.final_weights = model.get_weights();
  return run;
}

// The epoch of the first strict minimum of values[0..epoch].
int best_epoch_until(const std::vector<double>& values, std::size_t epoch) {
  int best = 0;
  for (std::size_t e = 1; e <= epoch; ++e)
    if (values[e] < values[static_cast<std::size_t>(best)]) best = static_cast<int>(e);
  return best;
}

}  // namespace

TEST_CASE("EarlyStopping on a real fit: stops patience epochs after the best, restores its weights bitwise") {
  EarlyStoppingOptions options;
  options.patience = 2;
  options.restore_best_weights = true;
  const PerturbedRun run = perturbed_run(options, 30);
  const auto& val = run.history.val_loss();
  // With min_delta 0 and no baseline the rule is: stop at the first epoch that
  // is `patience` epochs after the best so far.
  const std::size_t last = val.size() - 1;
  REQUIRE(last < 29);  // it did stop early
  CHECK(static_cast<int>(last) - best_epoch_until(val, last) == 2);
  for (std::size_t e = 1; e < last; ++e) CHECK(static_cast<int>(e) - best_epoch_until(val, e) < 2);
  const int best = best_epoch_until(val, last);
  CHECK(best == 2);  // the perturbation at epoch 3 makes epoch 2 the best
  CHECK(bitwise_equal(run.final_weights, run.weights_at_epoch_end[static_cast<std::size_t>(best)]));
  CHECK_FALSE(bitwise_equal(run.final_weights, run.weights_at_epoch_end.back()));

  // Without restore_best_weights the last epoch's weights stay.
  options.restore_best_weights = false;
  const PerturbedRun plain = perturbed_run(options, 30);
  CHECK(plain.history.val_loss() == val);
  CHECK(bitwise_equal(plain.final_weights, plain.weights_at_epoch_end.back()));
}

TEST_CASE("EarlyStopping restores the best weights at the end of fit even if it never stopped (Keras 3)") {
  EarlyStoppingOptions options;
  options.patience = 100;
  options.restore_best_weights = true;
  const PerturbedRun run = perturbed_run(options, 6);
  const auto& val = run.history.val_loss();
  REQUIRE(val.size() == 6);
  const int best = best_epoch_until(val, 5);
  REQUIRE(best < 5);
  CHECK(bitwise_equal(run.final_weights, run.weights_at_epoch_end[static_cast<std::size_t>(best)]));
}

// ---- ReduceLROnPlateau -------------------------------------------------------

namespace {

// The learning rate after each epoch end when `values` are the monitored ones.
std::vector<float> learning_rates(const ReduceLROnPlateauOptions& options, const std::vector<double>& values) {
  Sequential<float> model(1);
  model.add(Dense<float>(1, 1));
  model.compile(MeanSquaredError{}, SGD<float>{1.0f});
  ReduceLROnPlateau<float> reduce(options);
  reduce.on_train_begin(model, {"loss", "val_loss"});
  std::vector<float> out;
  for (std::size_t e = 0; e < values.size(); ++e) {
    reduce.on_epoch_end(model, static_cast<int>(e), logs_with("val_loss", values[e]));
    out.push_back(model.optimizer().learning_rate());
  }
  return out;
}

}  // namespace

TEST_CASE("ReduceLROnPlateau: reduces after patience epochs without improvement") {
  ReduceLROnPlateauOptions options;
  options.patience = 2;
  options.factor = 0.5;
  // e0 best 1; e1 wait 1; e2 wait 2: lr 0.5, wait 0; e3 wait 1; e4 wait 2: lr 0.25.
  CHECK(learning_rates(options, {1, 1, 1, 1, 1}) == std::vector<float>{1, 1, 0.5f, 0.5f, 0.25f});
  // An improvement (by more than min_delta = 1e-4) resets wait: e2 improves, e4 reduces.
  CHECK(learning_rates(options, {1, 1, 0.5, 0.5, 0.5}) == std::vector<float>{1, 1, 1, 1, 0.5f});
  // 0.99995 is not better than 1 by more than 1e-4.
  CHECK(learning_rates(options, {1, 0.99995, 0.99995}) == std::vector<float>{1, 1, 0.5f});
  // Keras 3 takes |min_delta|: -1e-4 means the same as 1e-4 (a negative
  // threshold would otherwise count a worse value as an improvement).
  options.min_delta = -1e-4;
  CHECK(learning_rates(options, {1, 0.99995, 0.99995}) == std::vector<float>{1, 1, 0.5f});
  CHECK(learning_rates(options, {1, 1.00005, 1.00005}) == std::vector<float>{1, 1, 0.5f});
  options.min_delta = 1e-4;
  // mode auto: "acc" in the name means higher is better.
  options.monitor = "val_accuracy";
  ReduceLROnPlateau<float> reduce(options);
  Sequential<float> model(1);
  model.add(Dense<float>(1, 1));
  model.compile(MeanSquaredError{}, SGD<float>{1.0f});
  reduce.on_train_begin(model, {"loss", "val_accuracy"});
  for (double accuracy : {0.5, 0.6, 0.7}) reduce.on_epoch_end(model, 0, logs_with("val_accuracy", accuracy));
  CHECK(model.optimizer().learning_rate() == 1.0f);
  CHECK(reduce.best() == 0.7);
}

TEST_CASE("ReduceLROnPlateau: cooldown and min_lr") {
  ReduceLROnPlateauOptions options;
  options.patience = 2;
  options.factor = 0.5;
  options.cooldown = 2;
  options.min_lr = 0.1;
  // e2 reduces (cooldown 2); e3 cooldown 1, wait 0; e4 cooldown 0, wait 0 then
  // counts: wait 1; e5 wait 2: reduce. Every 3 epochs: 0.5, 0.25, 0.125, then
  // max(0.0625, 0.1) = 0.1, then lr = min_lr: no more reductions.
  const std::vector<double> flat(16, 1.0);
  CHECK(learning_rates(options, flat) ==
        std::vector<float>{1, 1, 0.5f, 0.5f, 0.5f, 0.25f, 0.25f, 0.25f, 0.125f, 0.125f, 0.125f, 0.1f, 0.1f, 0.1f,
                           0.1f, 0.1f});
  // cooldown 1 ends within the next epoch end, which then counts: the same as 0 (as in Keras).
  options.cooldown = 1;
  options.min_lr = 0;
  const auto one = learning_rates(options, {1, 1, 1, 1, 1});
  options.cooldown = 0;
  CHECK(one == learning_rates(options, {1, 1, 1, 1, 1}));

  options.factor = 1;
  CHECK_THROWS_WITH_AS(ReduceLROnPlateau<float>{options}, "ReduceLROnPlateau: factor must be in (0, 1), got 1",
                       ValueError);
}

TEST_CASE("ReduceLROnPlateau in fit: an unreported monitor is an error, a reported one acts between epochs") {
  const auto x = test::uniform<float>(32, 3, 8);
  const auto y = test::uniform<float>(32, 1, 9);
  auto model = regression_model<float>();
  ReduceLROnPlateauOptions options;
  options.monitor = "val_mae";
  FitOptions<float> fit = quiet<float>(4, 16);
  fit.callbacks = {std::make_shared<ReduceLROnPlateau<float>>(options)};
  CHECK_THROWS_AS(model.fit(x, y, fit), ValueError);

  // patience 0: every epoch that does not improve val_mae halves the rate.
  options.patience = 0;
  options.factor = 0.5;
  std::vector<float> rates;
  auto spy = std::make_shared<LambdaCallback<float>>();
  spy->epoch_end = [&](Sequential<float>& m, int, const Logs&) { rates.push_back(m.optimizer().learning_rate()); };
  fit.validation_data = ValidationData<float>{x, y};
  fit.callbacks = {std::make_shared<ReduceLROnPlateau<float>>(options), spy};
  const History history = model.fit(x, y, fit);
  float expected = 0.05f;
  double best = std::numeric_limits<double>::infinity();
  for (std::size_t e = 0; e < rates.size(); ++e) {
    if (history["val_mae"][e] < best - 1e-4)
      best = history["val_mae"][e];
    else
      expected = static_cast<float>(static_cast<double>(expected) * 0.5);
    CHECK(rates[e] == expected);
  }
}

// ---- CSVLogger ----------------------------------------------------------------

TEST_CASE("CSVLogger: a header in History order, a row per epoch that reads back as History") {
  const auto x = test::uniform<double>(40, 3, 10);
  const auto y = test::uniform<double>(40, 1, 11);
  auto model = regression_model<double>();
  TempFile file("minidl_csv_logger");
  FitOptions<double> fit = quiet<double>(3, 16);
  fit.validation_data = ValidationData<double>{x, y};
  fit.callbacks = {std::make_shared<CSVLogger<double>>(file.path)};
  const History history = model.fit(x, y, fit);

  const auto lines = file.lines();
  REQUIRE(lines.size() == 4);
  CHECK(lines[0] == "epoch,loss,mae,val_loss,val_mae");
  for (std::size_t e = 0; e < 3; ++e) {
    const auto fields = split(lines[e + 1], ',');
    REQUIRE(fields.size() == 5);
    CHECK(fields[0] == std::to_string(e));
    for (std::size_t k = 0; k < 4; ++k)
      CHECK(std::strtod(fields[k + 1].c_str(), nullptr) == history[history.names()[k]][e]);  // exact
  }

  // append: rows go after the existing ones, no second header; epochs restart at 0 as in Keras.
  fit.callbacks = {std::make_shared<CSVLogger<double>>(file.path, ";", true)};
  fit.epochs = 2;
  const History more = model.fit(x, y, fit);
  const auto appended = file.lines();
  REQUIRE(appended.size() == 6);
  CHECK(std::vector<std::string>(appended.begin(), appended.begin() + 4) == lines);
  CHECK(split(appended[5], ';')[0] == "1");
  CHECK(std::strtod(split(appended[5], ';')[3].c_str(), nullptr) == more.val_loss()[1]);

  // append to a missing file writes the header.
  TempFile fresh("minidl_csv_logger_fresh");
  fit.callbacks = {std::make_shared<CSVLogger<double>>(fresh.path, ",", true)};
  model.fit(x, y, fit);
  CHECK(fresh.lines().front() == "epoch,loss,mae,val_loss,val_mae");
}

TEST_CASE("CSVLogger: rows are flushed at each epoch end, so they survive a failed fit") {
  const auto x = test::uniform<float>(32, 3, 12);
  const auto y = test::uniform<float>(32, 1, 13);
  auto model = regression_model<float>();
  TempFile file("minidl_csv_logger_crash");
  auto logger = std::make_shared<CSVLogger<float>>(file.path);
  auto crash = std::make_shared<LambdaCallback<float>>();
  crash->epoch_end = [](Sequential<float>&, int epoch, const Logs&) {
    if (epoch == 1) throw std::runtime_error("crash");
  };
  FitOptions<float> fit = quiet<float>(5, 16);
  fit.callbacks = {logger, crash};
  CHECK_THROWS_AS(model.fit(x, y, fit), std::runtime_error);
  const auto lines = file.lines();  // read while the logger still holds the file open
  REQUIRE(lines.size() == 3);
  CHECK(lines[0] == "epoch,loss,mae");
  CHECK(split(lines[2], ',')[0] == "1");

  CHECK(CSVLogger<float>::format(0.1) == "0.1");
  CHECK(CSVLogger<float>::format(1e-5) == "1e-05");
  CHECK(CSVLogger<float>::format(2.0) == "2");
  CHECK(CSVLogger<float>::format(std::numeric_limits<double>::infinity()) == "inf");
  CHECK(CSVLogger<float>::format(std::numeric_limits<double>::quiet_NaN()) == "nan");
  CHECK_THROWS_AS(CSVLogger<float>(""), ValueError);
  CSVLogger<float> unwritable("/nonexistent-directory/log.csv");
  CHECK_THROWS_AS(unwritable.on_train_begin(model, {"loss"}), IOError);
}

// ---- TerminateOnNaN ------------------------------------------------------------

namespace {

// SGD with a learning rate far too large on MSE: the weights grow geometrically
// until the loss overflows (float after a few dozen steps, double after a few hundred).
template <class Scalar>
struct DivergingRun {
  std::vector<std::vector<Vector<Scalar>>> weights_at_batch_end;  // one entry per batch, in order
  std::vector<double> running_loss;                               // logs["loss"] at each batch end
  std::vector<std::pair<int, Index>> batches;
  std::vector<Vector<Scalar>> final_weights;
  std::int64_t iterations = 0;
  History history;
};

template <class Scalar>
DivergingRun<Scalar> diverging_run(std::shared_ptr<Callback<Scalar>> extra) {
  const auto x = test::uniform<Scalar>(64, 3, 14);
  const auto y = test::uniform<Scalar>(64, 1, 15);
  Sequential<Scalar> model(3);
  model.add(Dense<Scalar>(3, 4));
  model.add(Dense<Scalar>(4, 1));
  model.compile(MeanSquaredError{}, SGD<Scalar>{Scalar(3)});
  DivergingRun<Scalar> run;
  int epoch = 0;
  auto spy = std::make_shared<LambdaCallback<Scalar>>();
  spy->epoch_begin = [&](Sequential<Scalar>&, int e) { epoch = e; };
  spy->batch_end = [&](Sequential<Scalar>& m, Index b, const Logs& logs) {
    run.weights_at_batch_end.push_back(m.get_weights());
    run.running_loss.push_back(logs["loss"]);
    run.batches.emplace_back(epoch, b);
  };
  FitOptions<Scalar> fit = quiet<Scalar>(100, 8);
  fit.shuffle = false;
  fit.callbacks = {spy};
  if (extra) fit.callbacks.push_back(extra);
  run.history = model.fit(x, y, fit);
  run.final_weights = model.get_weights();
  run.iterations = model.optimizer().iterations();
  return run;
}

template <class Scalar>
bool all_finite(const std::vector<Vector<Scalar>>& weights) {
  for (const auto& w : weights)
    if (!w.allFinite()) return false;
  return true;
}

}  // namespace

TEST_CASE_TEMPLATE("TerminateOnNaN stops at the first non-finite batch loss and keeps the weights from before it", T,
                   float, double) {
  // Keras's behaviour first: without the callback the step is applied and training goes on.
  const DivergingRun<T> keras = diverging_run<T>(nullptr);
  std::size_t bad = 0;  // the first batch whose loss is non-finite: the running mean turns non-finite there
  while (bad < keras.running_loss.size() && std::isfinite(keras.running_loss[bad])) ++bad;
  REQUIRE(bad < keras.running_loss.size());
  REQUIRE(bad > 0);
  CHECK_FALSE(bitwise_equal(keras.weights_at_batch_end[bad], keras.weights_at_batch_end[bad - 1]));

  std::ostringstream messages;
  auto terminate = std::make_shared<TerminateOnNaN<T>>(&messages);
  const DivergingRun<T> run = diverging_run<T>(terminate);
  REQUIRE(terminate->terminated());
  const auto [epoch, batch] = keras.batches[bad];
  CHECK(terminate->epoch() == epoch);
  CHECK(terminate->batch() == batch);
  CHECK(run.batches.size() == bad + 1);  // the offending batch still ends (on_batch_end), then fit stops
  // The same trajectory up to the offending batch, whose update is not applied.
  CHECK(bitwise_equal(run.weights_at_batch_end[bad - 1], keras.weights_at_batch_end[bad - 1]));
  CHECK(bitwise_equal(run.final_weights, run.weights_at_batch_end[bad - 1]));
  CHECK(all_finite(run.final_weights));
  CHECK(run.iterations == static_cast<std::int64_t>(bad));  // the optimizer did not step either
  CHECK(run.history.epochs() == static_cast<std::size_t>(epoch) + 1);
  CHECK_FALSE(std::isfinite(run.history.loss().back()));  // as Keras: the epoch's loss shows it
  const std::string expected_start =
      "Epoch " + std::to_string(epoch + 1) + ", batch " + std::to_string(batch) + ": invalid loss (";
  CHECK(terminate->message().rfind(expected_start, 0) == 0);
  CHECK(terminate->message().find("terminating training; this batch's update was not applied") != std::string::npos);
  CHECK(messages.str() == terminate->message() + "\n");
}

TEST_CASE("TerminateOnNaN: a loss that overflows on the first batch leaves the initial weights") {
  const auto x = test::uniform<float>(16, 3, 16);
  const Matrix<float> y = Matrix<float>::Constant(16, 1, 1e30f);  // (y_pred - y)^2 overflows float
  Sequential<float> model(4);
  model.add(Dense<float>(3, 1));
  model.compile(MeanSquaredError{}, Adam<float>{});
  const auto initial = model.get_weights();
  auto terminate = std::make_shared<TerminateOnNaN<float>>(nullptr);
  FitOptions<float> fit = quiet<float>(3, 8);
  fit.callbacks = {terminate};
  const History history = model.fit(x, y, fit);
  CHECK(terminate->terminated());
  CHECK(terminate->epoch() == 0);
  CHECK(terminate->batch() == 0);
  CHECK(terminate->message() == "Epoch 1, batch 0: invalid loss (inf), terminating training; this batch's update "
                                "was not applied");
  CHECK(bitwise_equal(initial, model.get_weights()));
  CHECK(model.optimizer().iterations() == 0);
  CHECK(history.epochs() == 1);

  // A later fit with finite losses resets the callback.
  model.fit(x, Matrix<float>::Zero(16, 1), fit);
  CHECK_FALSE(terminate->terminated());
  CHECK(terminate->message().empty());
}

TEST_CASE("ReduceLROnPlateau refuses a scheduled optimizer when fit starts, before any step") {
  const auto x = test::uniform<double>(16, 3, 30);
  const auto y = test::uniform<double>(16, 1, 31);
  Sequential<double> model(7);
  model.add(Dense<double>(3, 1));
  model.compile(MeanSquaredError{}, SGD<double>(ExponentialDecay<double>(0.1, 10, 0.5)));
  const auto before = model.get_weights();
  ReduceLROnPlateauOptions options;
  options.monitor = "loss";
  FitOptions<double> fit = quiet<double>(3, 8);
  fit.callbacks = {std::make_shared<ReduceLROnPlateau<double>>(options)};
  CHECK_THROWS_WITH_AS(model.fit(x, y, fit),
                       "ReduceLROnPlateau: the optimizer's learning rate follows the schedule ExponentialDecay, which "
                       "it cannot reduce; give the optimizer a number as its learning rate",
                       StateError);
  CHECK(bitwise_equal(model.get_weights(), before));
  CHECK(model.optimizer().iterations() == 0);
}
