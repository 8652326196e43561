// minidl — header-only deep learning on Eigen, with separate training and
// inference paths in every layer. Include this one header.
// Two parts are included on their own, for their dependencies:
//   <minidl/io.hpp>             save/load in safetensors, PyTorch state_dicts,
//                               ModelCheckpoint (nlohmann/json);
//   <minidl/fashion_mnist.hpp>  the IDX reader and Fashion-MNIST (zlib).
#pragma once

#include "activation.hpp"
#include "callbacks.hpp"
#include "error.hpp"
#include "explain_gap.hpp"
#include "fit_options.hpp"
#include "gradient_check.hpp"
#include "history.hpp"
#include "layer.hpp"
#include "layers/activation_layer.hpp"
#include "layers/batch_norm.hpp"
#include "layers/conv2d.hpp"
#include "layers/dense.hpp"
#include "layers/dropout.hpp"
#include "layers/flatten.hpp"
#include "layers/pooling.hpp"
#include "layers/registry.hpp"
#include "losses.hpp"
#include "metrics.hpp"
#include "optimizers/adam.hpp"
#include "optimizers/adamw.hpp"
#include "optimizers/rmsprop.hpp"
#include "optimizers/schedules.hpp"
#include "optimizers/sgd.hpp"
#include "random.hpp"
#include "sequential.hpp"
#include "tensor.hpp"
#include "threads.hpp"
#include "warnings.hpp"
// Last: with MINIDL_PRECOMPILED (minidl::precompiled), the extern template declarations.
#include "precompiled.hpp"
