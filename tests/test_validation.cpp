// fit's validation options, as Keras 3's fit: validation_split (the last
// fraction of the samples, held out before any shuffling; floor(N·(1 − split))
// rows train), validation_freq (every n-th epoch, or the listed epochs, counted
// from 1), validation_batch_size; and how the monitoring callbacks and
// CSVLogger treat an epoch that did not validate (Keras: skipped, "NA").
#include <doctest/doctest.h>

#include <fstream>
#include <limits>
#include <minidl/minidl.hpp>
#include <minidl/io/model_checkpoint.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "support.hpp"

using namespace minidl;

namespace {

using test::bitwise_equal;
using test::quiet;

// Dense(3, 8, tanh) -> Dense(8, 1), trained with SGD: every step moves the weights.
template <class Scalar>
Sequential<Scalar> regression_model() {
  Sequential<Scalar> model(11);
  model.add(Dense<Scalar>(3, 8, Activation::tanh));
  model.add(Dense<Scalar>(8, 1));
  model.compile(MeanSquaredError{}, SGD<Scalar>{Scalar(0.05)}, {Metric::mae});
  return model;
}

std::vector<std::string> file_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace

TEST_CASE_TEMPLATE("validation_split holds out the last rows before shuffling: the same fit as on the first rows",
                   T, float, double) {
  const auto x = test::uniform<T>(20, 3, 1);
  const auto y = test::uniform<T>(20, 1, 2);
  FitOptions<T> options = quiet<T>(3, 4);
  options.validation_split = 0.25;  // Keras: floor(20 · 0.75) = 15 rows train, the last 5 validate

  auto split = regression_model<T>();
  const History history = split.fit(x, y, options);

  // The same training, by hand: fit on the first 15 rows, validate on the last 5.
  auto by_hand = regression_model<T>();
  FitOptions<T> explicit_options = quiet<T>(3, 4);
  explicit_options.validation_data = ValidationData<T>{x.bottomRows(5), y.bottomRows(5)};
  const History expected = by_hand.fit(x.topRows(15), y.topRows(15), explicit_options);

  CHECK(bitwise_equal(split.get_weights(), by_hand.get_weights()));
  CHECK(history.loss() == expected.loss());
  CHECK(history.val_loss() == expected.val_loss());
  CHECK(history["val_mae"] == expected["val_mae"]);
  REQUIRE(history.params().has_value());
  CHECK(history.params()->samples == 15);
  CHECK(history.params()->steps == 4);  // ceil(15 / 4)
  // Validation ran after the last update, as evaluate on the held-out rows.
  CHECK(history.val_loss().back() == static_cast<double>(split.evaluate(x.bottomRows(5), y.bottomRows(5), 4)));
}

TEST_CASE("validation_split takes the floor of N·(1 − split), as Keras") {
  const auto x = test::uniform<double>(7, 3, 3);
  const auto y = test::uniform<double>(7, 1, 4);
  auto model = regression_model<double>();
  FitOptions<double> options = quiet<double>(1, 2);
  options.validation_split = 0.5;  // 7 · 0.5 = 3.5: 3 rows train, 4 validate
  const History history = model.fit(x, y, options);
  REQUIRE(history.params().has_value());
  CHECK(history.params()->samples == 3);
  CHECK(history.val_loss().front() == static_cast<double>(model.evaluate(x.bottomRows(4), y.bottomRows(4), 2)));
}

TEST_CASE("validation_split: a bad value, a split leaving a part empty, or one next to validation_data is a "
          "ValueError that changes nothing") {
  const auto x = test::uniform<double>(10, 3, 5);
  const auto y = test::uniform<double>(10, 1, 6);
  auto model = regression_model<double>();
  const auto before = model.get_weights();
  const auto fails = [&](FitOptions<double> options, const std::string& message) {
    CHECK_THROWS_WITH_AS(model.fit(x, y, options), message.c_str(), ValueError);
    CHECK(bitwise_equal(model.get_weights(), before));
    CHECK(model.optimizer().iterations() == 0);
  };
  FitOptions<double> options = quiet<double>(1, 4);
  options.validation_split = 1.0;
  fails(options, "Sequential::fit: validation_split must be in [0, 1), got 1");
  options.validation_split = -0.1;
  fails(options, "Sequential::fit: validation_split must be in [0, 1), got -0.1");
  options.validation_split = std::numeric_limits<double>::quiet_NaN();
  fails(options, "Sequential::fit: validation_split must be in [0, 1), got nan");
  options.validation_split = 0.95;  // floor(10 · 0.05) = 0 rows to train
  fails(options, "Sequential::fit: validation_split = 0.95 of 10 samples leaves 0 for training and 10 for "
                 "validation; both need at least one (more data, or another split)");
  options.validation_split = 0.05;  // floor(9.5) = 9 train, 1 validates: fine
  CHECK_NOTHROW(regression_model<double>().fit(x, y, options));
  options.validation_split = 0.01;  // floor(9.9) = 9: still one to validate
  CHECK_NOTHROW(regression_model<double>().fit(x, y, options));
  options.validation_split = 0.2;
  options.validation_data = ValidationData<double>{x, y};
  fails(options, "Sequential::fit: validation_split = 0.2 and validation_data both given; choose one (Keras would "
                 "ignore the split)");
}

TEST_CASE_TEMPLATE("validation_freq: every n-th epoch or the listed ones (from 1), the others have no val_*", T,
                   float, double) {
  const auto x = test::uniform<T>(24, 3, 7);
  const auto y = test::uniform<T>(24, 1, 8);
  std::vector<std::vector<bool>> validated;  // per fit, per epoch: did its logs hold val_loss?
  const auto run = [&](ValidationFrequency frequency, int epochs) {
    auto model = regression_model<T>();
    auto recorder = std::make_shared<LambdaCallback<T>>();
    std::vector<bool> seen;
    std::vector<double> evaluated;  // evaluate at each validating epoch's end: val_loss must equal it
    recorder->epoch_end = [&](Sequential<T>& m, int, const Logs& logs) {
      seen.push_back(logs.contains("val_loss"));
      if (logs.contains("val_loss")) {
        CHECK(logs["val_loss"] == static_cast<double>(m.evaluate(x.bottomRows(6), y.bottomRows(6), 8)));
        evaluated.push_back(logs["val_loss"]);
      }
    };
    FitOptions<T> options = quiet<T>(epochs, 8);
    options.validation_split = 0.25;
    options.validation_freq = frequency;
    options.callbacks = {recorder};
    const History history = model.fit(x, y, options);
    CHECK(history.loss().size() == static_cast<std::size_t>(epochs));
    // History keeps the validating epochs only, in order; no epoch validated: no val_loss at all (as Keras).
    CHECK(history.contains("val_loss") == !evaluated.empty());
    if (!evaluated.empty()) CHECK(history.val_loss() == evaluated);
    validated.push_back(seen);
  };
  run(2, 5);
  run({1, 4, 5}, 5);
  run(1, 3);
  run(7, 3);  // never validates
  CHECK(validated[0] == std::vector<bool>{false, true, false, true, false});
  CHECK(validated[1] == std::vector<bool>{true, false, false, true, true});
  CHECK(validated[2] == std::vector<bool>{true, true, true});
  CHECK(validated[3] == std::vector<bool>{false, false, false});
}

TEST_CASE("validation_freq and validation_batch_size: invalid values are ValueErrors that change nothing") {
  const auto x = test::uniform<double>(12, 3, 9);
  const auto y = test::uniform<double>(12, 1, 10);
  auto model = regression_model<double>();
  const auto before = model.get_weights();
  FitOptions<double> options = quiet<double>(2, 4);
  options.validation_split = 0.25;
  options.validation_freq = 0;
  CHECK_THROWS_WITH_AS(model.fit(x, y, options), "Sequential::fit: validation_freq must be >= 1, got 0", ValueError);
  options.validation_freq = {2, 0};
  CHECK_THROWS_WITH_AS(model.fit(x, y, options),
                       "Sequential::fit: validation_freq[1] is 0, expected an epoch number >= 1 (epochs count from 1)",
                       ValueError);
  options.validation_freq = 1;
  options.validation_batch_size = 0;
  CHECK_THROWS_AS(model.fit(x, y, options), ValueError);
  CHECK(bitwise_equal(model.get_weights(), before));
  CHECK(model.optimizer().iterations() == 0);
}

TEST_CASE_TEMPLATE("validation_batch_size: validation in batches of its own size, as evaluate with it", T, float,
                   double) {
  const auto x = test::uniform<T>(30, 3, 11);
  const auto y = test::uniform<T>(30, 1, 12);
  auto model = regression_model<T>();
  FitOptions<T> options = quiet<T>(2, 8);
  options.validation_data = ValidationData<T>{x, y};
  options.validation_batch_size = 7;  // 30 = 4·7 + 2: a different batching from fit's 8
  const History history = model.fit(x, y, options);
  CHECK(history.val_loss().back() == static_cast<double>(model.evaluate(x, y, 7)));
}

TEST_CASE("EarlyStopping and ReduceLROnPlateau skip the epochs that did not validate, as Keras") {
  const auto x = test::uniform<double>(24, 3, 13);
  const auto y = test::uniform<double>(24, 1, 14);
  // patience 1 on val_loss, validating every 3rd epoch: only epochs 3 and 6
  // are seen, so the earliest possible stop is at epoch 6 (if 6 is no better
  // than 3); the epochs without val_loss neither count as waiting nor fail.
  auto model = regression_model<double>();
  EarlyStoppingOptions stop_options;
  stop_options.patience = 1;
  stop_options.min_delta = 1e9;  // nothing counts as an improvement after the first value
  auto stopper = std::make_shared<EarlyStopping<double>>(stop_options);
  ReduceLROnPlateauOptions reduce_options;
  reduce_options.patience = 1;
  reduce_options.min_delta = 1e9;
  auto reducer = std::make_shared<ReduceLROnPlateau<double>>(reduce_options);
  FitOptions<double> options = quiet<double>(9, 8);
  options.validation_split = 0.25;
  options.validation_freq = 3;
  options.callbacks = {stopper, reducer};
  const History history = model.fit(x, y, options);
  CHECK(history.loss().size() == 6);  // stopped at epoch 6 (index 5)
  CHECK(history.val_loss().size() == 2);
  CHECK(stopper->stopped_epoch() == 5);
  // The first val_loss (epoch 3) set best; epoch 6 waited once: patience 1
  // reduces there, after its logs recorded the rate it trained with.
  CHECK(history["learning_rate"] == std::vector<double>(6, static_cast<double>(0.05)));
  CHECK(model.optimizer().learning_rate() == doctest::Approx(0.05 * 0.1));
}

TEST_CASE("CSVLogger: val_* columns from the start, NA in the epochs that did not validate, as Keras") {
  const auto x = test::uniform<double>(24, 3, 15);
  const auto y = test::uniform<double>(24, 1, 16);
  auto model = regression_model<double>();
  test::TempDir dir("minidl_validation_csv");
  FitOptions<double> options = quiet<double>(4, 8);
  options.validation_split = 0.25;
  options.validation_freq = 2;
  options.callbacks = {std::make_shared<CSVLogger<double>>(dir.file("log.csv"))};
  const History history = model.fit(x, y, options);
  const auto lines = file_lines(dir.file("log.csv"));
  REQUIRE(lines.size() == 5);
  CHECK(lines[0] == "epoch,loss,mae,val_loss,val_mae");
  CHECK(lines[1] == "0," + CSVLogger<double>::format(history.loss()[0]) + "," +
                        CSVLogger<double>::format(history["mae"][0]) + ",NA,NA");
  CHECK(lines[2] == "1," + CSVLogger<double>::format(history.loss()[1]) + "," +
                        CSVLogger<double>::format(history["mae"][1]) + "," +
                        CSVLogger<double>::format(history.val_loss()[0]) + "," +
                        CSVLogger<double>::format(history["val_mae"][0]));
  CHECK(lines[3].substr(lines[3].size() - 6) == ",NA,NA");
}

TEST_CASE("ModelCheckpoint: an epoch without the monitored value saves nothing and says so") {
  const auto x = test::uniform<double>(24, 3, 17);
  const auto y = test::uniform<double>(24, 1, 18);
  auto model = regression_model<double>();
  test::TempDir dir("minidl_validation_checkpoint");
  std::ostringstream out;
  ModelCheckpointOptions checkpoint_options;
  checkpoint_options.save_best_only = true;
  checkpoint_options.save_weights_only = true;
  checkpoint_options.out = &out;
  auto checkpoint =
      std::make_shared<ModelCheckpoint<double>>(dir.file("ckpt-{epoch:02d}.safetensors"), checkpoint_options);
  FitOptions<double> options = quiet<double>(2, 8);
  options.validation_split = 0.25;
  options.validation_freq = 2;
  options.callbacks = {checkpoint};
  model.fit(x, y, options);
  CHECK(!std::filesystem::exists(dir.file("ckpt-01.safetensors")));
  CHECK(std::filesystem::exists(dir.file("ckpt-02.safetensors")));
  CHECK(out.str().find("Epoch 1: no val_loss in this epoch's logs, not saving") != std::string::npos);

  // A filepath field the epoch lacks is skipped the same way (without save_best_only).
  std::ostringstream out2;
  checkpoint_options.save_best_only = false;
  checkpoint_options.out = &out2;
  options.callbacks = {
      std::make_shared<ModelCheckpoint<double>>(dir.file("w-{val_loss:.3f}.safetensors"), checkpoint_options)};
  model.fit(x, y, options);
  CHECK(out2.str().find("Epoch 1: no val_loss in this epoch's logs, not saving") != std::string::npos);
  CHECK(out2.str().find("Epoch 2: saving model to") != std::string::npos);
}
