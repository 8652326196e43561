// minidl — fit's cache of a frozen prefix: the story's "split the model,
// train the top on base.predict features" fix, done by fit itself.
//
// The leading layers of frozen_prefix() train nothing and compute the same
// function in both phases, so each sample's output of the prefix is the same
// in every epoch. fit computes it once, for the training rows (in the
// training phase, in fit's batch size, data order) and for the validation
// rows (in the inference phase, in the validation batch size: the batches
// evaluate would run), then trains and validates the rest of the model on
// those outputs. Shuffling, batch order, callbacks, History and progress are
// unchanged; the cache lives for one call of fit and is freed when it
// returns. Where a kernel's result for a row does not depend on the other
// rows of its batch, the cached fit is bit for bit the uncached one:
// tests/test_prefix_cache.cpp checks it on the main example's conv base in
// float and double and on a Dense-BatchNorm base in double. Eigen's small
// float products are the exception: a row's result depends on its place in
// the batch (in a 4-row tile or among the remainder rows), so a small float
// Dense prefix's cached outputs differ from some batch's by rounding (in the
// test, after 4 epochs: equal losses, weights within 3e-8). The cached path
// is then the one whose figures the README quotes.
//
// If a callback changes the prefix while fit runs (unfreezes a layer, changes
// the frozen BatchNorm policy or the pinning), fit notices before the next
// batch, drops the cache and runs every layer from then on. (A change made in
// on_batch_loss, between a batch's forward and backward pass, therefore
// reaches a cached layer one batch later than it would reach it uncached:
// make such changes in on_batch_end or on_epoch_begin.) It does not see a
// callback that writes new weights into a cached frozen layer: use
// PrefixCache::never for that.
#pragma once

#include <cstddef>
#include <iomanip>
#include <sstream>
#include <ostream>
#include <string>

#if defined(__has_include)
#if __has_include(<unistd.h>)
#include <unistd.h>
#endif
#endif

#include "../sequential.hpp"

namespace minidl {
namespace detail {

/// The machine's physical memory in bytes, or 0 where it cannot be asked.
inline std::size_t physical_memory_bytes() {
#if defined(_SC_PHYS_PAGES) && defined(_SC_PAGE_SIZE)
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  if (pages > 0 && page > 0) return static_cast<std::size_t>(pages) * static_cast<std::size_t>(page);
#endif
  return 0;
}

/// PrefixCache::automatic's budget unless FitOptions::cache_memory_budget
/// sets one: a quarter of the physical memory (the cache is one of several
/// copies of the data a fit holds: the caller's x, the batches, the layers'
/// buffers), or 1 GiB where the memory cannot be asked.
inline std::size_t default_cache_budget() {
  const std::size_t memory = physical_memory_bytes();
  return memory > 0 ? memory / 4 : std::size_t(1) << 30;
}

/// "100 bytes", "6.0 KiB", "131.8 MiB", "1.5 GiB".
inline std::string byte_size(double bytes) {
  std::ostringstream text;
  if (bytes < 1024) return message(bytes, " bytes");
  const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  for (bytes /= 1024; bytes >= 1024 && unit < 3; bytes /= 1024) ++unit;
  text << std::fixed << std::setprecision(1) << bytes << ' ' << units[unit];
  return text.str();
}

/// One fit's cache: the prefix's outputs for the training and validation rows.
template <class Scalar>
struct PrefixOutputs {
  std::size_t layers = 0;    ///< how many leading layers the outputs stand for; 0: no cache
  Matrix<Scalar> train;      ///< training rows x prefix output size
  Matrix<Scalar> validation; ///< validation rows x prefix output size (empty without validation)
  bool quiet = false;        ///< print nothing (a data-parallel fit's replicas other than 0)
};

}  // namespace detail

template <class Scalar>
std::size_t Sequential<Scalar>::frozen_prefix() const {
  std::size_t k = 0;
  for (; k + 1 < layers_.size(); ++k) {  // the last layer always runs
    const Layer<Scalar>& layer = *layers_[k];
    // After compile, the cached views tell whether a layer has parameters without allocating (fit asks per batch).
    const bool has_parameters = compiled_ ? !parameters_[k].empty() : layer.parameter_count() > 0;
    if ((has_parameters && !layer.frozen()) || layer.phases_differ() || layer.activity_regularizer()) break;
  }
  return k;
}

template <class Scalar>
void Sequential<Scalar>::cache_prefix(detail::PrefixOutputs<Scalar>& cache, ConstMatrixRef<Scalar> x,
                                      const ConstMatrixRef<Scalar>* x_val, const FitOptions<Scalar>& options,
                                      Index val_batch_size) {
  const std::size_t k = options.cache_frozen_prefix == PrefixCache::never ? 0 : frozen_prefix();
  if (k == 0) return;
  const Index width = layers_[k - 1]->output_size();
  const double rows = static_cast<double>(x.rows()) + (x_val ? static_cast<double>(x_val->rows()) : 0.0);
  const double bytes = rows * static_cast<double>(width) * sizeof(Scalar);
  const std::size_t budget = options.cache_memory_budget.value_or(detail::default_cache_budget());
  const std::string which = detail::message("layers 0-", k - 1, " (", layers_[0]->name(), " ... ",
                                            layers_[k - 1]->name(), ")");
  const bool report = options.verbose > 0 && !cache.quiet;
  if (options.cache_frozen_prefix == PrefixCache::automatic && bytes > static_cast<double>(budget)) {
    if (report)
      *options.out << "fit: not caching the frozen prefix, " << which << ": its outputs need "
                   << detail::byte_size(bytes) << ", over the budget of " << detail::byte_size(double(budget))
                   << " (FitOptions::cache_memory_budget); every batch runs every layer\n";
    return;
  }
  const auto training = [](std::size_t) { return Phase::training; };
  cache.train.resize(x.rows(), width);
  for_each_batch(x, nullptr, options.batch_size, training,
                 [&](Index begin, Index n, const Matrix<Scalar>& out, const Matrix<Scalar>&) {
                   cache.train.middleRows(begin, n) = out;
                 },
                 {0, k});
  if (x_val) {
    cache.validation.resize(x_val->rows(), width);
    predict_batches(*x_val, cache.validation, val_batch_size, {0, k});
  }
  cache.layers = k;
  if (report)
    *options.out << "fit: " << which << " are frozen and the same in both phases: their outputs are computed once ("
                 << detail::byte_size(bytes) << ") and the rest of the model trains on them"
                 << " (FitOptions::cache_frozen_prefix)\n";
}

template <class Scalar>
void Sequential<Scalar>::check_prefix_cache(detail::PrefixOutputs<Scalar>& cache, const FitOptions<Scalar>& options) {
  if (cache.layers == 0 || frozen_prefix() >= cache.layers) return;
  if (options.verbose > 0 && !cache.quiet)
    *options.out << "\nfit: " << layers_[frozen_prefix()]->describe() << " left the frozen prefix (it trains, or "
                 << "its phases differ now): the cached outputs are dropped and every layer runs from here on\n";
  cache = {};
}

}  // namespace minidl
