// minidl — Sequential's training loop: fit, the training step it shares with
// train_on_batch, and evaluation (the class and its contracts are in
// sequential.hpp, which includes this file at its end).
//
// fit, per epoch: shuffle the sample order (seeded), then for each batch
// gather its rows, run the training-phase forward and the loss (the value
// fit reports, before the update), let the callbacks veto the update, run
// backward and the update; after the last batch, validate in the inference
// phase, exactly as evaluate() would.
#pragma once

#include <algorithm>
#include <numeric>

#include "../sequential.hpp"

namespace minidl {

template <class Scalar>
Scalar Sequential<Scalar>::forward_loss(const Matrix<Scalar>& x, const Matrix<Scalar>& y) {
  // Forward, training phase; forward_all first asks every layer to accept the
  // batch, so that a rejected one changes nothing (no Dropout generator, no
  // moving statistics).
  const Matrix<Scalar>& y_pred = forward_all(x, [](std::size_t) { return Phase::training; });
  // The loss and its gradient, before any update: this is what fit reports.
  loss_grad_.resize(y_pred.rows(), y_pred.cols());
  return loss_->value(y_pred, y, &loss_grad_);
}

template <class Scalar>
void Sequential<Scalar>::backward_update(const Matrix<Scalar>& x) {
  // Backward down to the lowest layer that has trainable parameters: below it
  // nothing would use the gradient (a frozen base costs no backward pass).
  std::size_t lowest = layers_.size();
  for (std::size_t i = 0; i < layers_.size(); ++i)
    if (!layers_[i]->frozen() && !parameters_[i].empty()) {
      lowest = i;
      break;
    }
  const Matrix<Scalar>* grad = &loss_grad_;
  for (std::size_t i = layers_.size(); i-- > lowest;) {
    const Matrix<Scalar>& input = i == 0 ? x : layers_[i - 1]->output();
    grad = &layers_[i]->backward(input, *grad, /*need_input_grad=*/i > lowest);
  }

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
Logs Sequential<Scalar>::evaluate_logs(ConstMatrixRef<Scalar> x, ConstMatrixRef<Scalar> y, Index batch_size,
                                       const char* prefix) {
  double loss_sum = 0;
  std::vector<double> metric_sums(metrics_.size(), 0.0);
  for_each_batch(x, &y, batch_size, inference,
                 [&](Index, Index n, const Matrix<Scalar>& out, const Matrix<Scalar>& y_batch) {
                   const auto weight = static_cast<double>(n);
                   loss_sum += static_cast<double>(loss_->value(out, y_batch, nullptr)) * weight;
                   for (std::size_t m = 0; m < metrics_.size(); ++m)
                     metric_sums[m] += static_cast<double>(metric_value(metrics_[m], out, y_batch)) * weight;
                 });
  // Round the means to Scalar, as the reported values are Scalars.
  const auto mean = [&](double sum) { return static_cast<double>(static_cast<Scalar>(sum / x.rows())); };
  Logs logs;
  logs.set(std::string(prefix) + "loss", mean(loss_sum));
  for (std::size_t m = 0; m < metrics_.size(); ++m)
    logs.set(std::string(prefix) + metric_name(metrics_[m]), mean(metric_sums[m]));
  return logs;
}

template <class Scalar>
void Sequential<Scalar>::check_fit_options(const FitOptions<Scalar>& options) const {
  check_batch_size("fit", options.batch_size);
  if (options.epochs < 0) throw ValueError(detail::message("Sequential::fit: epochs must be >= 0, got ", options.epochs));
  if (options.verbose < 0 || options.verbose > 2)
    throw ValueError(detail::message("Sequential::fit: verbose must be 0, 1 or 2, got ", options.verbose));
  if (options.verbose > 0 && options.out == nullptr)
    throw ValueError("Sequential::fit: out must not be null when verbose > 0");
  if (options.validation_data) check_data("fit (validation_data)", options.validation_data->x, options.validation_data->y);
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
  check_compiled("fit");
  check_data("fit", x, y);
  check_fit_options(options);
  // Every batch size this fit will use, against every layer, before the
  // first step: a batch some layer rejects (a last batch of one sample for
  // a pytorch-convention BatchNorm) fails the fit before anything trains.
  check_batch_sizes(x.rows(), options.batch_size, [](std::size_t) { return Phase::training; });
  if (options.validation_data)
    check_batch_sizes(options.validation_data->x.rows(), options.batch_size,
                      inference);
  const TrainingGuard guard(*this, "fit");

  const Index samples = x.rows();
  const Index steps = samples / options.batch_size + (samples % options.batch_size != 0);  // no overflow
  order_.resize(static_cast<std::size_t>(samples));
  std::iota(order_.begin(), order_.end(), Index{0});
  Rng shuffle_rng(options.seed);
  ProgressBar progress(options.out ? *options.out : std::cout, options.verbose,
                       options.live_progress.value_or(options.out && is_terminal(*options.out)));
  History history;
  history.set_params({options.epochs, steps, options.batch_size, samples, options.verbose});
  Logs logs;
  std::vector<double> metric_sums(metrics_.size());

  stop_training = false;
  const std::vector<std::string> names = log_names(options.validation_data.has_value());
  for (auto& cb : options.callbacks) cb->on_train_begin(*this, names);
  for (int epoch = 0; epoch < options.epochs && !stop_training; ++epoch) {
    for (auto& cb : options.callbacks) cb->on_epoch_begin(*this, epoch);
    logs.clear();  // this epoch's values only: no val_* of the last epoch in its batches' logs
    if (options.shuffle)  // Fisher–Yates with the seeded generator
      for (std::size_t i = order_.size(); i > 1; --i)
        std::swap(order_[i - 1], order_[shuffle_rng.below(i)]);
    progress.begin_epoch(epoch, options.epochs, steps);

    double loss_sum = 0;
    std::fill(metric_sums.begin(), metric_sums.end(), 0.0);
    Index seen = 0;
    for (Index step = 0; step < steps; ++step) {
      const Index begin = step * options.batch_size;
      const Index n = std::min(options.batch_size, samples - begin);
      batch_x_.resize(n, x.cols());
      batch_y_.resize(n, y.cols());
      for (Index r = 0; r < n; ++r) {
        const Index sample = order_[static_cast<std::size_t>(begin + r)];
        batch_x_.row(r) = x.row(sample);
        batch_y_.row(r) = y.row(sample);
      }
      const Scalar batch_loss = forward_loss(batch_x_, batch_y_);
      // Callbacks may veto the update (TerminateOnNaN on a non-finite loss).
      bool update = true;
      for (auto& cb : options.callbacks) update = cb->on_batch_loss(*this, epoch, step, batch_loss) && update;
      if (update) backward_update(batch_x_);
      // Metrics on the same pre-update training-phase outputs as the loss.
      const Matrix<Scalar>& y_pred = layers_.back()->output();
      seen += n;
      loss_sum += static_cast<double>(batch_loss) * static_cast<double>(n);
      logs.set("loss", loss_sum / static_cast<double>(seen));
      for (std::size_t m = 0; m < metrics_.size(); ++m) {
        metric_sums[m] += static_cast<double>(metric_value(metrics_[m], y_pred, batch_y_)) * static_cast<double>(n);
        logs.set(metric_name(metrics_[m]), metric_sums[m] / static_cast<double>(seen));
      }
      progress.update(step + 1, logs);
      for (auto& cb : options.callbacks) cb->on_batch_end(*this, step, logs);
      if (stop_training) break;  // Keras 3: the epoch ends here, its bookkeeping below still runs
    }

    // Validation after the epoch's last update, in the inference phase: the
    // same computation as evaluate(), hence the same value.
    if (options.validation_data) {
      const Logs val = evaluate_logs(options.validation_data->x, options.validation_data->y, options.batch_size, "val_");
      for (const auto& [name, value] : val.entries()) logs.set(name, value);
    }
    for (auto& cb : options.callbacks) cb->on_epoch_logs(*this, epoch, logs);
    history.append(logs);
    progress.end_epoch(logs);
    for (auto& cb : options.callbacks) cb->on_epoch_end(*this, epoch, logs);
  }
  for (auto& cb : options.callbacks) cb->on_train_end(*this, logs);
  return history;
}

template <class Scalar>
Scalar Sequential<Scalar>::evaluate(ConstMatrixRef<Scalar> x, ConstMatrixRef<Scalar> y, Index batch_size) {
  check_compiled("evaluate");
  check_data("evaluate", x, y);
  check_batch_size("evaluate", batch_size);
  return static_cast<Scalar>(evaluate_logs(x, y, batch_size, "")["loss"]);
}

template <class Scalar>
Logs Sequential<Scalar>::evaluate_all(ConstMatrixRef<Scalar> x, ConstMatrixRef<Scalar> y, Index batch_size) {
  check_compiled("evaluate_all");
  check_data("evaluate_all", x, y);
  check_batch_size("evaluate_all", batch_size);
  return evaluate_logs(x, y, batch_size, "");
}

template <class Scalar>
Matrix<Scalar> Sequential<Scalar>::predict(ConstMatrixRef<Scalar> x, Index batch_size) {
  check_input_data("predict", x);
  check_batch_size("predict", batch_size);
  Matrix<Scalar> out(x.rows(), output_shape().size());
  predict_batches(x, out, batch_size);
  return out;
}

template <class Scalar>
void Sequential<Scalar>::predict(ConstMatrixRef<Scalar> x, Matrix<Scalar>& out, Index batch_size) {
  check_input_data("predict", x);
  check_batch_size("predict", batch_size);
  if (out.rows() != x.rows() || out.cols() != output_shape().size())
    throw ShapeError(detail::message("Sequential::predict: out is ", out.rows(), " x ", out.cols(), ", expected ",
                                     x.rows(), " x ", output_shape().size(),
                                     " (a row per row of x, a column per output)"));
  predict_batches(x, out, batch_size);
}

template <class Scalar>
Scalar Sequential<Scalar>::train_on_batch(ConstMatrixRef<Scalar> x, ConstMatrixRef<Scalar> y) {
  check_compiled("train_on_batch");
  check_data("train_on_batch", x, y);
  const TrainingGuard guard(*this, "train_on_batch");
  batch_x_ = x;  // the layers take a Matrix; a Ref may point to a block of one
  batch_y_ = y;
  const Scalar loss = forward_loss(batch_x_, batch_y_);
  backward_update(batch_x_);
  return loss;
}

template <class Scalar>
Scalar Sequential<Scalar>::test_on_batch(ConstMatrixRef<Scalar> x, ConstMatrixRef<Scalar> y) {
  check_compiled("test_on_batch");
  check_data("test_on_batch", x, y);
  return static_cast<Scalar>(evaluate_logs(x, y, x.rows(), "")["loss"]);
}

template <class Scalar>
Scalar Sequential<Scalar>::loss_in_phases(ConstMatrixRef<Scalar> x, ConstMatrixRef<Scalar> y, const std::vector<Phase>& phases, Index batch_size) {
  check_compiled("loss_in_phases");
  check_not_training("loss_in_phases");
  check_data("loss_in_phases", x, y);
  check_batch_size("loss_in_phases", batch_size);
  if (phases.size() != size())
    throw ShapeError(detail::message("Sequential::loss_in_phases: phases has ", phases.size(),
                                     " entries, expected one per layer (", size(), ")"));
  // Training-phase layers change (statistics, generators) batch by batch:
  // every batch size is checked against every layer before the first runs.
  check_batch_sizes(x.rows(), batch_size, [&](std::size_t i) { return phases[i]; });
  double sum = 0;
  for_each_batch(x, &y, batch_size, [&](std::size_t i) { return phases[i]; },
                 [&](Index, Index n, const Matrix<Scalar>& out, const Matrix<Scalar>& y_batch) {
                   sum += static_cast<double>(loss_->value(out, y_batch, nullptr)) * static_cast<double>(n);
                 });
  return static_cast<Scalar>(sum / static_cast<double>(x.rows()));
}

}  // namespace minidl
