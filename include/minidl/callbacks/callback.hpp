// minidl — Callback: hooks that fit calls around training, epochs and
// batches, as Keras callbacks; LambdaCallback and LearningRateScheduler.
//
// The order of the calls in one fit (Keras 3's):
//   on_train_begin
//   for each epoch:  on_epoch_begin
//                    for each batch:  on_batch_loss (before the update), on_batch_end
//                                     -> model.stop_training ends the epoch here
//                    validation, on_epoch_logs (each may add values), on_epoch_end,
//                    on_epoch_state      -> model.stop_training ends fit here
//   on_train_end
// (on_train_restore comes before on_train_begin: a resumed fit starts from a
// saved FitState.) An exception from fit or a callback ends fit at once,
// without on_train_end, as in Keras.
// A callback may inspect or evaluate the model: evaluate/predict run in the
// inference phase and have no side effects, so they do not change the run —
// except in on_batch_loss, where the layers still hold the batch's forward
// pass for the backward pass that follows.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "../history.hpp"
#include "../random.hpp"
#include "../tensor.hpp"

namespace minidl {

template <class Scalar>
class Sequential;

/// Where a fit stands between two epochs: all it needs to go on as if it had
/// never stopped (BackupAndRestore, io/backup_and_restore.hpp, saves it).
struct FitState {
  int epoch = 0;             ///< the next epoch to run (0-based)
  Rng shuffle_rng;           ///< fit's shuffle generator, as the next epoch's shuffle finds it
  std::vector<Index> order;  ///< the sample order that shuffle permutes (each shuffle permutes the last one's)
  History history;           ///< the logs of the epochs done
};

template <class Scalar>
class Callback {
 public:
  virtual ~Callback() = default;

  /// Once per fit, before the first epoch. `log_names` are the names every
  /// epoch's logs will hold, in History order ("loss", metrics, then "val_..."
  /// with validation data), so a callback can reject a name it needs before
  /// any weight changes. (Keras passes no names here.)
  virtual void on_train_begin(Sequential<Scalar>& model, const std::vector<std::string>& log_names) {
    (void)model, (void)log_names;
  }
  /// Once per fit, before on_train_begin, with the state fit starts from:
  /// epoch options.initial_epoch, the shuffle generator seeded with
  /// options.seed, the samples in order and an empty History. A callback that
  /// resumes a run (BackupAndRestore) restores the model and overwrites
  /// `state`, and fit starts there; it checks everything first, and throws,
  /// changing nothing, if it cannot restore. (Keras's BackupAndRestore sets
  /// the model's initial epoch, in on_train_begin.)
  virtual void on_train_restore(Sequential<Scalar>& model, FitState& state) { (void)model, (void)state; }
  /// Before epoch `epoch` (0-based) starts: the place to change the learning rate.
  virtual void on_epoch_begin(Sequential<Scalar>& model, int epoch) { (void)model, (void)epoch; }
  /// After the batch's training-phase loss is computed, before the backward
  /// pass and the optimizer update. Return false to skip this batch's update
  /// (TerminateOnNaN does, for a non-finite loss); fit then goes on with
  /// on_batch_end as usual. Called every batch: should not allocate; must not
  /// run the model (no evaluate/predict: the backward pass needs this batch's
  /// forward state). (No Keras counterpart: Keras's train step is one
  /// compiled function.)
  virtual bool on_batch_loss(Sequential<Scalar>& model, int epoch, Index batch, Scalar loss) {
    (void)model, (void)epoch, (void)batch, (void)loss;
    return true;
  }
  /// After each batch's update. `logs` holds the epoch's running means so far.
  virtual void on_batch_end(Sequential<Scalar>& model, Index batch, const Logs& logs) {
    (void)model, (void)batch, (void)logs;
  }
  /// After the epoch's validation, before any callback's on_epoch_end: a
  /// callback may add values to the epoch's logs here, which then go into
  /// History, the progress line and what every on_epoch_end sees (Keras's
  /// callbacks write into `logs` in on_epoch_end; LearningRateScheduler and
  /// ReduceLROnPlateau add "learning_rate" this way).
  virtual void on_epoch_logs(Sequential<Scalar>& model, int epoch, Logs& logs) { (void)model, (void)epoch, (void)logs; }
  /// After the epoch's validation. `logs` holds the epoch's values (those in History).
  virtual void on_epoch_end(Sequential<Scalar>& model, int epoch, const Logs& logs) {
    (void)model, (void)epoch, (void)logs;
  }
  /// After every callback's on_epoch_end, with the state fit would resume
  /// from: state.epoch is the next epoch, state.history holds this one.
  virtual void on_epoch_state(Sequential<Scalar>& model, const FitState& state) { (void)model, (void)state; }
  /// Once per fit, after the last epoch, also when training stopped early.
  /// `logs` are the last epoch's (empty if no epoch ran).
  virtual void on_train_end(Sequential<Scalar>& model, const Logs& logs) { (void)model, (void)logs; }

  /// False on the replicas other than replica 0 of a data-parallel fit (FitOptions::replicas), where the
  /// callbacks that write files (ModelCheckpoint, CSVLogger, BackupAndRestore's backups) write nothing; fit
  /// sets it before on_train_restore.
  bool main_replica() const { return main_replica_; }
  void set_main_replica(bool main) { main_replica_ = main; }

 private:
  bool main_replica_ = true;
};

/// A callback from lambdas; unset hooks do nothing.
template <class Scalar>
struct LambdaCallback : Callback<Scalar> {
  std::function<void(Sequential<Scalar>&)> train_begin;
  std::function<void(Sequential<Scalar>&, int)> epoch_begin;
  std::function<void(Sequential<Scalar>&, Index, const Logs&)> batch_end;
  std::function<void(Sequential<Scalar>&, int, const Logs&)> epoch_end;
  std::function<void(Sequential<Scalar>&, const Logs&)> train_end;

  void on_train_begin(Sequential<Scalar>& model, const std::vector<std::string>&) override {
    if (train_begin) train_begin(model);
  }
  void on_epoch_begin(Sequential<Scalar>& model, int epoch) override {
    if (epoch_begin) epoch_begin(model, epoch);
  }
  void on_batch_end(Sequential<Scalar>& model, Index batch, const Logs& logs) override {
    if (batch_end) batch_end(model, batch, logs);
  }
  void on_epoch_end(Sequential<Scalar>& model, int epoch, const Logs& logs) override {
    if (epoch_end) epoch_end(model, epoch, logs);
  }
  void on_train_end(Sequential<Scalar>& model, const Logs& logs) override {
    if (train_end) train_end(model, logs);
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
  /// The epoch's learning rate as "learning_rate" (Keras 3).
  void on_epoch_logs(Sequential<Scalar>& model, int /*epoch*/, Logs& logs) override {
    logs.set("learning_rate", static_cast<double>(model.optimizer().learning_rate()));
  }

 private:
  std::function<Scalar(int, Scalar)> schedule_;
};

}  // namespace minidl
