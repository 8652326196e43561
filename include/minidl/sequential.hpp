// minidl — Sequential: a stack of layers with Keras's compile / fit /
// evaluate / predict.
//
// Phases, as in Keras:
//   fit, train_on_batch          — training phase, then the optimizer update;
//   evaluate, test_on_batch,
//   predict, validation          — inference phase, no side effects at all.
// fit's epoch loss is the batch-size-weighted mean of the training-phase
// losses computed *before* each batch's update (Keras's running mean), and
// validation runs after the epoch's last update in the inference phase, so
// val_loss equals an evaluate() on the same data right after fit.
//
// Layers are owned by the model (shared with the models that split() makes).
// A call that throws leaves the model as it was: every argument is checked
// before anything changes.
#pragma once

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <string>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <vector>

#include "fit_options.hpp"
#include "history.hpp"
#include "layer.hpp"
#include "metrics.hpp"
#include "model/data_checks.hpp"
#include "model/loss_function.hpp"
#include "model/naming.hpp"
#include "model/regularization.hpp"
#include "optimizers/optimizer.hpp"
#include "progress.hpp"

namespace minidl {
namespace detail {
template <class Scalar> struct PrefixOutputs;  // fit's cache of a frozen prefix (model/prefix_cache.hpp)
template <class Scalar> class ReplicaFit;      // a data-parallel fit's side (model/replicated_fit.hpp)
}  // namespace detail

template <class Scalar>
class Sequential {
 public:
  /// `seed` seeds the initial weights and dropout generators of layers added
  /// without a seed of their own.
  explicit Sequential(std::uint64_t seed = 0) : init_rng_(seed) {}
  Sequential(Sequential&&) noexcept = default;
  Sequential& operator=(Sequential&&) noexcept = default;
  Sequential(const Sequential&) = delete;  // it would silently share layers; clone() makes a deep copy
  Sequential& operator=(const Sequential&) = delete;

  // ---- building ---------------------------------------------------------

  /// Appends a layer and returns it. A layer made without an input shape takes
  /// the previous layer's output shape; a layer without weights yet is
  /// initialized from the model's generator. The model must be compiled again.
  template <class L, std::enable_if_t<std::is_base_of_v<Layer<Scalar>, L>, int> = 0>
  L& add(L layer) {
    return static_cast<L&>(add_owned(std::make_shared<L>(std::move(layer))));
  }
  /// The same for a layer made elsewhere (LayerRegistry::create, clone()).
  Layer<Scalar>& add(std::unique_ptr<Layer<Scalar>> layer) {
    if (!layer) throw ValueError("Sequential::add: the layer is null");
    return add_owned(std::shared_ptr<Layer<Scalar>>(std::move(layer)));
  }

  /// Appends the layers of `other`, shared with it (as a Keras model nested in
  /// a Sequential): add(base.clone()) for an independent copy of a base. A
  /// layer can be used once per model: appending a layer this model already
  /// has is a ValueError (Keras would share its weights between the two uses;
  /// minidl does not support that, as each layer keeps one output buffer).
  void add(const Sequential& other);

  std::size_t size() const { return layers_.size(); }
  /// Layer `index`; ValueError if there is none.
  Layer<Scalar>& layer(std::size_t index) { return *layers_[checked_index(index)]; }
  const Layer<Scalar>& layer(std::size_t index) const { return *layers_[checked_index(index)]; }
  Layer<Scalar>& layer(const std::string& name) {
    for (auto& l : layers_)
      if (l->name() == name) return *l;
    throw ValueError(detail::message("Sequential::layer: no layer named '", name, "'"));
  }
  const Shape& input_shape() const { return checked_front().input_shape(); }
  const Shape& output_shape() const { return checked_back().output_shape(); }

  // ---- freezing ---------------------------------------------------------

  /// Freezes layers [begin, end): their weights and moving statistics stop changing.
  void freeze(std::size_t begin, std::size_t end) { set_flag("freeze", begin, end, &Layer<Scalar>::set_frozen, true); }
  void unfreeze(std::size_t begin, std::size_t end) {
    set_flag("unfreeze", begin, end, &Layer<Scalar>::set_frozen, false);
  }
  void freeze() { freeze(0, size()); }
  void unfreeze() { unfreeze(0, size()); }

  /// Pins layers [begin, end) to the inference phase, also while training
  /// (Keras's `base(x, training=False)`; see Layer::set_inference_pinned):
  /// pin a frozen base, and fit computes what training the top on
  /// base.predict features computes. Saved with the model. A sub-model from
  /// split() shares its layers: pinning it pins them here too.
  void pin_inference(std::size_t begin, std::size_t end) {
    set_flag("pin_inference", begin, end, &Layer<Scalar>::set_inference_pinned, true);
  }
  void unpin_inference(std::size_t begin, std::size_t end) {
    set_flag("unpin_inference", begin, end, &Layer<Scalar>::set_inference_pinned, false);
  }
  void pin_inference() { pin_inference(0, size()); }
  void unpin_inference() { unpin_inference(0, size()); }

  /// What every frozen BatchNorm of the model normalizes with in the training phase (layers without batch
  /// statistics ignore it), and whether every BatchNorm sums its batch statistics over the replicas of a
  /// data-parallel fit (BatchNormOptions::synchronized).
  void set_frozen_batchnorm_policy(FrozenBatchNormPolicy policy) {
    for (auto& l : layers_) l->set_frozen_batchnorm_policy(policy);
  }
  void set_batchnorm_synchronized(bool synchronized) {
    for (auto& l : layers_) l->set_synchronized_statistics(synchronized);
  }

  /// Splits into a base (layers [0, k)) and a top (layers [k, size())) that share
  /// this model's layers: training the top trains this model's head. Both are
  /// uncompiled. The "split" fix: features = base.predict(x); top.fit(features, y).
  std::pair<Sequential, Sequential> split(std::size_t k) const {
    if (k == 0 || k >= size())
      throw ValueError(detail::message("Sequential::split: k must be in [1, ", size(), "), got ", k));
    return {share(0, k), share(k, size())};
  }

  /// A deep copy: layers, weights, statistics, generators, compile state.
  Sequential clone() const;

  // ---- compile ----------------------------------------------------------

  /// Sets the loss (MeanSquaredError{}, CategoricalCrossentropy{true}, ...), the
  /// optimizer (Adam<float>{1e-3}, ...) and the metrics reported by fit/evaluate.
  /// Resets the optimizer's state.
  template <class Loss, class Opt>
  void compile(const Loss& loss, const Opt& optimizer, std::vector<Metric> metrics = {});
  bool compiled() const { return compiled_; }
  /// The optimizer compile() made (StateError before): its state() and set_state() resume a run.
  Optimizer<Scalar>& optimizer() { return check_compiled("optimizer"), *optimizer_; }
  const Optimizer<Scalar>& optimizer() const { return check_compiled("optimizer"), *optimizer_; }

  // ---- training and inference ------------------------------------------

  /// Trains for options.epochs epochs (fewer if a callback sets stop_training) and returns the History of the
  /// epochs that ran; with options.replicas, as one replica of a data-parallel fit (replicas.hpp).
  History fit(ConstMatrixRef<Scalar> x, ConstMatrixRef<Scalar> y, const FitOptions<Scalar>& options = {});

  /// Keras's `model.stop_training`: a callback sets it to end fit. Set during a batch, fit finishes that batch
  /// and the epoch's bookkeeping (validation, History, on_epoch_end) without the epoch's remaining batches; set
  /// at an epoch's end, no further epoch starts. Either way on_train_end runs and fit returns the History so
  /// far. fit resets it to false when it starts.
  bool stop_training = false;

  /// True while fit or train_on_batch runs (e.g. in a callback): the model then refuses add, compile and
  /// training calls with a StateError, since the running step holds views of its layers and buffers.
  bool training() const { return training_; }

  /// Loss of (x, y) in the inference phase, batch-size-weighted over batches; with sample weights, Σ w_i ℓ_i / N.
  Scalar evaluate(ConstMatrixRef<Scalar> x, ConstMatrixRef<Scalar> y, Index batch_size = 32);
  Scalar evaluate(ConstMatrixRef<Scalar> x, ConstMatrixRef<Scalar> y, const Vector<Scalar>& sample_weight,
                  Index batch_size = 32);
  /// The loss and every metric of (x, y) in the inference phase (metrics weighted: Σ w_i m_i / Σ w_i).
  Logs evaluate_all(ConstMatrixRef<Scalar> x, ConstMatrixRef<Scalar> y, Index batch_size = 32);
  Logs evaluate_all(ConstMatrixRef<Scalar> x, ConstMatrixRef<Scalar> y, const Vector<Scalar>& sample_weight,
                    Index batch_size = 32);

  /// Outputs for x (N x output size) in the inference phase.
  Matrix<Scalar> predict(ConstMatrixRef<Scalar> x, Index batch_size = 32);
  /// The same outputs written into `out`, which must already be N x output size (else ShapeError, `out`
  /// unchanged). Called again with the same batch size and `out`, it allocates nothing.
  void predict(ConstMatrixRef<Scalar> x, Matrix<Scalar>& out, Index batch_size = 32);

  /// One training step on exactly this batch; returns its loss computed in the training phase before the update.
  Scalar train_on_batch(ConstMatrixRef<Scalar> x, ConstMatrixRef<Scalar> y);
  Scalar train_on_batch(ConstMatrixRef<Scalar> x, ConstMatrixRef<Scalar> y, const Vector<Scalar>& sample_weight);
  /// Loss of exactly this batch in the inference phase.
  Scalar test_on_batch(ConstMatrixRef<Scalar> x, ConstMatrixRef<Scalar> y);
  Scalar test_on_batch(ConstMatrixRef<Scalar> x, ConstMatrixRef<Scalar> y, const Vector<Scalar>& sample_weight);

  /// How many leading layers fit computes once per fit, not per batch (model/prefix_cache.hpp): the longest run
  /// of layers that train nothing (frozen, or without weights), compute the same function in both phases
  /// (phases_differ() false) and have no activity regularizer; never the last layer.
  std::size_t frozen_prefix() const;

  /// Loss of (x, y) with layer i run in `phases[i]`, without any weight update. Training-phase layers act as
  /// in fit: Dropout draws masks from its generator, a non-frozen BatchNorm updates its moving statistics.
  /// Used by explain_gap on a clone() to attribute the train/inference gap to layers.
  Scalar loss_in_phases(ConstMatrixRef<Scalar> x, ConstMatrixRef<Scalar> y, const std::vector<Phase>& phases,
                        Index batch_size = 32);

  // ---- weights ------------------------------------------------------------

  /// Every parameter and statistics tensor, layer by layer (Keras order: kernel, bias; gamma, beta, moving_*).
  std::vector<Vector<Scalar>> get_weights() const {
    std::vector<Vector<Scalar>> out;
    for (const auto& p : all_tensors()) out.emplace_back(p.values());
    return out;
  }
  /// Sets every tensor, in get_weights() order. Throws ShapeError (a count or size that differs) or ValueError
  /// (a NaN or Inf value, a negative moving variance), changing nothing.
  void set_weights(const std::vector<Vector<Scalar>>& weights);

  /// The weight penalties of the current weights (regularizers.hpp), frozen layers' included: the part of
  /// every loss the model reports that does not depend on the data (activity penalties do).
  Scalar regularization_loss() const;

  Index parameter_count() const { return count([](const Layer<Scalar>&) { return true; }); }
  Index trainable_parameter_count() const { return count([](const Layer<Scalar>& l) { return !l.frozen(); }); }

  /// Prints a Keras-like table: layer, output shape, parameters, frozen; totals (model/summary.hpp).
  void summary(std::ostream& out = std::cout) const;

 private:
  friend class detail::ReplicaFit<Scalar>;
  /// The layers a pass runs: [first, last); all by default; fit's start after its cached prefix (prefix_cache.hpp).
  struct Layers {
    std::size_t first = 0, last = static_cast<std::size_t>(-1);
  };
  // add()'s work, on a layer the model now owns alone (model/structure.hpp).
  Layer<Scalar>& add_owned(std::shared_ptr<Layer<Scalar>> layer);

  Sequential share(std::size_t begin, std::size_t end) const {
    Sequential part(0);
    part.layers_.assign(layers_.begin() + static_cast<std::ptrdiff_t>(begin),
                        layers_.begin() + static_cast<std::ptrdiff_t>(end));
    return part;
  }

  std::string unique_name(const char* type) const {
    std::unordered_set<std::string> taken;
    for (const auto& l : layers_) taken.insert(l->name());
    return detail::unique_layer_name(type, taken);
  }

  /// Calls (layer.*set)(value) on layers [begin, end), after checking the range.
  void set_flag(const char* call, std::size_t begin, std::size_t end, void (Layer<Scalar>::*set)(bool), bool value) {
    if (begin > end || end > size())
      throw ValueError(detail::message("Sequential::", call, ": range [", begin, ", ", end, ") is not within [0, ",
                                       size(), "]"));
    for (std::size_t i = begin; i < end; ++i) (layers_[i].get()->*set)(value);
  }

  std::size_t checked_index(std::size_t index) const {
    if (index >= layers_.size())
      throw ValueError(detail::message("Sequential::layer: index ", index, " is out of range: the model has ",
                                       layers_.size(), " layers"));
    return index;
  }
  void check_not_training(const char* call) const {
    if (training_)
      throw StateError(detail::message("Sequential::", call, ": the model is training (fit or train_on_batch is ",
                                       "running, e.g. this is a callback); ", call, " is refused until it returns"));
  }
  /// Marks the model as training for the guard's lifetime; refuses a second, nested training call.
  class TrainingGuard {
   public:
    TrainingGuard(Sequential& model, const char* call) : model_(model) {
      model.check_not_training(call);
      model.training_ = true;
    }
    ~TrainingGuard() { model_.training_ = false; }
    TrainingGuard(const TrainingGuard&) = delete;
    TrainingGuard& operator=(const TrainingGuard&) = delete;

   private:
    Sequential& model_;
  };

  /// Throws, before any layer runs, if some layer would reject a batch of `rows` in layer i's phase phase_of(i).
  template <class PhaseOf>
  void check_batch(Index rows, PhaseOf phase_of, Layers layers = {}) const {
    for (std::size_t i = layers.first; i < std::min(layers.last, layers_.size()); ++i)
      layers_[i]->check_batch(rows, phase_of(i));
  }
  /// check_batch for every batch size that batching `samples` by `batch_size` gives: full, and the last one.
  template <class PhaseOf>
  void check_batch_sizes(Index samples, Index batch_size, PhaseOf phase_of, Layers layers = {}) const {
    check_batch(std::min(samples, batch_size), phase_of, layers);
    if (samples > batch_size && samples % batch_size != 0) check_batch(samples % batch_size, phase_of, layers);
  }

  const Layer<Scalar>& checked_front() const {
    if (layers_.empty()) throw StateError("Sequential: the model has no layers; add() some first");
    return *layers_.front();
  }
  const Layer<Scalar>& checked_back() const { return checked_front(), *layers_.back(); }
  void check_compiled(const char* call) const {
    if (compiled_) return;
    if (loss_)  // compiled once, then add() changed the layers
      throw StateError(detail::message("Sequential::", call, ": the model changed after compile (a layer was "
                                       "added); call compile(loss, optimizer) again"));
    throw StateError(detail::message("Sequential::", call, ": the model is not compiled; call compile(loss, "
                                                           "optimizer) after adding the last layer"));
  }
  void check_batch_size(const char* call, Index batch_size) const {
    if (batch_size <= 0)
      throw ValueError(detail::message("Sequential::", call, ": batch_size must be > 0, got ", batch_size));
  }
  void check_input_data(const char* call, ConstMatrixRef<Scalar> x) const {
    detail::check_data_matrix(call, "x", x, input_shape().size());
  }
  void check_data(const char* call, ConstMatrixRef<Scalar> x, ConstMatrixRef<Scalar> y,
                  const Vector<Scalar>* sample_weight = nullptr) const {
    check_input_data(call, x);
    if (sample_weight) detail::check_sample_weights(call, *sample_weight, x.rows());
    if (y.rows() != x.rows())
      throw ShapeError(detail::message("Sequential::", call, ": y has ", y.rows(), " rows, expected ", x.rows(),
                                       " (one per row of x)"));
    if (loss_) loss_->check_targets(call, y, output_shape().size());  // the loss's rules: columns, values, range
    else detail::check_data_matrix(call, "y", y, output_shape().size());
  }

  /// Runs `layers` on x, layer i in phase_of(i), once each accepted the batch; returns the last output.
  template <class PhaseOf>
  const Matrix<Scalar>& forward_layers(const Matrix<Scalar>& x, PhaseOf phase_of, Layers layers = {});
  /// The one batching loop of evaluation and prediction: runs `layers` on x (and y, if not null) batch by
  /// batch, and calls each(begin, n, output, y batch) for the n rows from `begin` (model/evaluation.hpp).
  template <class PhaseOf, class Each>
  void for_each_batch(ConstMatrixRef<Scalar> x, const ConstMatrixRef<Scalar>* y, Index batch_size, PhaseOf phase_of,
                      Each each, Layers layers = {});
  static Phase inference(std::size_t) { return Phase::inference; }
  /// predict's loop: inference-phase outputs of `layers` for x, batch by batch, into out (sized).
  void predict_batches(ConstMatrixRef<Scalar> x, Matrix<Scalar>& out, Index batch_size, Layers layers = {});

  /// The training step on batch (x, y), in two halves so that fit can ask its callbacks between them whether
  /// to apply the update: forward (training phase) and the loss with its gradient, then backward and the update.
  /// x is the input of the first of `layers` (after a cached prefix, its output).
  Scalar forward_loss(const Matrix<Scalar>& x, const Matrix<Scalar>& y, const Vector<Scalar>* sample_weight,
                      Layers layers = {});
  void backward(const Matrix<Scalar>& x, std::size_t first = 0);
  void apply_update();
  /// fit's work; `replicas` (null on one process) does a data-parallel fit's part (model/replicated_fit.hpp).
  History fit_on(ConstMatrixRef<Scalar> x, ConstMatrixRef<Scalar> y, const FitOptions<Scalar>& options,
                 detail::ReplicaFit<Scalar>* replicas);
  /// fit's frozen-prefix cache: made if the options allow and it fits (said if verbose > 0); dropped once the
  /// prefix is shorter.
  void cache_prefix(detail::PrefixOutputs<Scalar>& cache, ConstMatrixRef<Scalar> x,
                    const ConstMatrixRef<Scalar>* x_val, const FitOptions<Scalar>& options, Index val_batch_size);
  void check_prefix_cache(detail::PrefixOutputs<Scalar>& cache, const FitOptions<Scalar>& options);
  /// The names every epoch's logs hold, in History order.
  std::vector<std::string> log_names(bool validation) const;
  Logs evaluate_logs(ConstMatrixRef<Scalar> x, ConstMatrixRef<Scalar> y, const Vector<Scalar>* sample_weight,
                     Index batch_size, const char* prefix, Layers layers = {},
                     detail::ReplicaFit<Scalar>* replicas = nullptr);
  /// The public calls' checks, then their work (sample_weight may be null).
  Logs checked_evaluate(const char* call, ConstMatrixRef<Scalar> x, ConstMatrixRef<Scalar> y,
                        const Vector<Scalar>* sample_weight, Index batch_size);
  Scalar checked_train_step(ConstMatrixRef<Scalar> x, ConstMatrixRef<Scalar> y, const Vector<Scalar>* sample_weight);
  void check_fit_options(const FitOptions<Scalar>& options) const;

  void cache_parameters() {
    parameters_.clear();
    for (auto& l : layers_) parameters_.push_back(l->parameters());
  }
  std::vector<Parameter<Scalar>> all_tensors() const {
    std::vector<Parameter<Scalar>> out;
    for (const auto& l : layers_)
      for (const auto& tensors : {l->parameters(), l->state()}) out.insert(out.end(), tensors.begin(), tensors.end());
    return out;
  }
  template <class Predicate>
  Index count(Predicate include) const {
    Index n = 0;
    for (const auto& l : layers_)
      if (include(*l)) n += l->parameter_count();
    return n;
  }

  std::vector<std::shared_ptr<Layer<Scalar>>> layers_;
  Rng init_rng_;
  std::unique_ptr<detail::LossFunctionBase<Scalar>> loss_;
  std::unique_ptr<Optimizer<Scalar>> optimizer_;
  std::vector<Metric> metrics_;
  bool compiled_ = false, training_ = false;  // training_: fit or train_on_batch is running
  std::vector<std::vector<Parameter<Scalar>>> parameters_;  // per layer, cached at compile()
  detail::Penalties<Scalar> penalties_;  // the regularizers' gradient buffers
  const BatchShard* shard_ = nullptr;     // a data-parallel fit's: where this replica's batch lies in the global one

  // Reused buffers: a steady-state step allocates nothing.
  Matrix<Scalar> batch_x_, batch_y_;  // the training batch (gathered rows)
  Vector<Scalar> batch_w_, eval_w_;   // their sample weights (training; evaluation)
  Matrix<Scalar> eval_x_, eval_y_;    // evaluate/predict batches; separate so a callback's evaluate is harmless
  Matrix<Scalar> loss_grad_;          // dLoss/dOutput
};

}  // namespace minidl

#include "model/structure.hpp"
#include "model/training.hpp"
#include "model/replicated_fit.hpp"
#include "model/evaluation.hpp"
#include "model/prefix_cache.hpp"
#include "model/summary.hpp"
