// minidl benchmarks — the workloads, defined once for every implementation
// (minidl, the plain-Eigen reference, tiny-dnn; bench/torch_bench.py mirrors
// these numbers for PyTorch).
//
//   A: 100 -> Dense 1000 ReLU -> Dense 1, MSE, Adam, batch 32, random data.
//      Figures: µs per training step and per inference batch of 32.
//   B: Fashion-MNIST 784 -> Dense 512 -> BatchNorm -> ReLU -> Dropout(0.2)
//      -> Dense 512 -> BatchNorm -> ReLU -> Dropout(0.2) -> Dense 10 softmax,
//      categorical cross-entropy, Adam, batch 128.
//      Figures: seconds per epoch, predict throughput, test accuracy.
//   C: Fashion-MNIST images 28x28x1 -> Conv2D 32 3x3 same -> BatchNorm -> ReLU
//      -> MaxPooling 2x2 -> Conv2D 64 3x3 same -> BatchNorm -> ReLU
//      -> MaxPooling 2x2 -> Flatten -> Dense 10 softmax, categorical
//      cross-entropy, Adam, batch 64, consecutive training batches.
//      Figures: ms per training step and per inference batch of 64.
//   D: transfer learning with a frozen convolutional base, fit's prefix cache
//      on and off. Fashion-MNIST 28x28x1 -> [Conv2D 3x3 same -> BatchNorm
//      -> ReLU -> MaxPooling 2x2] with 16 and 32 filters -> Conv2D 64 3x3
//      same -> BatchNorm -> ReLU -> GlobalAveragePooling2D (the base), then
//      Dense 64 ReLU -> Dropout(0.3) -> Dense 10 softmax (the head). The
//      whole model is first trained for one epoch on a subset (so that
//      BatchNorm's moving statistics are the data's), then the base is
//      frozen and the head is fit for 10 epochs, batch 32, Adam.
//      Figures: seconds per epoch and per fit, losses, test accuracy.
#pragma once

#include <minidl/fashion_mnist.hpp>
#include <minidl/random.hpp>
#include <minidl/tensor.hpp>
#include <string>
#include <vector>

#include "common.hpp"

namespace bench {

namespace a {
constexpr int inputs = 100, hidden = 1000, outputs = 1, batch = 32;
constexpr float learning_rate = 1e-3f;
constexpr int default_steps = 2000, smoke_steps = 5;
constexpr int blocks = 10;  // the timed steps are split into this many blocks; the median block counts

/// Timed steps for these options (at least one per block).
inline int steps(const Options& options) {
  const int n = options.smoke ? smoke_steps : (options.steps > 0 ? options.steps : default_steps);
  return std::max(n, blocks);
}

/// One fixed batch: x uniform in [-1, 1), y = the sum of x's first 10 columns
/// (something learnable, so the loss is seen to fall).
struct Batch {
  minidl::Matrix<float> x, y;
};
inline Batch make_batch(std::uint64_t seed = 7) {
  minidl::Rng rng(seed);
  Batch b{minidl::Matrix<float>(batch, inputs), minidl::Matrix<float>(batch, outputs)};
  for (Eigen::Index i = 0; i < b.x.size(); ++i) b.x.data()[i] = static_cast<float>(rng.uniform(-1.0, 1.0));
  b.y = b.x.leftCols(10).rowwise().sum();
  return b;
}
}  // namespace a

namespace b {
constexpr int inputs = 784, hidden = 512, classes = 10, batch = 128;
constexpr double dropout = 0.2;
constexpr float learning_rate = 1e-3f;
constexpr int default_epochs = 1;
constexpr std::size_t smoke_samples = 512;  // per split, in a smoke run
constexpr int predict_batch = 128;          // predict() batch size, the same for every implementation

inline int epochs(const Options& options) {
  return options.smoke ? 1 : (options.epochs > 0 ? options.epochs : default_epochs);
}

/// Fashion-MNIST, pixels scaled to [0, 1]: all of it; or the first `--steps`
/// batches' worth of each split (to time part of an epoch, for a slow
/// implementation); or smoke_samples of each split in a smoke run.
inline minidl::FashionMnist<float> load(const Options& options) {
  std::size_t limit = minidl::idx_all;
  if (options.smoke)
    limit = smoke_samples;
  else if (options.steps > 0)
    limit = static_cast<std::size_t>(options.steps) * batch;
  return minidl::load_fashion_mnist<float>(options.data, limit);
}
}  // namespace b

namespace c {
constexpr int height = 28, width = 28, filters1 = 32, filters2 = 64, kernel = 3, pool = 2, classes = 10;
constexpr int batch = 64;
constexpr float learning_rate = 1e-3f;
constexpr int default_steps = 100, smoke_steps = 2;
constexpr int blocks = 10;  // as workload A: the median block of steps counts

inline int steps(const Options& options) {
  const int n = options.smoke ? smoke_steps : (options.steps > 0 ? options.steps : default_steps);
  return std::max(n, blocks);
}

/// Enough training images for the warm-up block and the timed steps (the
/// batches are taken in order and wrap around).
inline minidl::FashionMnist<float> load(const Options& options) {
  const int per_block = steps(options) / blocks;
  return minidl::load_fashion_mnist<float>(options.data, static_cast<std::size_t>((blocks + 1) * per_block * batch));
}
}  // namespace c

namespace d {
constexpr int height = 28, width = 28, kernel = 3, pool = 2, classes = 10;
constexpr int filters[] = {16, 32, 64};  // the base's three Conv2D-BatchNorm-ReLU blocks
constexpr int hidden = 64;
constexpr double dropout = 0.3;
constexpr double bn_momentum = 0.9;  // Keras convention; a short pretraining moves the moving statistics to the data's
constexpr int batch = 32, epochs = 10;
constexpr float learning_rate = 1e-3f;
// Training images of a full run (the first 12,000 of the 60,000): enough for
// the uncached fit's 10 epochs to last over ten seconds at one thread,
// few enough that D's runs (three repetitions of cached, uncached and
// PyTorch at 1 and 2 threads) add a few minutes to the suite, not tens.
constexpr int default_samples = 12000;
constexpr int pretrain_samples = 2048;  // the first images, one epoch, the whole model trainable
constexpr int smoke_samples = 256, smoke_epochs = 2;

inline int fit_epochs(const Options& options) { return options.smoke ? smoke_epochs : epochs; }

/// The first `--samples` images of each split (the test split has 10,000 at
/// most), or smoke_samples in a smoke run.
inline minidl::FashionMnist<float> load(const Options& options) {
  const int n = options.smoke ? smoke_samples : (options.samples > 0 ? options.samples : default_samples);
  return minidl::load_fashion_mnist<float>(options.data, static_cast<std::size_t>(n));
}
}  // namespace d

}  // namespace bench
