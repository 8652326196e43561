// minidl — BatchNormalization (Ioffe & Szegedy 2015), Keras 3 by default,
// PyTorch's conventions on request.
//
// Normalizes over the last axis of the per-sample shape (Keras axis=-1,
// channels last). For a dense batch (N x F) the statistics of each feature are
// over the N rows; for an image batch with per-sample shape (H, W, C) the
// row-major N x (H*W*C) batch is, without a copy, an (N*H*W) x C matrix, and
// the statistics of each channel are over n = N*H*W values.
//
//   training phase:  y = γ·(x − μ_B)/sqrt(σ²_B + ε) + β   σ²_B biased, in every framework
//   inference phase: y = γ·(x − moving_mean)/sqrt(moving_var + ε) + β
//
// Moving statistics, updated by each training-phase forward of a layer that
// is not frozen:
//   keras   (momentum 0.99, ε 1e-3): moving = momentum·moving + (1 − momentum)·batch,
//            variance fed σ²_B (biased), as Keras 3;
//   pytorch (momentum 0.1, ε 1e-5):  running = (1 − m)·running + m·batch,
//            variance fed s²_B = n/(n−1)·σ²_B (unbiased); m = momentum, or
//            1/num_batches_tracked with cumulative_average (PyTorch momentum=None);
//            training with n = 1 is an error, as in PyTorch.
//
// What a frozen BatchNorm (Keras trainable=False) does in the training phase
// has changed between Keras generations:
//   | generation              | normalizes with   | moving stats updated |
//   |-------------------------|-------------------|----------------------|
//   | Keras <= 2.1.2          | batch statistics  | yes (only γ/β frozen)|
//   | Keras 2.1.3 – 2.3.1     | batch statistics  | no                   |
//   | tf.keras (TF2), Keras 3 | moving statistics | no                   |
//   | PyTorch, requires_grad  | batch statistics  | yes, while train()   |
// In minidl a frozen BatchNorm never changes its moving statistics (nor γ/β:
// their gradients are not even computed). What it normalizes with is
// FrozenBatchNormPolicy:
//   moving_statistics (default, TF2 / Keras 3): exactly the inference-phase
//       computation, so fit and evaluate agree;
//   batch_statistics (Keras 2.1.3 – 2.3.1): batch statistics in the training
//       phase, moving statistics in inference: outputs differ between fit and
//       evaluate whenever the data's statistics differ from the moving ones.
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <vector>

#include "../layer.hpp"
#include "channel_sums.hpp"

namespace minidl {

/// Whose moving-statistics update rule and defaults to follow.
enum class BatchNormConvention { keras, pytorch };

inline const char* to_string(BatchNormConvention c) { return c == BatchNormConvention::keras ? "keras" : "pytorch"; }
/// FrozenBatchNormPolicy (layer.hpp: what a frozen BatchNorm normalizes with
/// in the training phase, see the table above) by name.
inline const char* to_string(FrozenBatchNormPolicy p) {
  return p == FrozenBatchNormPolicy::moving_statistics ? "moving_statistics" : "batch_statistics";
}

struct BatchNormOptions {
  BatchNormConvention convention = BatchNormConvention::keras;
  /// Keras: weight of the old moving value. PyTorch: weight of the new batch value.
  double momentum = 0.99;
  double epsilon = 1e-3;
  /// PyTorch momentum=None: running stats are the plain average of all batches so far.
  bool cumulative_average = false;
  FrozenBatchNormPolicy frozen_policy = FrozenBatchNormPolicy::moving_statistics;
  /// Keras's synchronized: in a data-parallel fit (replicas.hpp), batch statistics over the global batch (the
  /// replicas' sums), not this replica's shard (see the top of the file). No effect on one process.
  bool synchronized = false;
  /// Penalties on γ and β added to the loss (regularizers.hpp); none by default, as Keras.
  std::optional<Regularizer> gamma_regularizer{}, beta_regularizer{};

  /// Keras defaults: momentum 0.99, ε 1e-3.
  static BatchNormOptions keras() { return {}; }
  /// torch.nn.BatchNorm1d/2d defaults: momentum 0.1, ε 1e-5.
  static BatchNormOptions pytorch() {
    BatchNormOptions options;
    options.convention = BatchNormConvention::pytorch;
    options.momentum = 0.1;
    options.epsilon = 1e-5;
    return options;
  }
};

template <class Scalar>
class BatchNorm : public LayerBase<BatchNorm<Scalar>, Scalar> {
  using Base = LayerBase<BatchNorm<Scalar>, Scalar>;
  using ChannelMap = Eigen::Map<Matrix<Scalar>>;            // n x C view of a batch
  using ConstChannelMap = Eigen::Map<const Matrix<Scalar>>;  // n x C view of a batch

 public:
  /// Shape fixed later by build(shape) or Sequential::add.
  explicit BatchNorm(BatchNormOptions options = {}) : options_(checked(options)) {}
  /// Dense input with `features` values per sample.
  explicit BatchNorm(Index features, BatchNormOptions options = {})
      : BatchNorm(Shape{checked_features(features)}, options) {}
  /// Any per-sample shape; statistics per entry of the last axis.
  explicit BatchNorm(Shape input_shape, BatchNormOptions options = {})
      : Base(input_shape, input_shape), options_(checked(options)) {
    allocate(input_shape.back());
  }

  const char* type() const override { return "BatchNormalization"; }

  LayerConfig config() const override {
    LayerConfig c;
    c.set("convention", to_string(options_.convention)).set("momentum", options_.momentum);
    c.set("epsilon", options_.epsilon).set("cumulative_average", options_.cumulative_average);
    c.set("frozen_policy", to_string(options_.frozen_policy)).set("synchronized", options_.synchronized);
    c.set("gamma_regularizer", detail::regularizer_value(options_.gamma_regularizer));
    c.set("beta_regularizer", detail::regularizer_value(options_.beta_regularizer));
    return c;
  }
  static BatchNorm from_config(const LayerConfig& c) {
    using P = FrozenBatchNormPolicy;
    BatchNormOptions o;
    o.convention = c.choice("convention", {BatchNormConvention::keras, BatchNormConvention::pytorch});
    o.momentum = c.number("momentum");
    o.epsilon = c.number("epsilon");
    o.cumulative_average = c.boolean("cumulative_average");
    o.frozen_policy = c.choice("frozen_policy", {P::moving_statistics, P::batch_statistics});
    o.synchronized = c.has("synchronized") && c.boolean("synchronized");  // files written before it: false
    o.gamma_regularizer = detail::config_regularizer(c, "gamma_regularizer");
    o.beta_regularizer = detail::config_regularizer(c, "beta_regularizer");
    return BatchNorm(o);
  }
  std::optional<std::vector<WeightShape>> weight_shapes(const Shape& input) const override {
    std::vector<WeightShape> out;
    for (const char* name : {"gamma", "beta", "moving_mean", "moving_variance"})
      out.push_back({name, Shape{input.back()}, ""});
    return out;
  }
  /// PyTorch's BatchNorm1d/2d, for a layer made with BatchNormOptions::pytorch().
  PyTorchCounterpart pytorch_counterpart() const override {
    if (options_.convention != BatchNormConvention::pytorch)
      return {{}, {}, "must be made with BatchNormOptions::pytorch() (PyTorch's epsilon and update), "
                      "got the keras convention"};
    return {{{"gamma", "weight"}, {"beta", "bias"}, {"moving_mean", "running_mean"},
             {"moving_variance", "running_var"}},
            {"num_batches_tracked"},
            {}};
  }

  const BatchNormOptions& options() const { return options_; }
  const Regularizer* weight_regularizer(const std::string& tensor) const override {
    return detail::regularizer_named(tensor, {{"gamma", &options_.gamma_regularizer},
                                              {"beta", &options_.beta_regularizer}});
  }
  FrozenBatchNormPolicy frozen_policy() const { return options_.frozen_policy; }
  void set_frozen_policy(FrozenBatchNormPolicy policy) { options_.frozen_policy = policy; }
  void set_frozen_batchnorm_policy(FrozenBatchNormPolicy policy) override { set_frozen_policy(policy); }
  void set_synchronized_statistics(bool synchronized) override { options_.synchronized = synchronized; }
  std::string phase_behaviour() const override {
    if (!this->frozen()) return "batch statistics (trainable)";
    return uses_batch_statistics_when_training() ? "batch statistics while frozen (legacy policy)"
                                                 : "frozen, moving statistics in both phases";
  }
  /// Number of moving-statistics updates so far (PyTorch's buffer of the same name).
  std::int64_t num_batches_tracked() const { return num_batches_tracked_; }
  /// Restores the counter (e.g. from a PyTorch checkpoint, for cumulative_average); n >= 0.
  void set_num_batches_tracked(std::int64_t n) {
    if (n < 0)
      throw ValueError(detail::message(this->describe(), ": num_batches_tracked must be >= 0, got ", n));
    num_batches_tracked_ = n;
  }

  // All C values (C = input_shape().back()).
  const Vector<Scalar>& gamma() const { return gamma_; }
  const Vector<Scalar>& beta() const { return beta_; }
  const Vector<Scalar>& moving_mean() const { return moving_mean_; }
  const Vector<Scalar>& moving_variance() const { return moving_variance_; }
  /// Set them: C finite values (the variance >= 0), else a ShapeError /
  /// ValueError naming the layer and the tensor, and nothing changes.
  void set_gamma(const Vector<Scalar>& gamma) { this->assign_tensor(gamma_, gamma, "gamma"); }
  void set_beta(const Vector<Scalar>& beta) { this->assign_tensor(beta_, beta, "beta"); }
  void set_moving_mean(const Vector<Scalar>& mean) { this->assign_tensor(moving_mean_, mean, "moving_mean"); }
  void set_moving_variance(const Vector<Scalar>& variance) {
    this->assign_tensor(moving_variance_, variance, "moving_variance", /*non_negative=*/true);
  }

 protected:
  Shape build_impl(const Shape& input) override {
    allocate(input.back());
    return input;
  }

  void check_batch_impl(Index rows, Phase phase) const override {
    // rows·(H·W) values per channel; rows >= 1 and H·W >= 1, so only rows = 1
    // of a dense input (or a 1x1 image) gives a single value.
    const bool single_value = rows == 1 && this->input_size() == this->input_shape().back();
    const bool batch_statistics = phase == Phase::training && uses_batch_statistics_when_training();
    if (batch_statistics && options_.convention == BatchNormConvention::pytorch && single_value)
      throw ValueError(detail::message(this->describe(), ": training with the pytorch convention expects more "
                                       "than 1 value per channel (as PyTorch), got 1 (a batch of ",
                                       rows, " x ", this->input_shape().str(), ")"));
  }

  bool phases_differ_impl() const override { return uses_batch_statistics_when_training(); }

  void forward_training(const Matrix<Scalar>& x, Matrix<Scalar>& y) override {
    if (!uses_batch_statistics_when_training()) {
      forward_inference(x, y);  // TF2 / Keras 3: a frozen BN runs in inference mode
      return;
    }
    const ConstChannelMap X = channels(x);
    ReplicaGroup* replicas = statistics_replicas();
    const Index n = statistics_count(X.rows(), x.rows());
    // Two vectorized passes over x: μ_B = Σx/n, then σ²_B = Σ(x − μ_B)²/n.
    // Centring before squaring keeps the digits that Σx²/n − μ² would cancel:
    // as accurate as Welford's one-pass update, without its division per row.
    // Synchronized, each sum is the replicas' sum of theirs.
    mean_.setZero();
    detail::accumulate_rows(X.rows(), mean_, [&](Index r) { return X.row(r).array(); });
    if (replicas) replicas->sum(mean_.data(), static_cast<std::size_t>(mean_.size()));
    mean_ /= Scalar(n);
    batch_variance_.setZero();
    detail::accumulate_rows(X.rows(), batch_variance_,
                            [&](Index r) { return (X.row(r) - mean_.transpose()).array().square(); });
    if (replicas) replicas->sum(batch_variance_.data(), static_cast<std::size_t>(batch_variance_.size()));
    batch_variance_ /= Scalar(n);
    inv_std_.array() = (batch_variance_.array() + epsilon()).rsqrt();
    used_batch_statistics_ = true;
    if (!this->frozen()) update_moving_statistics(n);
    normalize(X, y);
  }

  void forward_inference(const Matrix<Scalar>& x, Matrix<Scalar>& y) override {
    mean_ = moving_mean_;
    inv_std_.array() = (moving_variance_.array() + epsilon()).rsqrt();
    used_batch_statistics_ = false;
    normalize(channels(x), y);
  }

  // x̂ = (x − μ)·inv_std with the μ, inv_std the forward used (batch or moving).
  //   dβ = Σ dy          dγ = Σ dy⊙x̂            (sums over the n rows; skipped when frozen)
  //   batch statistics (μ, σ² depend on x, three-term formula):
  //     dx = γ·inv_std·(dy − mean(dy) − x̂·mean(dy⊙x̂))
  //   moving statistics (constants): dx = γ·inv_std·dy
  void backward_impl(const Matrix<Scalar>& x, const Matrix<Scalar>& dy, Matrix<Scalar>* dx) override {
    const ConstChannelMap X = channels(x), dY = channels(dy);
    const Index rows = X.rows(), n = statistics_count(rows, x.rows());
    const bool parameter_grads = !this->frozen();
    scale_.array() = gamma_.array() * inv_std_.array();  // γ·inv_std, per channel
    if (parameter_grads || (used_batch_statistics_ && dx)) {
      // One pass over x and dy: Σ dy and Σ dy⊙(x − μ), then Σ dy⊙x̂ = inv_std·Σ dy⊙(x − μ).
      const auto dy_row = [&](Index r) { return dY.row(r).array(); };
      const auto dy_centred = [&](Index r) { return dY.row(r).array() * (X.row(r) - mean_.transpose()).array(); };
      sum_dy_.setZero();
      sum_dy_xhat_.setZero();
      detail::accumulate_rows(rows, sum_dy_, dy_row, sum_dy_xhat_, dy_centred);
      sum_dy_xhat_.array() *= inv_std_.array();
      if (parameter_grads) {  // in a data-parallel fit, this replica's part: fit sums the parts
        gamma_grad_ = sum_dy_xhat_;
        beta_grad_ = sum_dy_;
      }
    }
    if (!dx) return;
    ChannelMap dX(dx->data(), rows, X.cols());
    if (!used_batch_statistics_) {
      dX.array() = dY.array().rowwise() * scale_.transpose().array();
      return;
    }
    if (ReplicaGroup* replicas = statistics_replicas()) {  // the means below are over the global batch
      replicas->sum(sum_dy_.data(), static_cast<std::size_t>(sum_dy_.size()));
      replicas->sum(sum_dy_xhat_.data(), static_cast<std::size_t>(sum_dy_xhat_.size()));
    }
    // One pass: dx = γ·inv_std·(dy − mean(dy)) − γ·inv_std²·mean(dy⊙x̂)·(x − μ)
    sum_dy_ /= Scalar(n);                                                   // now mean(dy)
    sum_dy_xhat_.array() *= scale_.array() * inv_std_.array() / Scalar(n);  // now the (x − μ) slope
    dX.array() = (dY.rowwise() - sum_dy_.transpose()).array().rowwise() * scale_.transpose().array() -
                 (X.rowwise() - mean_.transpose()).array().rowwise() * sum_dy_xhat_.transpose().array();
  }

  void collect_parameters(std::vector<Parameter<Scalar>>& out) override {
    out.push_back({"gamma", gamma_.data(), gamma_grad_.data(), gamma_.size()});
    out.push_back({"beta", beta_.data(), beta_grad_.data(), beta_.size()});
  }
  void collect_state(std::vector<Parameter<Scalar>>& out) override {
    out.push_back({"moving_mean", moving_mean_.data(), nullptr, moving_mean_.size()});
    out.push_back({"moving_variance", moving_variance_.data(), nullptr, moving_variance_.size(),
                   /*non_negative=*/true});
  }

 private:
  /// Unpinned, a training forward normalizes with the batch's statistics
  /// unless the layer is frozen with the moving-statistics policy.
  bool uses_batch_statistics_when_training() const {
    return !(this->frozen() && options_.frozen_policy == FrozenBatchNormPolicy::moving_statistics);
  }

  /// The replicas whose sums the batch statistics are (synchronized, in a data-parallel fit), else null.
  ReplicaGroup* statistics_replicas() const {
    const BatchShard* shard = this->batch_shard();
    return options_.synchronized && shard ? shard->replicas : nullptr;
  }
  /// Values per channel the batch statistics are over: the n of this batch of `rows`, or of the global batch.
  Index statistics_count(Index n, Index rows) const {
    return statistics_replicas() ? n / rows * this->batch_shard()->global_rows : n;
  }

  static BatchNormOptions checked(const BatchNormOptions& options) {
    if (!(options.momentum >= 0 && options.momentum <= 1))
      throw ValueError(detail::message("BatchNormalization: momentum must be in [0, 1], got ", options.momentum));
    if (!(options.epsilon > 0) || !std::isfinite(options.epsilon))
      throw ValueError(
          detail::message("BatchNormalization: epsilon must be a finite number > 0, got ", options.epsilon));
    // ε is used as a Scalar: one that rounds to 0 (1e-50 in float) would
    // divide by zero on a constant channel, one that rounds to Inf would zero
    // every output.
    const auto epsilon = static_cast<Scalar>(options.epsilon);
    if (!(epsilon > 0) || !std::isfinite(epsilon))
      throw ValueError(detail::message("BatchNormalization: epsilon ", options.epsilon, " becomes ", epsilon,
                                       " in the model's scalar type (", sizeof(Scalar) == 4 ? "float" : "double",
                                       "); it must stay a finite number > 0"));
    if (options.cumulative_average && options.convention != BatchNormConvention::pytorch)
      throw ValueError(
          "BatchNormalization: cumulative_average (PyTorch momentum=None) needs the pytorch convention, "
          "got the keras convention");
    return options;
  }
  static Index checked_features(Index features) {
    if (features <= 0)
      throw ShapeError(detail::message("BatchNormalization: features must be positive, got ", features));
    return features;
  }

  /// Sizes everything for C channels; nothing depends on the batch size, so
  /// forward and backward never allocate.
  void allocate(Index c) {
    gamma_.setOnes(c);
    beta_.setZero(c);
    moving_mean_.setZero(c);
    moving_variance_.setOnes(c);
    gamma_grad_.setZero(c);
    beta_grad_.setZero(c);
    for (Vector<Scalar>* v : {&mean_, &inv_std_, &batch_variance_, &scale_, &sum_dy_, &sum_dy_xhat_})
      v->setZero(c);
  }

  Scalar epsilon() const { return static_cast<Scalar>(options_.epsilon); }

  /// The batch (N x H*W*C, row-major) as the n x C matrix it already is in memory.
  ConstChannelMap channels(const Matrix<Scalar>& x) const {
    return ConstChannelMap(x.data(), x.size() / gamma_.size(), gamma_.size());
  }

  /// y = γ·(x − mean_)·inv_std_ + β, one pass. x − μ comes first so that a
  /// large mean does not cancel digits (as x·scale + shift would).
  void normalize(const ConstChannelMap& X, Matrix<Scalar>& y) {
    scale_.array() = gamma_.array() * inv_std_.array();
    ChannelMap Y(y.data(), X.rows(), X.cols());
    Y.array() = ((X.rowwise() - mean_.transpose()).array().rowwise() * scale_.transpose().array()).rowwise() +
                beta_.transpose().array();
  }

  void update_moving_statistics(Index n) {
    ++num_batches_tracked_;
    if (options_.convention == BatchNormConvention::keras) {
      // Keras 3: moving = momentum·moving + (1 − momentum)·batch, biased σ²_B.
      // Keras forms 1 − momentum in Python (double) and rounds it once to the
      // variable's dtype: so does this, rather than 1 − float(momentum) (in
      // float, 1 − float(0.99) is 1e-6 away from float(0.01)).
      const auto m = static_cast<Scalar>(options_.momentum);
      const auto new_weight = static_cast<Scalar>(1.0 - options_.momentum);
      moving_mean_ = m * moving_mean_ + new_weight * mean_;
      moving_variance_ = m * moving_variance_ + new_weight * batch_variance_;
    } else {
      // PyTorch: running = (1 − m)·running + m·batch, unbiased s²_B = n/(n−1)·σ²_B.
      const double m = options_.cumulative_average ? 1.0 / static_cast<double>(num_batches_tracked_)
                                                   : options_.momentum;
      const auto keep = static_cast<Scalar>(1 - m);
      const auto unbiased = static_cast<Scalar>(m * static_cast<double>(n) / static_cast<double>(n - 1));
      moving_mean_ = keep * moving_mean_ + static_cast<Scalar>(m) * mean_;
      moving_variance_ = keep * moving_variance_ + unbiased * batch_variance_;
    }
  }

  BatchNormOptions options_;
  std::int64_t num_batches_tracked_ = 0;
  // Weights and statistics, C each.
  Vector<Scalar> gamma_, beta_;                    // scale γ (1) and offset β (0)
  Vector<Scalar> moving_mean_, moving_variance_;   // non-trainable state (0 and 1)
  Vector<Scalar> gamma_grad_, beta_grad_;          // dLoss/dγ, dLoss/dβ
  // Saved by the last forward for backward, C each: what it normalized with.
  Vector<Scalar> mean_, inv_std_;                  // μ and 1/sqrt(σ² + ε), batch or moving
  bool used_batch_statistics_ = false;
  // Scratch, C each.
  Vector<Scalar> batch_variance_;                  // σ²_B
  Vector<Scalar> scale_;                           // γ·inv_std
  Vector<Scalar> sum_dy_, sum_dy_xhat_;            // backward's two channel sums
};

}  // namespace minidl
