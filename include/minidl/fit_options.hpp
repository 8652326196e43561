// minidl — the options of Sequential::fit, as Keras's fit arguments.
//
// C++20:  model.fit(x, y, {.batch_size = 32, .epochs = 5, .validation_data = {{x_val, y_val}}});
// C++17:  minidl::FitOptions<float> options;  options.batch_size = 32;  ...  model.fit(x, y, options);
#pragma once

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <iostream>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <utility>
#include <vector>

#include "callbacks/callback.hpp"
#include "error.hpp"
#include "replicas.hpp"
#include "tensor.hpp"

namespace minidl {

/// Data evaluated at the end of every epoch. Held by copy, so temporaries are safe.
template <class Scalar>
struct ValidationData {
  ValidationData(Matrix<Scalar> x_, Matrix<Scalar> y_, std::optional<Vector<Scalar>> sample_weight_ = {})
      : x(std::move(x_)), y(std::move(y_)), sample_weight(std::move(sample_weight_)) {}
  Matrix<Scalar> x;  ///< N x input size
  Matrix<Scalar> y;  ///< N x output size (sparse labels: N x 1)
  std::optional<Vector<Scalar>> sample_weight;  ///< N weights for val_loss and val_<metric>, as fit's
};

/// Which epochs validate, as Keras's `validation_freq`: every n-th epoch
/// (`validation_freq = 2` validates after epochs 2, 4, ...), or the listed
/// epochs (`validation_freq = {1, 5, 10}`), counted from 1 as Keras does. An
/// epoch that does not validate has no val_* values in its logs or History.
class ValidationFrequency {
 public:
  ValidationFrequency(int every = 1) : every_(every) {}  // NOLINT: implicit, as Keras's int argument
  ValidationFrequency(std::initializer_list<int> epochs) : epochs_(epochs) {}
  explicit ValidationFrequency(std::vector<int> epochs) : epochs_(std::move(epochs)) {}

  /// Whether epoch `epoch` (0-based, as fit counts) validates.
  bool validates(int epoch) const {
    if (epochs_.empty()) return (epoch + 1) % every_ == 0;
    for (int e : epochs_)
      if (e == epoch + 1) return true;
    return false;
  }
  /// Throws ValueError unless every count is >= 1.
  void check(const char* call) const {
    if (epochs_.empty() && every_ < 1)
      throw ValueError(detail::message(call, ": validation_freq must be >= 1, got ", every_));
    for (std::size_t i = 0; i < epochs_.size(); ++i)
      if (epochs_[i] < 1)
        throw ValueError(detail::message(call, ": validation_freq[", i, "] is ", epochs_[i],
                                         ", expected an epoch number >= 1 (epochs count from 1)"));
  }

 private:
  int every_ = 1;
  std::vector<int> epochs_;  // when not empty, the validating epochs (1-based)
};

/// Whether fit computes the outputs of a frozen prefix once (Sequential::frozen_prefix(),
/// model/prefix_cache.hpp): when they fit FitOptions::cache_memory_budget, always, or never.
enum class PrefixCache { automatic, always, never };

template <class Scalar>
struct FitOptions {
  Index batch_size = 32;                                  ///< > 0; the last batch of an epoch may be smaller
  int epochs = 1;                                         ///< >= 0: fit runs epochs [initial_epoch, epochs)
  /// Keras's initial_epoch: the epoch to start at (0-based; >= 0), e.g. to go
  /// on with a run that stopped. BackupAndRestore overrides it with its backup's.
  int initial_epoch = 0;
  std::optional<ValidationData<Scalar>> validation_data{};///< evaluated after each epoch: val_loss, val_<metric>
  /// In [0, 1): the last fraction of x and y (floor(N·(1 − split)) onwards,
  /// taken before any shuffling, as Keras) is held out as validation data.
  /// Giving validation_data too is a ValueError (Keras lets validation_data win).
  double validation_split = 0;
  ValidationFrequency validation_freq = 1;                ///< which epochs validate (every one by default)
  /// One weight per row of x (finite, >= 0), as Keras's sample_weight: the
  /// loss of a batch is Σ w_i ℓ_i / n, a metric Σ w_i m_i / Σ w_i. With
  /// validation_split the held-out rows keep theirs for validation.
  std::optional<Vector<Scalar>> sample_weight{};
  /// Keras's class_weight, {class index: weight}: a training sample weighs its
  /// class's (classes not listed: 1). Its class is the argmax of a y row, or
  /// the rounded value of a one-column y. Not with sample_weight (Keras: neither).
  std::map<int, double> class_weight{};
  std::optional<Index> validation_batch_size{};           ///< unset: batch_size
  bool shuffle = true;                                    ///< reshuffle the samples before every epoch
  std::uint64_t seed = 0;                                 ///< seed of the shuffling
  int verbose = 1;                                        ///< 0 silent, 1 progress bar, 2 one line per epoch
  std::ostream* out = &std::cout;                         ///< where progress goes
  /// Redraw the bar during the epoch: unset means "only if `out` is a terminal".
  std::optional<bool> live_progress{};
  /// Compute the frozen prefix's outputs once per fit instead of once per batch (same results).
  PrefixCache cache_frozen_prefix = PrefixCache::automatic;
  /// The most memory (bytes) `automatic` lets the cache take; unset: a quarter of the machine's memory.
  std::optional<std::size_t> cache_memory_budget{};
  /// A data-parallel fit over these replicas (replicas.hpp; <minidl/distributed.hpp> makes them on MPI): each
  /// global batch of batch_size rows is split across them, every replica applies the same update. Unset: one process.
  std::shared_ptr<ReplicaGroup> replicas{};
  /// Called in this order at each hook (callbacks/callback.hpp); none may be null.
  /// The Keras callbacks (EarlyStopping, CSVLogger, ...) are in callbacks.hpp.
  std::vector<std::shared_ptr<Callback<Scalar>>> callbacks{};
};

namespace detail {

/// The rows fit trains on when the last `split` of `samples` rows is held out
/// for validation: floor(samples·(1 − split)), as Keras (in double). Throws
/// ValueError for a split outside [0, 1) or one that leaves either part empty.
inline Index validation_split_point(Index samples, double split) {
  if (!(split >= 0 && split < 1))
    throw ValueError(message("Sequential::fit: validation_split must be in [0, 1), got ", split));
  if (split == 0) return samples;
  const auto point = static_cast<Index>(std::floor(static_cast<double>(samples) * (1.0 - split)));
  if (point == 0 || point == samples)
    throw ValueError(message("Sequential::fit: validation_split = ", split, " of ", samples, " samples leaves ",
                             point, " for training and ", samples - point,
                             " for validation; both need at least one (more data, or another split)"));
  return point;
}

/// The state fit starts from before any callback restores one (see
/// Callback::on_train_restore). Throws ValueError for a negative initial_epoch.
template <class Scalar>
FitState initial_fit_state(const FitOptions<Scalar>& options, Index samples) {
  if (options.initial_epoch < 0)
    throw ValueError(message("Sequential::fit: initial_epoch must be >= 0, got ", options.initial_epoch));
  FitState state{options.initial_epoch, Rng(options.seed), std::vector<Index>(static_cast<std::size_t>(samples)), {}};
  std::iota(state.order.begin(), state.order.end(), Index{0});
  return state;
}

}  // namespace detail
}  // namespace minidl
