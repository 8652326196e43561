// minidl — Sequential's training loop: fit and the training step it shares
// with train_on_batch (the class and its contracts are in sequential.hpp,
// which includes this file at its end; evaluation is in evaluation.hpp).
//
// fit, per epoch: shuffle the sample order (seeded), then for each batch
// gather its rows, run the training-phase forward and the loss (the value
// fit reports, before the update), let the callbacks veto the update, run
// backward and the update; after the last batch, validate in the inference
// phase, exactly as evaluate() would. The validation data is
// options.validation_data or the last validation_split of x and y (held out
// before shuffling, as Keras); validation_freq picks the epochs that validate.
#pragma once

#include <algorithm>
#include <numeric>
#include <optional>

#include "../sequential.hpp"

namespace minidl {
namespace detail {

/// Running means over batches of the loss and the metrics, as Keras's Mean
/// trackers: the loss (each batch's already Σ w_i ℓ_i / n) weighted by batch
/// size; a metric by its samples' weights (1 each without sample weights).
/// Kept as sums, which a data-parallel fit adds up over the replicas.
/// Allocates nothing once reset() has seen the number of metrics.
template <class Scalar>
class RunningMeans {
 public:
  void reset(std::size_t metrics) { sums_.assign(first_metric + metrics, 0.0); }
  void add(Scalar batch_loss, const std::vector<Metric>& metrics, const Matrix<Scalar>& y_pred,
           const Matrix<Scalar>& y_true, const Vector<Scalar>* sample_weight) {
    const auto n = static_cast<double>(y_pred.rows());
    sums_[loss_sum] += static_cast<double>(batch_loss) * n;
    sums_[samples] += n;
    add_metric_sums(metrics, y_pred, y_true, sample_weight, sums_.data() + weights);
  }
  /// out[0] += the samples' weights (n without sample weights), out[1 + m] += metric m's sum Σ w_i m_i (without
  /// weights: the batch mean, a Scalar, times n).
  template <class Out>
  static void add_metric_sums(const std::vector<Metric>& metrics, const Matrix<Scalar>& y_pred,
                              const Matrix<Scalar>& y_true, const Vector<Scalar>* sample_weight, Out* out) {
    const auto n = static_cast<double>(y_pred.rows());
    out[0] += static_cast<Out>(sample_weight ? static_cast<double>(sample_weight->template cast<double>().sum()) : n);
    for (std::size_t m = 0; m < metrics.size(); ++m)
      out[1 + m] += static_cast<Out>(sample_weight ? metrics[m].sum(y_pred, y_true, sample_weight)
                                                   : static_cast<double>(metrics[m](y_pred, y_true)) * n);
  }
  /// A batch of `n` rows whose loss is `batch_loss` and whose weight and metric sums (add_metric_sums) are `sums`.
  template <class In>
  void add_sums(double batch_loss, double n, const In* sums) {
    sums_[loss_sum] += batch_loss * n;
    sums_[samples] += n;
    for (std::size_t i = weights; i < sums_.size(); ++i) sums_[i] += static_cast<double>(sums[i - weights]);
  }
  double loss() const { return sums_[loss_sum] / sums_[samples]; }
  /// Keras's divide_no_nan: 0 when every weight so far was 0.
  double metric(std::size_t m) const { return sums_[weights] > 0 ? sums_[first_metric + m] / sums_[weights] : 0.0; }
  /// The sums themselves: loss × samples, samples, weights, then one per metric.
  std::vector<double>& sums() { return sums_; }

 private:
  enum : std::size_t { loss_sum, samples, weights, first_metric };
  std::vector<double> sums_;
};

/// fit's per-sample weights of all of x: options.sample_weight, or Keras's
/// class_weight turned into one (a row's class: the argmax of its y row, or
/// its rounded value for one column, half to even as numpy), or none.
template <class Scalar>
std::optional<Vector<Scalar>> fit_sample_weights(ConstMatrixRef<Scalar> y, const FitOptions<Scalar>& options) {
  if (options.sample_weight && !options.class_weight.empty())
    throw ValueError("Sequential::fit: sample_weight and class_weight both given; choose one (as Keras)");
  if (options.sample_weight) return options.sample_weight;
  if (options.class_weight.empty()) return std::nullopt;
  for (const auto& [label, weight] : options.class_weight)
    if (!(weight >= 0) || !std::isfinite(weight))
      throw ValueError(message("Sequential::fit: class_weight of class ", label, " is ", weight,
                               ", expected a finite weight >= 0"));
  Vector<Scalar> weights(y.rows());
  for (Index i = 0; i < y.rows(); ++i) {
    Index label = 0;
    if (y.cols() == 1) label = static_cast<Index>(std::nearbyint(static_cast<double>(y(i, 0))));
    else y.row(i).maxCoeff(&label);  // the first maximum, as numpy's argmax
    const auto it = options.class_weight.find(static_cast<int>(label));
    weights(i) = static_cast<Scalar>(it == options.class_weight.end() ? 1.0 : it->second);
  }
  return weights;
}

/// What fit trains and validates on: views of the caller's rows (no copy)
/// and their sample weights.
template <class Scalar>
struct FitData {
  /// validation_split holds out the last rows, before any shuffling (Keras);
  /// they keep their sample_weight (class_weight weighs training rows only).
  FitData(ConstMatrixRef<Scalar> x_all, ConstMatrixRef<Scalar> y_all, const FitOptions<Scalar>& options)
      : samples(validation_split_point(x_all.rows(), options.validation_split)),
        x(x_all.topRows(samples)),
        y(y_all.topRows(samples)),
        weights(fit_sample_weights(y_all, options)) {
    if (const auto& v = options.validation_data) {
      x_val.emplace(v->x);
      y_val.emplace(v->y);
      if (v->sample_weight) val_weights = v->sample_weight;
    } else if (samples < x_all.rows()) {
      x_val.emplace(x_all.bottomRows(x_all.rows() - samples));
      y_val.emplace(y_all.bottomRows(x_all.rows() - samples));
      if (options.sample_weight) val_weights = options.sample_weight->tail(x_all.rows() - samples);
    }
  }
  Index samples;                                        // training rows
  ConstMatrixRef<Scalar> x, y;                          // the training rows
  std::optional<Vector<Scalar>> weights;                // per row of x (training rows first)
  std::optional<ConstMatrixRef<Scalar>> x_val, y_val;   // validation rows, if any
  std::optional<Vector<Scalar>> val_weights;            // per validation row
};

}  // namespace detail

template <class Scalar>
Scalar Sequential<Scalar>::forward_loss(const Matrix<Scalar>& x, const Matrix<Scalar>& y,
                                        const Vector<Scalar>* sample_weight, Layers layers) {
  // Forward, training phase; forward_layers first asks every layer to accept the
  // batch, so that a rejected one changes nothing (no Dropout generator, no
  // moving statistics).
  const Matrix<Scalar>& y_pred = forward_layers(x, [](std::size_t) { return Phase::training; }, layers);
  // The loss and its gradient, before any update: this is what fit reports,
  // with the regularizers' penalties (Keras's loss + sum(model.losses)).
  loss_grad_.resize(y_pred.rows(), y_pred.cols());
  const Scalar loss = loss_->value(y_pred, y, &loss_grad_, sample_weight);
  if (!shard_) return loss + penalties_.total(layers_, parameters_);
  // A replica of a data-parallel fit computes its rows' part of the global batch's loss and gradient (the parts
  // add up to them); the weight penalties are added once, to the sum (model/replicated_fit.hpp).
  const auto part = static_cast<Scalar>(static_cast<double>(y_pred.rows()) / static_cast<double>(shard_->global_rows));
  loss_grad_ *= part;
  return (loss + penalties_.activity(layers_)) * part;
}

template <class Scalar>
void Sequential<Scalar>::backward(const Matrix<Scalar>& x, std::size_t first) {
  // Backward down to the lowest layer that has trainable parameters: below it
  // nothing would use the gradient (a frozen base costs no backward pass).
  // Layers before `first` (a cached prefix) train nothing.
  std::size_t lowest = layers_.size();
  for (std::size_t i = first; i < layers_.size(); ++i)
    if (!layers_[i]->frozen() && !parameters_[i].empty()) {
      lowest = i;
      break;
    }
  const Matrix<Scalar>* grad = &loss_grad_;
  for (std::size_t i = layers_.size(); i-- > lowest;) {
    const Matrix<Scalar>& input = i == first ? x : layers_[i - 1]->output();
    const Index rows = shard_ ? shard_->global_rows : grad->rows();  // what an activity penalty is divided by
    grad = &layers_[i]->backward(input, penalties_.output_gradient(i, *layers_[i], *grad, rows),
                                 /*need_input_grad=*/i > lowest);
  }
}

template <class Scalar>
void Sequential<Scalar>::apply_update() {
  penalties_.add_weight_gradients(layers_, parameters_);

  // Update: frozen layers are skipped, so their weights stay bitwise unchanged.
  optimizer_->begin_step();
  const auto for_each_trainable = [&](const auto& visit) {
    std::size_t slot = 0;
    for (std::size_t i = 0; i < layers_.size(); ++i)
      for (const auto& p : parameters_[i]) {
        if (!layers_[i]->frozen()) visit(slot, p, Eigen::Map<const Vector<Scalar>>(p.grad, p.size));
        ++slot;
      }
  };
  // global_clipnorm scales every gradient by the norm of all of them: that norm comes first.
  if (optimizer_->needs_global_norm())
    for_each_trainable([&](std::size_t, const auto&, const auto& grad) { optimizer_->add_to_global_norm(grad); });
  for_each_trainable([&](std::size_t slot, const auto& p, const auto& grad) {
    optimizer_->update(slot, p.values(), grad, p.name);  // the name, for exclude_from_weight_decay
  });
}

template <class Scalar>
void Sequential<Scalar>::check_fit_options(const FitOptions<Scalar>& options) const {
  check_batch_size("fit", options.batch_size);
  if (options.epochs < 0)
    throw ValueError(detail::message("Sequential::fit: epochs must be >= 0, got ", options.epochs));
  if (options.verbose < 0 || options.verbose > 2)
    throw ValueError(detail::message("Sequential::fit: verbose must be 0, 1 or 2, got ", options.verbose));
  if (options.verbose > 0 && options.out == nullptr)
    throw ValueError("Sequential::fit: out must not be null when verbose > 0");
  if (const auto& v = options.validation_data)
    check_data("fit (validation_data)", v->x, v->y, v->sample_weight ? &*v->sample_weight : nullptr);
  if (options.validation_data && options.validation_split != 0)
    throw ValueError(detail::message("Sequential::fit: validation_split = ", options.validation_split,
                                     " and validation_data both given; choose one (Keras would ignore the split)"));
  if (options.validation_batch_size) check_batch_size("fit (validation_batch_size)", *options.validation_batch_size);
  options.validation_freq.check("Sequential::fit");
  for (std::size_t i = 0; i < options.callbacks.size(); ++i)
    if (!options.callbacks[i]) throw ValueError(detail::message("Sequential::fit: callbacks[", i, "] is null"));
}

template <class Scalar>
std::vector<std::string> Sequential<Scalar>::log_names(bool validation) const {
  std::vector<std::string> names{"loss"};
  for (Metric m : metrics_) names.emplace_back(metric_name(m));
  if (validation) {
    const std::size_t training = names.size();
    for (std::size_t i = 0; i < training; ++i) names.push_back("val_" + names[i]);
  }
  return names;
}

template <class Scalar>
History Sequential<Scalar>::fit(ConstMatrixRef<Scalar> x, ConstMatrixRef<Scalar> y, const FitOptions<Scalar>& options) {
  if (!options.replicas) return fit_on(x, y, options, nullptr);
  // An error on any replica ends the fit on every replica with the same DistributedError, never a hang.
  detail::ReplicaFit<Scalar> replicas(*options.replicas);
  return replicas.guard("Sequential::fit", [&] { return fit_on(x, y, options, &replicas); });
}

template <class Scalar>
History Sequential<Scalar>::fit_on(ConstMatrixRef<Scalar> x, ConstMatrixRef<Scalar> y,
                                   const FitOptions<Scalar>& options, detail::ReplicaFit<Scalar>* replicas) {
  check_compiled("fit");
  check_data("fit", x, y, options.sample_weight ? &*options.sample_weight : nullptr);
  check_fit_options(options);
  const detail::FitData<Scalar> data(x, y, options);
  const Index samples = data.samples;
  const auto& x_val = data.x_val;
  const auto& y_val = data.y_val;
  const Index val_batch_size = options.validation_batch_size.value_or(options.batch_size);
  // Every batch size this fit will use, against every layer, before the
  // first step: a batch some layer rejects (a last batch of one sample for
  // a pytorch-convention BatchNorm) fails the fit before anything trains.
  // A data-parallel fit's layers see its replica's shares of the batches.
  const auto training = [](std::size_t) { return Phase::training; };
  if (replicas) replicas->check_batch_sizes(*this, samples, options.batch_size);
  else check_batch_sizes(samples, options.batch_size, training);
  if (x_val) check_batch_sizes(x_val->rows(), val_batch_size, inference);
  const TrainingGuard guard(*this, "fit");
  if (replicas) replicas->agree();  // every replica's checks passed: nothing has changed on any

  const Index steps = samples / options.batch_size + (samples % options.batch_size != 0);  // no overflow
  FitState state = detail::initial_fit_state(options, samples);  // what a resumed fit restores (callback.hpp)
  const bool main = !replicas || replicas->main();  // only a data-parallel fit's replica 0 prints
  ProgressBar progress(options.out ? *options.out : std::cout, main ? options.verbose : 0,
                       options.live_progress.value_or(options.out && is_terminal(*options.out)));
  Logs logs;
  detail::RunningMeans<Scalar> means;

  stop_training = false;
  const std::vector<std::string> names = log_names(x_val.has_value());
  for (auto& cb : options.callbacks) cb->set_main_replica(main);
  for (auto& cb : options.callbacks) cb->on_train_restore(*this, state);  // BackupAndRestore's resume point
  state.history.set_params({options.epochs, steps, options.batch_size, samples, options.verbose});
  for (auto& cb : options.callbacks) cb->on_train_begin(*this, names);
  // Every replica now starts from replica 0's weights, and the same data, state and options (checked).
  if (replicas) replicas->begin(*this, data, state, options);
  // After the callbacks that may restore or set weights: the prefix's outputs as they will train.
  detail::PrefixOutputs<Scalar> cache;
  cache.quiet = !main;
  cache_prefix(cache, data.x, x_val ? &*x_val : nullptr, options, val_batch_size);
  for (int epoch = state.epoch; epoch < options.epochs && !stop_training; ++epoch) {
    for (auto& cb : options.callbacks) cb->on_epoch_begin(*this, epoch);
    if (replicas) replicas->agree();
    logs.clear();  // this epoch's values only: no val_* of the last epoch in its batches' logs
    if (options.shuffle)  // Fisher–Yates with the seeded generator
      for (std::size_t i = state.order.size(); i > 1; --i)
        std::swap(state.order[i - 1], state.order[state.shuffle_rng.below(i)]);
    progress.begin_epoch(epoch, options.epochs, steps);

    means.reset(metrics_.size());
    for (Index step = 0; step < steps; ++step) {
      const Index begin = step * options.batch_size;
      const Index n = std::min(options.batch_size, samples - begin);
      // The rows of the batch this process computes: all of them, or its replica's share.
      const auto [first, last] = replicas ? replicas->shard(n) : std::pair<Index, Index>{0, n};
      check_prefix_cache(cache, options);  // a callback may have unfrozen a cached layer
      const ConstMatrixRef<Scalar> rows = cache.layers ? ConstMatrixRef<Scalar>(cache.train) : data.x;
      batch_x_.resize(last - first, rows.cols());
      batch_y_.resize(last - first, y.cols());
      if (data.weights) batch_w_.resize(last - first);
      for (Index r = first; r < last; ++r) {
        const Index sample = state.order[static_cast<std::size_t>(begin + r)];
        batch_x_.row(r - first) = rows.row(sample);
        batch_y_.row(r - first) = data.y.row(sample);
        if (data.weights) batch_w_(r - first) = (*data.weights)(sample);
      }
      const Vector<Scalar>* batch_w = data.weights ? &batch_w_ : nullptr;
      Scalar batch_loss = forward_loss(batch_x_, batch_y_, batch_w, {cache.layers});
      // A replica computes its gradient first and adds it up with the others' (which needs every replica).
      if (replicas) {
        backward(batch_x_, cache.layers);
        batch_loss = replicas->reduce_step(*this, batch_loss, batch_w, means);
      }
      // Callbacks may veto the update (TerminateOnNaN on a non-finite loss).
      bool update = true;
      for (auto& cb : options.callbacks) update = cb->on_batch_loss(*this, epoch, step, batch_loss) && update;
      if (update) {
        if (!replicas) backward(batch_x_, cache.layers);
        apply_update();
      }
      // Metrics on the same pre-update training-phase outputs as the loss (a replica's were added up already).
      if (!replicas) means.add(batch_loss, metrics_, layers_.back()->output(), batch_y_, batch_w);
      logs.set("loss", means.loss());
      for (std::size_t m = 0; m < metrics_.size(); ++m) logs.set(metric_name(metrics_[m]), means.metric(m));
      progress.update(step + 1, logs);
      for (auto& cb : options.callbacks) cb->on_batch_end(*this, step, logs);
      if (replicas) stop_training = replicas->agree(stop_training);  // one replica's stop stops all
      if (stop_training) break;  // Keras 3: the epoch ends here, its bookkeeping below still runs
    }

    // Validation after the epoch's last update, in the inference phase: the
    // same computation as evaluate(), hence the same value.
    if (x_val && options.validation_freq.validates(epoch)) {
      check_prefix_cache(cache, options);
      const Logs val = evaluate_logs(cache.layers ? ConstMatrixRef<Scalar>(cache.validation) : *x_val, *y_val,
                                     data.val_weights ? &*data.val_weights : nullptr, val_batch_size, "val_",
                                     {cache.layers}, replicas);
      for (const auto& [name, value] : val.entries()) logs.set(name, value);
    }
    for (auto& cb : options.callbacks) cb->on_epoch_logs(*this, epoch, logs);
    state.history.append(logs);
    progress.end_epoch(logs);
    for (auto& cb : options.callbacks) cb->on_epoch_end(*this, epoch, logs);
    state.epoch = epoch + 1;  // where a fit resumed from here starts
    for (auto& cb : options.callbacks) cb->on_epoch_state(*this, state);
    if (replicas) stop_training = replicas->end_epoch(*this, stop_training);
  }
  for (auto& cb : options.callbacks) cb->on_train_end(*this, logs);
  if (replicas) replicas->agree();  // a replica whose on_train_end failed fails them all
  return state.history;
}

template <class Scalar>
Scalar Sequential<Scalar>::checked_train_step(ConstMatrixRef<Scalar> x, ConstMatrixRef<Scalar> y,
                                              const Vector<Scalar>* sample_weight) {
  check_compiled("train_on_batch");
  check_data("train_on_batch", x, y, sample_weight);
  const TrainingGuard guard(*this, "train_on_batch");
  batch_x_ = x;  // the layers take a Matrix; a Ref may point to a block of one
  batch_y_ = y;
  const Scalar loss = forward_loss(batch_x_, batch_y_, sample_weight);
  backward(batch_x_);
  apply_update();
  return loss;
}

template <class Scalar>
Scalar Sequential<Scalar>::train_on_batch(ConstMatrixRef<Scalar> x, ConstMatrixRef<Scalar> y) {
  return checked_train_step(x, y, nullptr);
}

template <class Scalar>
Scalar Sequential<Scalar>::train_on_batch(ConstMatrixRef<Scalar> x, ConstMatrixRef<Scalar> y,
                                          const Vector<Scalar>& sample_weight) {
  return checked_train_step(x, y, &sample_weight);
}

}  // namespace minidl
