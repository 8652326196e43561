// minidl — EarlyStopping: stop fit when a monitored value has stopped
// improving, as keras.callbacks.EarlyStopping (Keras 3).
//
//   EarlyStoppingOptions options;  options.patience = 3;  options.restore_best_weights = true;
//   fit_options.callbacks.push_back(std::make_shared<EarlyStopping<float>>(options));
//
// At each epoch end from `start_from_epoch` on (Keras 3's rule, step by step):
//   wait += 1;
//   improvement = (no best yet) or current ∓ |min_delta| beats best  (min: current + |min_delta| < best,
//                                                                     max: current - |min_delta| > best);
//   on improvement: best = current, remember the epoch (and a copy of the weights),
//                   wait = 0 only if current also improves on `baseline` (when set);
//   otherwise, if wait >= patience and epoch > 0: model.stop_training = true.
// restore_best_weights: at the end of fit — whether it stopped early or ran
// every epoch — the weights of the best epoch are set back (Keras 3 restores
// in on_train_end; tf.keras 2.x restored only when it stopped). "Weights"
// are get_weights(): parameters and moving statistics; the optimizer's state
// is not restored (nor is it in Keras).
// Differences from Keras: a monitor that fit does not report is a ValueError
// when fit starts (Keras warns and never stops); mode `automatic` is resolved
// when the callback is made (loss/mae: min, accuracy: max, anything else:
// ValueError — as Keras, which cannot tell either).
#pragma once

#include <cmath>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "../metrics.hpp"
#include "../sequential.hpp"
#include "callback.hpp"
#include "monitor.hpp"

namespace minidl {

struct EarlyStoppingOptions {
  std::string monitor = "val_loss";        ///< a name in fit's logs
  double min_delta = 0;                    ///< an improvement must beat the best by more than |min_delta|
  int patience = 0;                        ///< epochs without improvement before stopping, >= 0
  MonitorMode mode = MonitorMode::automatic;
  std::optional<double> baseline{};        ///< wait is reset only by values that also improve on it
  bool restore_best_weights = false;       ///< set the best epoch's weights back at the end of fit
  int start_from_epoch = 0;                ///< epochs before this one are not monitored (warm-up), >= 0
  std::ostream* out = nullptr;             ///< Keras's verbose=1 messages go here; null: silent
};

template <class Scalar>
class EarlyStopping : public Callback<Scalar> {
 public:
  explicit EarlyStopping(EarlyStoppingOptions options = {}) : options_(std::move(options)) {
    if (options_.patience < 0)
      throw ValueError(detail::message("EarlyStopping: patience must be >= 0, got ", options_.patience));
    if (options_.start_from_epoch < 0)
      throw ValueError(
          detail::message("EarlyStopping: start_from_epoch must be >= 0, got ", options_.start_from_epoch));
    if (!std::isfinite(options_.min_delta))
      throw ValueError(detail::message("EarlyStopping: min_delta must be finite, got ", options_.min_delta));
    minimize_ = resolve_minimize(options_.monitor, options_.mode);
  }

  void on_train_begin(Sequential<Scalar>& model, const std::vector<std::string>& log_names) override {
    (void)model;
    detail::check_monitored("EarlyStopping", options_.monitor, log_names);
    // Reset, so one instance can serve several fits (as Keras 3).
    wait_ = 0;
    stopped_epoch_ = 0;
    best_.reset();
    best_epoch_ = 0;
    best_weights_.clear();
    has_best_weights_ = false;
  }

  void on_epoch_end(Sequential<Scalar>& model, int epoch, const Logs& logs) override {
    // An epoch that did not validate (fit's validation_freq) has no val_*:
    // it is skipped, as Keras skips an epoch without the monitored value.
    if (epoch < options_.start_from_epoch || !logs.contains(options_.monitor)) return;
    const double current = logs[options_.monitor];
    if (options_.restore_best_weights && !has_best_weights_) remember(model, epoch);  // the first are the best so far
    ++wait_;
    if (improves(current, best_)) {
      best_ = current;
      best_epoch_ = epoch;
      if (options_.restore_best_weights) remember(model, epoch);
      if (improves(current, options_.baseline)) wait_ = 0;
      return;
    }
    if (wait_ >= options_.patience && epoch > 0) {
      stopped_epoch_ = epoch;
      model.stop_training = true;
    }
  }

  void on_train_end(Sequential<Scalar>& model, const Logs& logs) override {
    (void)logs;
    if (options_.out && stopped_epoch_ > 0) *options_.out << "Epoch " << stopped_epoch_ + 1 << ": early stopping\n";
    if (options_.restore_best_weights && has_best_weights_) {
      if (options_.out)
        *options_.out << "Restoring model weights from the end of the best epoch: " << best_epoch_ + 1 << ".\n";
      model.set_weights(best_weights_);
    }
  }

  const EarlyStoppingOptions& options() const { return options_; }
  /// Epochs since the last improvement that reset the count (Keras's `wait`).
  int wait() const { return wait_; }
  /// The epoch (0-based) at which training was stopped; 0 if it was not (as Keras).
  int stopped_epoch() const { return stopped_epoch_; }
  /// The best monitored value so far; empty before the first monitored epoch.
  std::optional<double> best() const { return best_; }
  /// The epoch (0-based) of best(), whose weights restore_best_weights sets back.
  int best_epoch() const { return best_epoch_; }
  bool minimizes() const { return minimize_; }

 private:
  // Keras's auto mode: "loss" and "val_loss" go down; a metric goes the way its
  // definition says (accuracy up, mae down); otherwise the caller must say.
  static bool resolve_minimize(const std::string& monitor, MonitorMode mode) {
    if (mode != MonitorMode::automatic) return mode == MonitorMode::min;
    const std::string name = monitor.rfind("val_", 0) == 0 ? monitor.substr(4) : monitor;
    if (name == "loss" || builtin_metric_direction(name) == MetricDirection::down) return true;
    if (builtin_metric_direction(name) == MetricDirection::up) return false;
    throw ValueError(detail::message("EarlyStopping: cannot tell whether monitor '", monitor,
                                     "' should be minimized or maximized; set mode to MonitorMode::min or max"));
  }

  bool improves(double value, const std::optional<double>& reference) const {
    if (!reference) return true;
    const double delta = std::abs(options_.min_delta);
    return minimize_ ? value + delta < *reference : value - delta > *reference;
  }

  void remember(Sequential<Scalar>& model, int epoch) {
    best_weights_ = model.get_weights();
    best_epoch_ = epoch;
    has_best_weights_ = true;
  }

  EarlyStoppingOptions options_;
  bool minimize_ = true;
  int wait_ = 0;
  int stopped_epoch_ = 0;
  std::optional<double> best_;
  int best_epoch_ = 0;
  std::vector<Vector<Scalar>> best_weights_;
  bool has_best_weights_ = false;
};

}  // namespace minidl
