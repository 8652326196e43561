// minidl — the optional precompiled mode: what the library minidl::precompiled
// compiles once, for float and double, so that a program's own translation
// units need not.
//
// Header-only is the default. A target that links minidl::precompiled (CMake)
// or uses minidl-precompiled.pc gets MINIDL_PRECOMPILED defined; <minidl/minidl.hpp>
// then ends with explicit instantiation declarations ("extern template") of the
// templates below, so the compiler neither instantiates nor optimizes their
// members in that translation unit: the library's object files hold them.
// Templates instantiated for other types (a user's own layer, a loss functor
// of one's own) compile as before, header-only.
//
// The library is built with its own flags (CMAKE_CXX_FLAGS when minidl was
// configured; MINIDL_NATIVE does not apply to it): build it with the same
// -march as the programs that link it, or their products will not use the
// AVX-512 kernel.
#pragma once

#include "callbacks.hpp"
#include "explain_gap.hpp"
#include "gradient_check.hpp"
#include "layers/activation_layer.hpp"
#include "layers/batch_norm.hpp"
#include "layers/conv2d.hpp"
#include "layers/dense.hpp"
#include "layers/dropout.hpp"
#include "layers/flatten.hpp"
#include "layers/pooling.hpp"
#include "layers/registry.hpp"
#include "losses.hpp"
#include "model/loss_function.hpp"
#include "optimizers/adam.hpp"
#include "optimizers/adamw.hpp"
#include "optimizers/rmsprop.hpp"
#include "optimizers/schedules.hpp"
#include "optimizers/sgd.hpp"
#include "sequential.hpp"

// MINIDL_INSTANTIATIONS(template, float) defines the instantiations (in
// src/precompiled_float.cpp); MINIDL_INSTANTIATIONS(extern template, float)
// declares them. One list, so the two cannot drift apart.
#define MINIDL_INSTANTIATE_LAYER(KEYWORD, Type, S) \
  KEYWORD class LayerBase<Type, S>;                \
  KEYWORD class Type;
#define MINIDL_INSTANTIATE_ACTIVATION(KEYWORD, S, A)                                                                 \
  KEYWORD class LayerBase<ActivationLayer<S, Activation::A>, S>; \
  KEYWORD class ActivationLayer<S, Activation::A>;

#define MINIDL_INSTANTIATIONS(KEYWORD, S)                                                                            \
  KEYWORD class Layer<S>;                                                                                          \
  KEYWORD class KernelLayer<Dense<S>, S>;                                                                          \
  KEYWORD class KernelLayer<Conv2D<S>, S>;                                                                         \
  KEYWORD class Dense<S>;                                                                                          \
  KEYWORD class Conv2D<S>;                                                                                         \
  KEYWORD class LayerBase<Dense<S>, S>;                                                                            \
  KEYWORD class LayerBase<Conv2D<S>, S>;                                                                           \
  MINIDL_INSTANTIATE_LAYER(KEYWORD, BatchNorm<S>, S)                                                               \
  MINIDL_INSTANTIATE_LAYER(KEYWORD, Dropout<S>, S)                                                                 \
  MINIDL_INSTANTIATE_LAYER(KEYWORD, Flatten<S>, S)                                                                 \
  MINIDL_INSTANTIATE_LAYER(KEYWORD, GlobalAveragePooling2D<S>, S)                                                  \
  MINIDL_INSTANTIATE_ACTIVATION(KEYWORD, S, relu)                                                                    \
  MINIDL_INSTANTIATE_ACTIVATION(KEYWORD, S, sigmoid)                                                                 \
  MINIDL_INSTANTIATE_ACTIVATION(KEYWORD, S, tanh)                                                                    \
  MINIDL_INSTANTIATE_ACTIVATION(KEYWORD, S, softmax)                                                                 \
  MINIDL_INSTANTIATE_ACTIVATION(KEYWORD, S, linear)                                                                  \
  MINIDL_INSTANTIATE_ACTIVATION(KEYWORD, S, leaky_relu)                                                              \
  MINIDL_INSTANTIATE_ACTIVATION(KEYWORD, S, elu)                                                                     \
  MINIDL_INSTANTIATE_ACTIVATION(KEYWORD, S, gelu)                                                                    \
  MINIDL_INSTANTIATE_ACTIVATION(KEYWORD, S, silu)                                                                    \
  MINIDL_INSTANTIATE_ACTIVATION(KEYWORD, S, softplus)                                                                \
  MINIDL_INSTANTIATE_ACTIVATION(KEYWORD, S, relu6)                                                                   \
  KEYWORD class Pooling2D<MaxPooling2D<S>, S>;                                                                     \
  KEYWORD class Pooling2D<AveragePooling2D<S>, S>;                                                                 \
  MINIDL_INSTANTIATE_LAYER(KEYWORD, MaxPooling2D<S>, S)                                                            \
  MINIDL_INSTANTIATE_LAYER(KEYWORD, AveragePooling2D<S>, S)                                                        \
  KEYWORD class LayerRegistry<S>;                                                                                  \
  KEYWORD class Optimizer<S>;                                                                                      \
  KEYWORD class SGD<S>;                                                                                            \
  KEYWORD class Adam<S>;                                                                                           \
  KEYWORD class RMSprop<S>;                                                                                        \
  KEYWORD class OptimizerBase<SGD<S>, S>;                                                                          \
  KEYWORD class OptimizerBase<RMSprop<S>, S>;                                                                      \
  KEYWORD class OptimizerBase<Adam<S>, S>;                                                                         \
  KEYWORD class OptimizerBase<AdamW<S>, S>;                                                                        \
  KEYWORD class detail::AdamRule<Adam<S>, S>;                                                                      \
  KEYWORD class detail::AdamRule<AdamW<S>, S>;                                                                     \
  KEYWORD class AdamW<S>;                                                                                          \
  KEYWORD class LearningRate<S>;                                                                                   \
  KEYWORD class ExponentialDecay<S>;                                                                               \
  KEYWORD class InverseTimeDecay<S>;                                                                               \
  KEYWORD class PiecewiseConstantDecay<S>;                                                                         \
  KEYWORD class PolynomialDecay<S>;                                                                                \
  KEYWORD class CosineDecay<S>;                                                                                    \
  KEYWORD class detail::LossFunctionBase<S>;                                                                       \
  KEYWORD class detail::LossFunction<S, MeanSquaredError>;                                                         \
  KEYWORD class detail::LossFunction<S, MeanAbsoluteError>;                                                        \
  KEYWORD class detail::LossFunction<S, BinaryCrossentropy>;                                                       \
  KEYWORD class detail::LossFunction<S, CategoricalCrossentropy>;                                                  \
  KEYWORD class detail::LossFunction<S, SparseCategoricalCrossentropy>;                                            \
  KEYWORD class detail::LossFunction<S, Huber>;                                                                    \
  KEYWORD class Callback<S>;                                                                                       \
  KEYWORD class EarlyStopping<S>;                                                                                  \
  KEYWORD class ReduceLROnPlateau<S>;                                                                              \
  KEYWORD class CSVLogger<S>;                                                                                      \
  KEYWORD class TerminateOnNaN<S>;                                                                                 \
  KEYWORD class Sequential<S>;                                                                                     \
  KEYWORD GapReport explain_gap<S>(const Sequential<S>&, detail::NonDeduced<ConstMatrixRef<S>>,                   \
                                   detail::NonDeduced<ConstMatrixRef<S>>, const History*, const ExplainOptions&); \
  KEYWORD GradientCheckResult check_gradients<S>(const Layer<S>&, const Matrix<S>&, const GradientCheckOptions&);

#ifdef MINIDL_PRECOMPILED
namespace minidl {
MINIDL_INSTANTIATIONS(extern template, float)
MINIDL_INSTANTIATIONS(extern template, double)
}  // namespace minidl
#endif
