// The training run that the resumption tests interrupt and resume: a model
// with BatchNorm, an unseeded and a seeded Dropout, Adam, shuffling and
// validation every other epoch (so the History has epochs without val_*);
// and, for the training programs that the tests kill and run again, a
// callback that kills its process and the result files a run must reproduce.
// Shared by tests/test_backup_and_restore.cpp, tests/resume_worker.cpp and
// tests/mpi_resume_worker.cpp.
#pragma once

#include <csignal>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <minidl/io.hpp>
#include <string>

namespace minidl::test {

template <class Scalar>
Sequential<Scalar> resume_model(Index hidden = 8) {
  Sequential<Scalar> model(5);
  model.add(Dense<Scalar>(5, hidden, Activation::relu));
  model.add(BatchNorm<Scalar>());
  model.add(Dropout<Scalar>(0.25));  // its generator seeded from the model's
  model.add(Dense<Scalar>(6, Activation::relu));
  model.add(Dropout<Scalar>(0.2, 42));  // its own seed
  model.add(Dense<Scalar>(3, Activation::softmax));
  model.compile(CategoricalCrossentropy{}, Adam<Scalar>(Scalar(0.01)), {Metric::accuracy});
  return model;
}

/// 50 samples of 5 features, one-hot labels of 3 classes (from a fixed rule).
template <class Scalar>
std::pair<Matrix<Scalar>, Matrix<Scalar>> resume_data() {
  Rng rng(11);
  Matrix<Scalar> x(50, 5);
  Matrix<Scalar> y = Matrix<Scalar>::Zero(50, 3);
  for (Index i = 0; i < x.rows(); ++i) {
    for (Index j = 0; j < x.cols(); ++j) x(i, j) = static_cast<Scalar>(rng.uniform(-1, 1));
    const Scalar s = x(i, 0) + x(i, 1) - x(i, 2);
    y(i, s < Scalar(-0.3) ? 0 : s < Scalar(0.3) ? 1 : 2) = 1;
  }
  return {x, y};
}

template <class Scalar>
FitOptions<Scalar> resume_options(int epochs = 5) {
  FitOptions<Scalar> options;
  options.batch_size = 8;  // 40 training rows: 5 batches
  options.epochs = epochs;
  options.validation_split = 0.2;
  options.validation_freq = 2;
  options.seed = 3;
  options.verbose = 0;
  return options;
}

/// Raises SIGKILL on its own process right after batch `batch` of epoch `epoch` (both 0-based): the same
/// death at the same point on every run, which no handler or destructor softens.
template <class Scalar>
struct KillAt : Callback<Scalar> {
  KillAt(int epoch_, Index batch_) : epoch(epoch_), batch(batch_) {}
  void on_epoch_begin(Sequential<Scalar>&, int e) override { current = e; }
  void on_batch_end(Sequential<Scalar>&, Index b, const Logs&) override {
    if (current == epoch && b == batch) std::raise(SIGKILL);
  }
  int epoch, current = -1;
  Index batch;
};

/// Writes what a resumed run must reproduce: <prefix>.safetensors (save_model with the optimizer state) and
/// <prefix>.history (every History value in hexadecimal, so that equal files mean equal bits). False if the
/// History could not be written; save_model throws its own errors.
template <class Scalar>
bool write_resume_result(const Sequential<Scalar>& model, const History& history, const std::string& prefix) {
  SaveModelOptions save;
  save.include_optimizer = true;
  save_model(model, prefix + ".safetensors", save);
  std::ofstream out(prefix + ".history");
  for (const auto& name : history.names()) {
    out << name;
    for (double v : history[name]) {
      char hex[64];
      std::snprintf(hex, sizeof hex, " %a", v);
      out << hex;
    }
    out << "\n";
  }
  return out.good();
}

}  // namespace minidl::test
