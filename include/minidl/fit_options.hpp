// minidl — the options of Sequential::fit, as Keras's fit arguments.
//
// C++20:  model.fit(x, y, {.batch_size = 32, .epochs = 5, .validation_data = {{x_val, y_val}}});
// C++17:  minidl::FitOptions<float> options;  options.batch_size = 32;  ...  model.fit(x, y, options);
#pragma once

#include <cstdint>
#include <iostream>
#include <memory>
#include <optional>
#include <vector>

#include "callbacks/callback.hpp"
#include "tensor.hpp"

namespace minidl {

/// Data evaluated at the end of every epoch. Held by copy, so temporaries are safe.
template <class Scalar>
struct ValidationData {
  Matrix<Scalar> x;  ///< N x input size
  Matrix<Scalar> y;  ///< N x output size
};

template <class Scalar>
struct FitOptions {
  Index batch_size = 32;                                  ///< > 0; the last batch of an epoch may be smaller
  int epochs = 1;                                         ///< >= 0
  std::optional<ValidationData<Scalar>> validation_data{};///< evaluated after each epoch: val_loss, val_<metric>
  bool shuffle = true;                                    ///< reshuffle the samples before every epoch
  std::uint64_t seed = 0;                                 ///< seed of the shuffling
  int verbose = 1;                                        ///< 0 silent, 1 progress bar, 2 one line per epoch
  std::ostream* out = &std::cout;                         ///< where progress goes
  /// Redraw the bar during the epoch: unset means "only if `out` is a terminal".
  std::optional<bool> live_progress{};
  /// Called in this order at each hook (callbacks/callback.hpp); none may be null.
  /// The Keras callbacks (EarlyStopping, CSVLogger, ...) are in callbacks.hpp.
  std::vector<std::shared_ptr<Callback<Scalar>>> callbacks{};
};

}  // namespace minidl
