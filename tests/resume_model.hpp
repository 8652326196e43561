// The training run that the resumption tests interrupt and resume: a model
// with BatchNorm, an unseeded and a seeded Dropout, Adam, shuffling and
// validation every other epoch (so the History has epochs without val_*).
// Shared by tests/test_backup_and_restore.cpp and tests/resume_worker.cpp.
#pragma once

#include <minidl/io.hpp>

#include <cstdint>

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

}  // namespace minidl::test
