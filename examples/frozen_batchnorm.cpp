// Cause 3 of the fit/evaluate mismatch: a frozen BatchNorm — and its three fixes.
//
// On real Fashion-MNIST:
//  1. Pretrain a convolutional base (Conv–BN–ReLU–MaxPool blocks, then global
//     average pooling: BatchNorm normalizes each channel over N·H·W values, as
//     in the story's DenseNet) as a classifier of *clothes* (T-shirt, trouser,
//     pullover, dress, coat, shirt). With --dense, the base is Dense–BN–ReLU
//     blocks instead.
//  2. Freeze the base and fine-tune a regression head on *footwear and bags*
//     (sandal, sneaker, bag, ankle boot) photographed in dimmer light (pixel
//     values halved): predict how much of the 28x28 frame the item covers, in
//     percent. Other objects in other light: the base's features have other
//     means and variances on these images than the moving statistics that
//     BatchNorm learned on clothes — the situation of a pretrained base meeting
//     a new domain.
//  3. Compare, on the same fine-tuning images, fit's loss with evaluate's:
//       legacy  frozen BN normalizes training batches with their own statistics
//               (Keras 2.1.3–2.3.1), inference uses the moving ones: a large gap;
//       fix 1   BN trainable: its moving statistics follow the new data;
//       fix 2   split: compute the base's features once with predict, train the top;
//       fix 3   minidl's default: a frozen BN uses its moving statistics in both phases.
//     Each case's fit time is printed: the frozen base of fix 3 computes the
//     same function in both phases, so fit computes its outputs once (as fix 2
//     does by hand, FitOptions::cache_frozen_prefix); fix 3 is fitted again
//     without that cache to show the time it saved and that the run is the same.
//  4. Print explain_gap's table for the legacy case.
//
// Usage: frozen_batchnorm [DATA_DIR] [--dense] [--curves DIR]
//   DATA_DIR   default: /usr/share/datasets/fashion-mnist
//   --curves   also write the loss curves, one CSV per case (CSVLogger):
//              DIR/legacy.csv, fix1.csv, fix2.csv, fix3.csv with fit's loss and
//              val_loss per epoch, the validation data being the same
//              fine-tuning images (so val_loss is evaluate's number after each
//              epoch); scripts/plot_curves.sh DIR OUT.png draws them.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <initializer_list>
#include <iostream>
#include <minidl/fashion_mnist.hpp>
#include <minidl/minidl.hpp>
#include <string>
#include <vector>

using namespace minidl;

namespace {

struct Task {
  Matrix<float> x;  // N x 784 pixels in [0, 1]
  Matrix<float> y;  // N x classes (one-hot) or N x 1 (coverage)
};

bool in(int label, std::initializer_list<int> classes) {
  for (int c : classes)
    if (c == label) return true;
  return false;
}

std::vector<Index> rows_of(const std::vector<int>& labels, std::initializer_list<int> classes, Index limit) {
  std::vector<Index> rows;
  for (std::size_t i = 0; i < labels.size() && static_cast<Index>(rows.size()) < limit; ++i)
    if (in(labels[i], classes)) rows.push_back(static_cast<Index>(i));
  return rows;
}

// The clothes classifier's data: one-hot over the six clothes classes.
Task clothes(const Matrix<float>& images, const std::vector<int>& labels, Index limit) {
  const std::initializer_list<int> classes = {0, 1, 2, 3, 4, 6};
  const auto rows = rows_of(labels, classes, limit);
  Task task{Matrix<float>(static_cast<Index>(rows.size()), images.cols()),
            Matrix<float>::Zero(static_cast<Index>(rows.size()), 6)};
  for (Index r = 0; r < task.x.rows(); ++r) {
    const Index row = rows[static_cast<std::size_t>(r)];
    task.x.row(r) = images.row(row);
    int k = 0;
    for (int c : classes) {
      if (c == labels[static_cast<std::size_t>(row)]) task.y(r, k) = 1;
      ++k;
    }
  }
  return task;
}

// The regression data: footwear and bags in dimmer light (pixels halved),
// target = % of the frame the item covers (pixels above 0.1 after dimming).
Task footwear_and_bags(const Matrix<float>& images, const std::vector<int>& labels, Index limit) {
  const auto rows = rows_of(labels, {5, 7, 8, 9}, limit);
  Task task{Matrix<float>(static_cast<Index>(rows.size()), images.cols()),
            Matrix<float>(static_cast<Index>(rows.size()), 1)};
  for (Index r = 0; r < task.x.rows(); ++r) {
    task.x.row(r) = 0.5f * images.row(rows[static_cast<std::size_t>(r)]);
    task.y(r, 0) = 100.0f * static_cast<float>((task.x.row(r).array() > 0.1f).count()) / 784.0f;
  }
  return task;
}

struct Outcome {
  const char* name = "";
  double fit_loss = 0, evaluate = 0, evaluate_test = 0, fit_seconds = 0;
  History history;
};

// Conv(3x3, same)–BN–ReLU–MaxPool(2) x2, then global average pooling: 28x28x1 -> 32 features.
// Both bases use BatchNorm momentum 0.9 (PyTorch's 0.1 in Keras's terms)
// rather than Keras's 0.99, so that the moving statistics settle within the
// short pretraining.
BatchNormOptions pretraining_batchnorm() {
  BatchNormOptions options;
  options.momentum = 0.9;
  return options;
}

Sequential<float> conv_base() {
  Conv2DOptions same;
  same.padding = Padding::same;
  const BatchNormOptions bn = pretraining_batchnorm();
  Sequential<float> base(/*seed=*/1);
  base.add(Conv2D<float>(Shape{28, 28, 1}, 16, 3, same));
  base.add(BatchNorm<float>(bn));
  base.add(ReLU<float>());
  base.add(MaxPooling2D<float>());
  base.add(Conv2D<float>(32, 3, same));
  base.add(BatchNorm<float>(bn));
  base.add(ReLU<float>());
  base.add(MaxPooling2D<float>());
  base.add(GlobalAveragePooling2D<float>());
  return base;
}

// Dense–BN–ReLU x2: 784 -> 128 features.
Sequential<float> dense_base() {
  const BatchNormOptions bn = pretraining_batchnorm();
  Sequential<float> base(/*seed=*/1);
  base.add(Dense<float>(784, 256));
  base.add(BatchNorm<float>(bn));
  base.add(ReLU<float>());
  base.add(Dense<float>(256, 128));
  base.add(BatchNorm<float>(bn));
  base.add(ReLU<float>());
  return base;
}

// The regression model: a private copy of the pretrained base + a new head.
Sequential<float> regression_model(const Sequential<float>& base) {
  Sequential<float> model(/*seed=*/11);
  model.add(base.clone());
  model.add(Dense<float>(base.output_shape().size(), 64, Activation::relu));
  model.add(Dropout<float>(0.2));
  model.add(Dense<float>(64, 1));
  return model;
}

FitOptions<float> fine_tune_options() {
  FitOptions<float> options;
  options.batch_size = 32;
  options.epochs = 20;
  options.verbose = 0;
  options.seed = 5;
  return options;
}

// With --curves: validation on the training images themselves and a CSV of
// every epoch. Validation runs in the inference phase and changes nothing, so
// the training run is the same with or without it.
FitOptions<float> curve_options(const std::string& curves_dir, const char* file, const Matrix<float>& x,
                                const Matrix<float>& y) {
  FitOptions<float> options = fine_tune_options();
  if (curves_dir.empty()) return options;
  options.validation_data = ValidationData<float>{x, y};
  options.callbacks.push_back(
      std::make_shared<CSVLogger<float>>((std::filesystem::path(curves_dir) / file).string()));
  return options;
}

// Seconds that run() takes.
template <class Run>
double seconds(Run&& run) {
  const auto start = std::chrono::steady_clock::now();
  run();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = default_fashion_mnist_dir();
  bool dense = false;
  std::string curves_dir;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--dense") {
      dense = true;
    } else if (std::string(argv[i]) == "--curves") {
      if (i + 1 == argc) {
        std::cerr << "frozen_batchnorm: --curves needs a directory\n";
        return 2;
      }
      curves_dir = argv[++i];
    } else {
      dir = argv[i];
    }
  }
  if (!curves_dir.empty()) {
    std::error_code error;
    std::filesystem::create_directories(curves_dir, error);
    if (error) {
      std::cerr << "frozen_batchnorm: cannot create " << curves_dir << ": " << error.message() << '\n';
      return 2;
    }
  }
  FashionMnist<float> data;
  try {
    data = load_fashion_mnist<float>(dir);
  } catch (const Error& e) {
    std::cerr << "frozen_batchnorm: " << e.what() << '\n';
    return 2;
  }

  // 1. Pretrain the base on clothes.
  const Task pretrain = clothes(data.train_x, data.train_y, 6000);
  const Task pretrain_test = clothes(data.test_x, data.test_y, 3000);
  Sequential<float> pretrained = dense ? dense_base() : conv_base();
  const std::size_t base_size = pretrained.size();
  const Index feature_count = pretrained.output_shape().size();
  pretrained.add(Dense<float>(feature_count, 6, Activation::softmax));
  pretrained.compile(CategoricalCrossentropy{}, Adam<float>{1e-3f}, {Metric::accuracy});
  FitOptions<float> pretrain_options;
  pretrain_options.batch_size = 64;
  pretrain_options.epochs = 3;
  pretrain_options.verbose = 2;
  std::printf("Pretraining a %s base: a classifier of %ld clothes images (6 classes)\n",
              dense ? "dense" : "convolutional", static_cast<long>(pretrain.x.rows()));
  pretrained.summary();
  pretrained.fit(pretrain.x, pretrain.y, pretrain_options);
  std::printf("clothes test accuracy: %.1f%%\n\n",
              100 * pretrained.evaluate_all(pretrain_test.x, pretrain_test.y)["accuracy"]);
  const Sequential<float> base = pretrained.split(base_size).first;

  // 2. Fine-tune a regression head on footwear and bags, four ways.
  const Task tune = footwear_and_bags(data.train_x, data.train_y, 1024);
  const Task tune_test = footwear_and_bags(data.test_x, data.test_y, 1000);
  std::printf("Fine-tuning a regression head (%% of the frame covered) on %ld footwear and bag images\n"
              "in dimmer light, base frozen, %d epochs of batch %ld; loss is MSE.\n\n",
              static_cast<long>(tune.x.rows()), fine_tune_options().epochs,
              static_cast<long>(fine_tune_options().batch_size));

  std::vector<Outcome> outcomes;
  History fix3_uncached;
  double fix3_uncached_seconds = 0;
  Sequential<float> legacy_model = regression_model(base);
  const char* const curve_files[] = {"legacy.csv", "fix1.csv", "fix2.csv", "fix3.csv"};
  for (const char* name : {"legacy: frozen BN, batch statistics", "fix 1: BN trainable",
                           "fix 2: split, train top on features", "fix 3: frozen BN, moving statistics"}) {
    Outcome outcome;
    outcome.name = name;
    const char* curve_file = curve_files[outcomes.size()];
    Sequential<float> model = regression_model(base);
    model.freeze(0, base_size);
    const bool legacy = outcomes.empty();
    if (legacy) model.set_frozen_batchnorm_policy(FrozenBatchNormPolicy::batch_statistics);
    if (outcomes.size() == 1)  // fix 1: the base's BatchNorm layers train
      for (std::size_t i = 0; i < base_size; ++i)
        if (model.layer(i).type() == std::string("BatchNormalization")) model.layer(i).set_frozen(false);
    if (outcomes.size() == 2) {  // fix 2: the top learns from features computed once in the inference phase
      auto [front, top] = model.split(base_size);
      top.compile(MeanSquaredError{}, Adam<float>{3e-3f});
      outcome.fit_seconds = seconds([&] {
        const Matrix<float> features = front.predict(tune.x);
        outcome.history = top.fit(features, tune.y, curve_options(curves_dir, curve_file, features, tune.y));
      });
    } else {
      model.compile(MeanSquaredError{}, Adam<float>{3e-3f});
      if (outcomes.size() == 3) {  // fix 3 once more, every layer on every batch: the cache's saving
        Sequential<float> uncached = model.clone();
        FitOptions<float> options = curve_options("", curve_file, tune.x, tune.y);
        options.cache_frozen_prefix = PrefixCache::never;
        fix3_uncached_seconds = seconds([&] { fix3_uncached = uncached.fit(tune.x, tune.y, options); });
      }
      outcome.fit_seconds = seconds(
          [&] { outcome.history = model.fit(tune.x, tune.y, curve_options(curves_dir, curve_file, tune.x, tune.y)); });
    }
    model.compile(MeanSquaredError{}, Adam<float>{1e-3f});  // evaluate the whole model
    outcome.fit_loss = outcome.history.loss().back();
    outcome.evaluate = model.evaluate(tune.x, tune.y);
    outcome.evaluate_test = model.evaluate(tune_test.x, tune_test.y);
    outcomes.push_back(outcome);
    if (legacy) legacy_model = std::move(model);
  }

  std::printf("%-38s %12s %14s %8s %14s %8s\n", "", "fit loss", "evaluate", "ratio", "evaluate", "fit");
  std::printf("%-38s %12s %14s %8s %14s %8s\n", "", "(last epoch)", "(same images)", "", "(test images)", "(s)");
  for (const auto& o : outcomes)
    std::printf("%-38s %12.2f %14.2f %7.1fx %14.2f %8.2f\n", o.name, o.fit_loss, o.evaluate, o.evaluate / o.fit_loss,
                o.evaluate_test, o.fit_seconds);
  // Bit for bit where each image's features do not depend on the other images of its batch (the conv base);
  // otherwise within float rounding (see model/prefix_cache.hpp).
  double loss_difference = 0;
  for (std::size_t e = 0; e < fix3_uncached.loss().size(); ++e)
    loss_difference = std::max(loss_difference, std::abs(fix3_uncached.loss()[e] - outcomes[3].history.loss()[e]) /
                                                    fix3_uncached.loss()[e]);
  std::printf("\nfix 3 computed its frozen base once per fit; recomputed on every batch (PrefixCache::never) the\n"
              "same fit took %.2f s, %.1fx as long; largest relative difference of an epoch's loss: %.3g.\n",
              fix3_uncached_seconds, fix3_uncached_seconds / outcomes[3].fit_seconds, loss_difference);

  std::printf("\nThe legacy case, explained (explain_gap):\n");
  std::cout << explain_gap(legacy_model, tune.x, tune.y, &outcomes[0].history) << '\n';

  // What this example demonstrates; a non-zero exit if it does not hold.
  bool ok = outcomes[0].evaluate > 3 * outcomes[0].fit_loss && loss_difference < 1e-5;
  for (std::size_t i = 1; i < outcomes.size(); ++i) ok = ok && outcomes[i].evaluate < 1.5 * outcomes[i].fit_loss;
  if (!curves_dir.empty())
    std::printf("\nLoss curves written to %s (plot them with scripts/plot_curves.sh %s OUT.png)\n", curves_dir.c_str(),
                curves_dir.c_str());
  if (!ok)
    std::printf("FAILED: expected the legacy gap (evaluate > 3x fit), no such gap with the fixes, and fix 3's losses "
                "the same with and without the frozen-prefix cache (to 1e-5)\n");
  return ok ? 0 : 1;
}
