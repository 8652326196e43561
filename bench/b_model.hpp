// Workload B's model in minidl (workloads.hpp): what b_minidl.cpp and
// b_distributed.cpp train.
#pragma once

#include <memory>
#include <minidl/minidl.hpp>
#include <utility>
#include <vector>

#include "workloads.hpp"

namespace bench::b {

/// 784 -> Dense 512 -> BatchNorm -> ReLU -> Dropout(0.2) -> Dense 512 -> BatchNorm -> ReLU -> Dropout(0.2)
/// -> Dense 10 softmax, compiled with categorical cross-entropy and Adam.
inline minidl::Sequential<float> make_minidl_model(const minidl::BatchNormOptions& batchnorm = {}) {
  minidl::Sequential<float> model(/*seed=*/42);
  model.add(minidl::Dense<float>(inputs, hidden));
  model.add(minidl::BatchNorm<float>(hidden, batchnorm));
  model.add(minidl::ReLU<float>());
  model.add(minidl::Dropout<float>(dropout));
  model.add(minidl::Dense<float>(hidden, hidden));
  model.add(minidl::BatchNorm<float>(hidden, batchnorm));
  model.add(minidl::ReLU<float>());
  model.add(minidl::Dropout<float>(dropout));
  model.add(minidl::Dense<float>(hidden, classes, minidl::Activation::softmax));
  model.compile(minidl::CategoricalCrossentropy{}, minidl::Adam<float>{learning_rate});
  return model;
}

/// fit's options for a timed run: B's batch, the program's epochs, silent, shuffled from seed 1, these callbacks.
inline minidl::FitOptions<float> fit_options(const Options& options,
                                             std::vector<std::shared_ptr<minidl::Callback<float>>> callbacks) {
  minidl::FitOptions<float> fit;
  fit.batch_size = batch;
  fit.epochs = epochs(options);
  fit.verbose = 0;
  fit.seed = 1;
  fit.callbacks = std::move(callbacks);
  return fit;
}

}  // namespace bench::b
