// minidl — TerminateOnNaN: stop fit at the first batch whose loss is NaN or
// Inf, keeping the weights from before that batch.
//
// Keras's TerminateOnNaN looks at the running loss after the batch's update
// has been applied, so the model it leaves behind already holds the
// non-finite step. minidl checks each batch's training-phase loss before the
// update (the on_batch_loss hook), skips that update and sets
// model.stop_training: the trainable weights and the optimizer's state are
// those from before the offending step, with no copy kept and nothing
// allocated per step. Moving statistics (BatchNorm) are updated by the
// step's forward pass itself, before the loss exists; they are not rolled
// back (they stay finite as long as that layer's inputs were finite).
// As in Keras, fit then ends the epoch: the batch still counts in the epoch's
// logs (so History's loss for it is non-finite), validation runs (on the kept
// weights), on_epoch_end and on_train_end are called.
#pragma once

#include <cmath>
#include <iostream>
#include <string>
#include <vector>

#include "../sequential.hpp"
#include "callback.hpp"

namespace minidl {

template <class Scalar>
class TerminateOnNaN : public Callback<Scalar> {
 public:
  /// The message goes to `out` (null: only stored, see message()).
  explicit TerminateOnNaN(std::ostream* out = &std::cerr) : out_(out) {}

  void on_train_begin(Sequential<Scalar>& model, const std::vector<std::string>& log_names) override {
    (void)model, (void)log_names;
    terminated_ = false;
    message_.clear();
    epoch_ = -1;
    batch_ = -1;
  }

  bool on_batch_loss(Sequential<Scalar>& model, int epoch, Index batch, Scalar loss) override {
    if (std::isfinite(loss)) return true;
    terminated_ = true;
    epoch_ = epoch;
    batch_ = batch;
    // Epochs counted from 1 as the progress bar shows them, batches from 0 as Keras's message.
    message_ = detail::message("Epoch ", epoch + 1, ", batch ", batch, ": invalid loss (", loss,
                               "), terminating training; this batch's update was not applied");
    if (out_) *out_ << message_ << '\n';
    model.stop_training = true;
    return false;
  }

  /// True if the last fit was stopped by a non-finite loss.
  bool terminated() const { return terminated_; }
  /// The message naming the epoch and batch; empty if not terminated.
  const std::string& message() const { return message_; }
  /// The 0-based epoch and batch of the non-finite loss; -1 if not terminated.
  int epoch() const { return epoch_; }
  Index batch() const { return batch_; }

 private:
  std::ostream* out_;
  bool terminated_ = false;
  std::string message_;
  int epoch_ = -1;
  Index batch_ = -1;
};

}  // namespace minidl
