// minidl — ReduceLROnPlateau: multiply the learning rate by `factor` when a
// monitored value has stopped improving, as keras.callbacks.ReduceLROnPlateau.
//
// At each epoch end (Keras 3's rule, step by step):
//   if in cooldown (cooldown_counter > 0): cooldown_counter -= 1, wait = 0;
//   if current improves on best (min: current < best - |min_delta|,
//                                max: current > best + |min_delta|): best = current, wait = 0;
//   else, unless still in cooldown: wait += 1, and once wait >= patience:
//     if lr > min_lr:  lr = max(lr * factor, min_lr), cooldown_counter = cooldown, wait = 0
//     (at min_lr already, nothing changes and wait keeps counting).
// best starts at +inf (min) or -inf (max) and, like the counters, is reset
// when fit starts. As Keras 3, the epoch's logs get "learning_rate": the rate
// the epoch trained with, before any reduction. Mode `automatic` is Keras's
// rule for this callback: "max" if the name contains "acc", else "min".
// Differences from Keras: a monitor that fit does not report is a ValueError
// when fit starts (Keras warns and never reduces); factor must be in (0, 1)
// (Keras only rejects >= 1; 0 would make the learning rate 0, which minidl's
// optimizers reject).
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include "../sequential.hpp"
#include "callback.hpp"
#include "monitor.hpp"

namespace minidl {

struct ReduceLROnPlateauOptions {
  std::string monitor = "val_loss";  ///< a name in fit's logs
  double factor = 0.1;               ///< new lr = lr * factor, in (0, 1)
  int patience = 10;                 ///< epochs without improvement before a reduction, >= 0
  MonitorMode mode = MonitorMode::automatic;
  double min_delta = 1e-4;           ///< an improvement must beat the best by more than |min_delta|
  int cooldown = 0;                  ///< epochs after a reduction during which wait stays 0, >= 0
  double min_lr = 0;                 ///< the learning rate never goes below this, >= 0
  std::ostream* out = nullptr;       ///< Keras's verbose=1 message goes here; null: silent
};

template <class Scalar>
class ReduceLROnPlateau : public Callback<Scalar> {
 public:
  explicit ReduceLROnPlateau(ReduceLROnPlateauOptions options = {}) : options_(std::move(options)) {
    const auto& o = options_;
    if (!(o.factor > 0 && o.factor < 1))
      throw ValueError(detail::message("ReduceLROnPlateau: factor must be in (0, 1), got ", o.factor));
    if (o.patience < 0) throw ValueError(detail::message("ReduceLROnPlateau: patience must be >= 0, got ", o.patience));
    if (o.cooldown < 0) throw ValueError(detail::message("ReduceLROnPlateau: cooldown must be >= 0, got ", o.cooldown));
    if (!(o.min_lr >= 0) || !std::isfinite(o.min_lr))
      throw ValueError(detail::message("ReduceLROnPlateau: min_lr must be finite and >= 0, got ", o.min_lr));
    if (!std::isfinite(o.min_delta))
      throw ValueError(detail::message("ReduceLROnPlateau: min_delta must be finite, got ", o.min_delta));
    maximize_ = o.mode == MonitorMode::max ||
                (o.mode == MonitorMode::automatic && o.monitor.find("acc") != std::string::npos);
    reset();
  }

  void on_train_begin(Sequential<Scalar>& model, const std::vector<std::string>& log_names) override {
    detail::check_monitored("ReduceLROnPlateau", options_.monitor, log_names);
    // Refused now, not at the first reduction epochs later (Keras fails then).
    if (const auto* schedule = model.optimizer().learning_rate_schedule())
      throw StateError(detail::message("ReduceLROnPlateau: the optimizer's learning rate follows the schedule ",
                                       schedule->name(), ", which it cannot reduce; give the optimizer a number ",
                                       "as its learning rate"));
    reset();
  }

  void on_epoch_logs(Sequential<Scalar>& model, int /*epoch*/, Logs& logs) override {
    logs.set("learning_rate", static_cast<double>(model.optimizer().learning_rate()));
  }

  void on_epoch_end(Sequential<Scalar>& model, int epoch, const Logs& logs) override {
    // An epoch that did not validate (fit's validation_freq) has no val_*: as
    // in Keras, it changes nothing, not even the cooldown.
    if (!logs.contains(options_.monitor)) return;
    const double current = logs[options_.monitor];
    if (in_cooldown()) {
      --cooldown_counter_;
      wait_ = 0;
    }
    const double delta = std::abs(options_.min_delta);  // Keras 3 takes abs(min_delta) too
    if (maximize_ ? current > best_ + delta : current < best_ - delta) {
      best_ = current;
      wait_ = 0;
    } else if (!in_cooldown()) {
      ++wait_;
      if (wait_ >= options_.patience) {
        const Scalar old_lr = model.optimizer().learning_rate();
        // Keras compares with min_lr in the optimizer's precision (float32 there).
        if (old_lr > static_cast<Scalar>(options_.min_lr)) {
          const auto new_lr = static_cast<Scalar>(std::max(static_cast<double>(old_lr) * options_.factor, options_.min_lr));
          if (new_lr > 0) model.optimizer().set_learning_rate(new_lr);  // 0 only if lr*factor underflows
          if (options_.out)
            *options_.out << "\nEpoch " << epoch + 1 << ": ReduceLROnPlateau reducing learning rate to " << new_lr
                          << ".\n";
          cooldown_counter_ = options_.cooldown;
          wait_ = 0;
        }
      }
    }
  }

  const ReduceLROnPlateauOptions& options() const { return options_; }
  int wait() const { return wait_; }
  int cooldown_counter() const { return cooldown_counter_; }
  bool in_cooldown() const { return cooldown_counter_ > 0; }
  double best() const { return best_; }

 private:
  void reset() {
    best_ = maximize_ ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
    cooldown_counter_ = 0;
    wait_ = 0;
  }

  ReduceLROnPlateauOptions options_;
  bool maximize_ = false;
  double best_ = 0;
  int cooldown_counter_ = 0;
  int wait_ = 0;
};

}  // namespace minidl
