// minidl — callbacks: hooks that fit calls at the start and end of epochs and
// after each batch, as Keras callbacks. A callback may inspect or evaluate the
// model: evaluate/predict run in the inference phase and have no side effects,
// so they do not change the training run.
#pragma once

#include <functional>
#include <utility>

#include "history.hpp"

namespace minidl {

template <class Scalar>
class Sequential;

template <class Scalar>
class Callback {
 public:
  virtual ~Callback() = default;
  /// Before epoch `epoch` (0-based) starts: the place to change the learning rate.
  virtual void on_epoch_begin(Sequential<Scalar>& model, int epoch) { (void)model, (void)epoch; }
  /// After each batch's update. `logs` holds the epoch's running means so far.
  virtual void on_batch_end(Sequential<Scalar>& model, Index batch, const Logs& logs) {
    (void)model, (void)batch, (void)logs;
  }
  /// After the epoch's validation. `logs` holds the epoch's values (those in History).
  virtual void on_epoch_end(Sequential<Scalar>& model, int epoch, const Logs& logs) {
    (void)model, (void)epoch, (void)logs;
  }
};

/// A callback from lambdas; unset hooks do nothing.
template <class Scalar>
struct LambdaCallback : Callback<Scalar> {
  std::function<void(Sequential<Scalar>&, int)> epoch_begin;
  std::function<void(Sequential<Scalar>&, Index, const Logs&)> batch_end;
  std::function<void(Sequential<Scalar>&, int, const Logs&)> epoch_end;

  void on_epoch_begin(Sequential<Scalar>& model, int epoch) override {
    if (epoch_begin) epoch_begin(model, epoch);
  }
  void on_batch_end(Sequential<Scalar>& model, Index batch, const Logs& logs) override {
    if (batch_end) batch_end(model, batch, logs);
  }
  void on_epoch_end(Sequential<Scalar>& model, int epoch, const Logs& logs) override {
    if (epoch_end) epoch_end(model, epoch, logs);
  }
};

/// Keras's LearningRateScheduler: before each epoch, lr = schedule(epoch, current lr).
template <class Scalar>
class LearningRateScheduler : public Callback<Scalar> {
 public:
  explicit LearningRateScheduler(std::function<Scalar(int epoch, Scalar learning_rate)> schedule)
      : schedule_(std::move(schedule)) {}
  void on_epoch_begin(Sequential<Scalar>& model, int epoch) override {
    model.optimizer().set_learning_rate(schedule_(epoch, model.optimizer().learning_rate()));
  }

 private:
  std::function<Scalar(int, Scalar)> schedule_;
};

}  // namespace minidl
