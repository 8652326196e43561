// ModelCheckpoint: which epochs it saves, what the files hold, file names.
#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <minidl/io/model_checkpoint.hpp>
#include <minidl/minidl.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "support.hpp"

using namespace minidl;
using test::bitwise_equal;

namespace {

template <class S>
Sequential<S> make_model() {
  Sequential<S> model(4);
  model.add(Dense<S>(3, 8, Activation::relu));
  model.add(BatchNorm<S>());
  model.add(Dense<S>(8, 2));
  return model;
}

/// Trains a fresh model for `epochs` with `checkpoint`; records each epoch's
/// weights and logs (after the epoch's validation, as the checkpoint sees them).
template <class S>
struct Run {
  std::vector<std::vector<Vector<S>>> weights;
  std::vector<Logs> logs;
  Sequential<S> model = make_model<S>();

  explicit Run(std::shared_ptr<Callback<S>> checkpoint, int epochs = 8, double learning_rate = 0.3) {
    model.compile(MeanSquaredError{}, SGD<S>{S(learning_rate)}, {Metric::mae});
    auto recorder = std::make_shared<LambdaCallback<S>>();
    recorder->epoch_end = [this](Sequential<S>& m, int, const Logs& l) {
      weights.push_back(m.get_weights());
      logs.push_back(l);
    };
    FitOptions<S> options;
    options.epochs = epochs;
    options.batch_size = 8;
    options.verbose = 0;
    options.validation_data = ValidationData<S>{test::uniform<S>(16, 3, 2), test::uniform<S>(16, 2, 3)};
    options.callbacks = {recorder, checkpoint};
    model.fit(test::uniform<S>(40, 3, 4), test::uniform<S>(40, 2, 5), options);
  }

  /// The epoch (0-based) with the lowest (or highest) value of `name`, the first on ties.
  int best_epoch(const std::string& name, bool lowest) const {
    int best = 0;
    for (int e = 1; e < static_cast<int>(logs.size()); ++e)
      if (lowest ? logs[e][name] < logs[best][name] : logs[e][name] > logs[best][name]) best = e;
    return best;
  }
};

template <class S>
std::vector<Vector<S>> weights_in(const std::string& path) {
  auto model = make_model<S>();
  load_weights(model, path);
  return model.get_weights();
}

}  // namespace

TEST_CASE_TEMPLATE("save_best_only keeps the weights of the best epoch", S, float, double) {
  const test::TempDir dir("minidl_checkpoint");
  for (const bool lowest : {true, false}) {
    CAPTURE(lowest);
    ModelCheckpointOptions options;
    options.save_best_only = true;
    options.save_weights_only = true;
    options.mode = lowest ? MonitorMode::min : MonitorMode::max;
    const std::string path = dir.file(lowest ? "min.safetensors" : "max.safetensors");
    auto checkpoint = std::make_shared<ModelCheckpoint<S>>(path, options);
    Run<S> run(checkpoint);
    const int best = run.best_epoch("val_loss", lowest);
    MESSAGE("best epoch " << best + 1 << " of " << run.logs.size());
    CHECK(checkpoint->best() == run.logs[static_cast<std::size_t>(best)]["val_loss"]);
    CHECK(bitwise_equal(weights_in<S>(path), run.weights[static_cast<std::size_t>(best)]));
    // Another epoch's weights differ: the file is that epoch's, not merely any epoch's.
    const std::size_t other = best == 0 ? 1 : 0;
    CHECK_FALSE(bitwise_equal(weights_in<S>(path), run.weights[other]));
  }
}

TEST_CASE("save_best_only with {epoch}: a new file at each strict improvement of the monitor, none otherwise") {
  const test::TempDir dir("minidl_checkpoint");
  ModelCheckpointOptions options;
  options.save_best_only = true;  // val_loss, min
  options.save_weights_only = true;
  std::ostringstream messages;
  options.out = &messages;
  auto checkpoint = std::make_shared<ModelCheckpoint<double>>(dir.file("e{epoch}.safetensors"), options);
  Run<double> run(checkpoint, 8);
  double best = std::numeric_limits<double>::infinity();
  int saved = 0;
  for (std::size_t e = 0; e < run.logs.size(); ++e) {
    const std::string path = dir.file("e" + std::to_string(e + 1) + ".safetensors");
    CAPTURE(e);
    if (run.logs[e]["val_loss"] < best) {
      best = run.logs[e]["val_loss"];
      ++saved;
      REQUIRE(std::filesystem::exists(path));
      CHECK(bitwise_equal(weights_in<double>(path), run.weights[e]));
    } else {
      CHECK_FALSE(std::filesystem::exists(path));
      CHECK(messages.str().find("Epoch " + std::to_string(e + 1) + ": val_loss did not improve from ") !=
            std::string::npos);
    }
  }
  MESSAGE(saved << " of " << run.logs.size() << " epochs improved");
  CHECK(saved < static_cast<int>(run.logs.size()));  // some epochs are skipped
  CHECK(messages.str().find("Epoch 1: val_loss improved from inf to ") != std::string::npos);
  CHECK(checkpoint->best() == best);
}

TEST_CASE_TEMPLATE("without save_best_only every epoch is saved, {epoch} is 1-based with Python format specs", S,
                   float, double) {
  const test::TempDir dir("minidl_checkpoint");
  auto checkpoint = std::make_shared<ModelCheckpoint<S>>(dir.file("sub/model-{epoch:02d}-{val_loss:.3f}.safetensors"));
  Run<S> run(checkpoint, 3);
  for (int e = 0; e < 3; ++e) {
    char name[64];
    const double val_loss = run.logs[static_cast<std::size_t>(e)]["val_loss"];
    std::snprintf(name, sizeof name, "sub/model-%02d-%.3f.safetensors", e + 1, val_loss);
    CAPTURE(name);
    REQUIRE(std::filesystem::exists(dir.file(name)));
    // A full model: architecture and weights, predicting as the model did at that epoch.
    auto loaded = load_model<S>(dir.file(name));
    CHECK(bitwise_equal(loaded.get_weights(), run.weights[static_cast<std::size_t>(e)]));
  }
  CHECK(checkpoint->last_path() == checkpoint->file_path(2, run.logs[2]));
  auto last = load_model<S>(checkpoint->last_path());
  const Matrix<S> x = test::uniform<S>(5, 3, 9);
  CHECK(last.predict(x) == run.model.predict(x));
}

TEST_CASE("ModelCheckpoint: mode automatic follows Keras, bad arguments fail before training") {
  CHECK(ModelCheckpoint<float>("a").minimizes());
  CHECK_FALSE(ModelCheckpoint<float>("a", {"val_accuracy"}).minimizes());
  CHECK_FALSE(ModelCheckpoint<float>("a", {"fmeasure"}).minimizes());
  CHECK(ModelCheckpoint<float>("a", {"val_mae"}).minimizes());
  CHECK(ModelCheckpoint<float>("a").best() == std::numeric_limits<double>::infinity());
  CHECK_THROWS_AS(ModelCheckpoint<float>(""), ValueError);
  CHECK_THROWS_WITH_AS(ModelCheckpoint<float>("m-{epoch.safetensors"), doctest::Contains("without its '}'"),
                       ValueError);
  CHECK_THROWS_WITH_AS(ModelCheckpoint<float>("m-{epoch:.2f}"), doctest::Contains("{epoch} is an integer"),
                       ValueError);
  CHECK_THROWS_WITH_AS(ModelCheckpoint<float>("m-{loss:x}"), doctest::Contains("format spec 'x'"), ValueError);
  CHECK(ModelCheckpoint<float>("m{{}}-{epoch:03}").file_path(6, Logs{}) == "m{}-007");

  const test::TempDir dir("minidl_checkpoint");
  const auto rejected = [&](ModelCheckpointOptions options, const std::string& path, const std::string& message) {
    auto model = make_model<float>();
    const auto before = model.get_weights();
    model.compile(MeanSquaredError{}, SGD<float>{0.1f});
    FitOptions<float> fit;
    fit.verbose = 0;
    fit.callbacks = {std::make_shared<ModelCheckpoint<float>>(dir.file(path), options)};
    CHECK_THROWS_WITH_AS(model.fit(test::uniform<float>(8, 3, 1), test::uniform<float>(8, 2, 2), fit),
                         doctest::Contains(message.c_str()), ValueError);
    CHECK(bitwise_equal(model.get_weights(), before));
    CHECK(std::filesystem::is_empty(dir.path));
  };
  ModelCheckpointOptions best;
  best.save_best_only = true;  // val_loss, without validation data
  rejected(best, "m.safetensors", "monitor 'val_loss' is not among the values fit reports");
  rejected({}, "m-{val_loss}.safetensors", "monitor 'val_loss' is not among the values fit reports");
  rejected({}, "m-{loss:03d}.safetensors", "formats a real value as an integer");
}
