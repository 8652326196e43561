// Workload C's model in minidl (workloads.hpp): what c_minidl.cpp and
// c_distributed.cpp train.
#pragma once

#include <minidl/minidl.hpp>

#include "workloads.hpp"

namespace bench::c {

/// Conv2D 32 (3x3, same) -> BatchNorm -> ReLU -> MaxPool 2 -> Conv2D 64 (3x3, same) -> BatchNorm -> ReLU ->
/// MaxPool 2 -> Flatten -> Dense 10 softmax, compiled with categorical cross-entropy and Adam.
inline minidl::Sequential<float> make_minidl_model(const minidl::BatchNormOptions& batchnorm = {}) {
  minidl::Conv2DOptions same;
  same.padding = minidl::Padding::same;
  minidl::Sequential<float> model(/*seed=*/42);
  model.add(minidl::Conv2D<float>(minidl::Shape{height, width, 1}, filters1, kernel, same));
  model.add(minidl::BatchNorm<float>(batchnorm));
  model.add(minidl::ReLU<float>());
  model.add(minidl::MaxPooling2D<float>({pool, pool}));
  model.add(minidl::Conv2D<float>(filters2, kernel, same));
  model.add(minidl::BatchNorm<float>(batchnorm));
  model.add(minidl::ReLU<float>());
  model.add(minidl::MaxPooling2D<float>({pool, pool}));
  model.add(minidl::Flatten<float>());
  model.add(minidl::Dense<float>(model.output_shape().size(), classes, minidl::Activation::softmax));
  model.compile(minidl::CategoricalCrossentropy{}, minidl::Adam<float>{learning_rate});
  return model;
}

}  // namespace bench::c
