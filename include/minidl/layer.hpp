// minidl — the layer interface.
//
// Every layer has two forward paths, chosen by an explicit argument of each
// call, never by a mode stored in the layer:
//   Phase::training  — what fit/train_on_batch run: Dropout drops, BatchNorm
//                      normalizes with batch statistics (unless frozen with the
//                      moving-statistics policy) and updates its moving statistics;
//   Phase::inference — what evaluate/predict run: Dropout is the identity,
//                      BatchNorm uses its moving statistics.
// backward() differentiates the last *training-phase* forward.
//
// As in frugally-deep, the public entry points are non-virtual: they validate
// shapes once, size the output buffers, then call the protected virtual
// implementation. Buffers are reused while the batch size stays the same, so a
// steady-state training step does not allocate.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "error.hpp"
#include "layer_config.hpp"
#include "parameter.hpp"
#include "random.hpp"
#include "regularizers.hpp"
#include "replicas.hpp"
#include "tensor.hpp"

namespace minidl {

/// Which forward path a call runs. Passed to every forward call; never stored.
enum class Phase { training, inference };

inline const char* to_string(Phase phase) { return phase == Phase::training ? "training" : "inference"; }

/// What a frozen BatchNorm normalizes with in the training phase (see layers/batch_norm.hpp).
enum class FrozenBatchNormPolicy { moving_statistics, batch_statistics };

/// One weight tensor a layer will have: its name, its shape in Keras's layout
/// and that layout's axes in words (for messages).
struct WeightShape {
  std::string name;
  Shape shape;
  const char* layout = "";
};

/// How a PyTorch state_dict holds a layer's tensors (io/pytorch.hpp): each
/// minidl tensor's name in the module's state_dict ("kernel" -> "weight"),
/// names PyTorch saves that minidl does not load, or why the layer, as
/// configured, has no counterpart. A layer with weights and no tensor names
/// has none; io/pytorch.hpp's PyTorchLoadOptions::tensor_names can give them.
struct PyTorchCounterpart {
  std::vector<std::pair<std::string, std::string>> tensors;
  std::vector<std::string> unused;
  std::string problem;
};

template <class Scalar>
class Layer {
 public:
  using scalar_type = Scalar;
  virtual ~Layer() = default;

  /// Type name as Keras prints it: "Dense", "BatchNormalization", ...
  virtual const char* type() const = 0;
  /// A deep copy: weights, statistics, generator state, frozen and pinned flags, and name.
  virtual std::unique_ptr<Layer> clone() const = 0;

  const std::string& name() const { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }

  /// The constructor arguments that make this layer again (Keras's get_config()), which save_model writes
  /// and the type's from_config() reads (layers/registry.hpp). Default: none.
  virtual LayerConfig config() const { return {}; }
  /// The activation its output ends with ("softmax", "sigmoid", ...; ""): for compile's from_logits warning.
  virtual const char* output_activation() const { return ""; }
  /// The weight tensors the layer has once built with `input`, in Keras's
  /// layout: what load_model checks a file against before it allocates them,
  /// and the shapes parameters() and state() report. Default: not declared
  /// (std::nullopt): a load then builds the layer before it checks its
  /// tensors, and each tensor's shape is its flat size.
  virtual std::optional<std::vector<WeightShape>> weight_shapes(const Shape& input) const {
    (void)input;
    return std::nullopt;
  }
  /// The layer's PyTorch counterpart (see PyTorchCounterpart); default: none.
  virtual PyTorchCounterpart pytorch_counterpart() const { return {}; }
  /// Layers that can normalize a frozen layer's training batches with batch statistics (BatchNorm) follow it.
  virtual void set_frozen_batchnorm_policy(FrozenBatchNormPolicy policy) { (void)policy; }
  /// Layers with batch statistics (BatchNorm) sum them over a data-parallel fit's replicas when true.
  virtual void set_synchronized_statistics(bool synchronized) { (void)synchronized; }

  const Shape& input_shape() const { return input_shape_; }
  const Shape& output_shape() const { return output_shape_; }
  Index input_size() const { return input_shape_.size(); }
  Index output_size() const { return output_shape_.size(); }

  /// A frozen layer's parameters are never changed by an optimizer, and a frozen
  /// BatchNorm never changes its moving statistics. Gradients still flow
  /// through a frozen layer to the layers below it.
  bool frozen() const { return frozen_; }
  void set_frozen(bool frozen) { frozen_ = frozen; }

  /// A layer pinned to the inference phase runs its inference path in the
  /// training phase too (Keras's `base(x, training=False)`): a pinned Dropout
  /// keeps every unit, a pinned BatchNorm normalizes with its moving
  /// statistics and never updates them. Gradients flow through the function
  /// it computes, and its weights still train unless it is also frozen.
  bool inference_pinned() const { return inference_pinned_; }
  void set_inference_pinned(bool pinned) { inference_pinned_ = pinned; }

  /// Keras's activity_regularizer, settable on any layer: the model adds
  /// penalty(output) / rows to every loss it computes (regularizers.hpp).
  const std::optional<Regularizer>& activity_regularizer() const { return activity_regularizer_; }
  void set_activity_regularizer(std::optional<Regularizer> regularizer) { activity_regularizer_ = regularizer; }
  /// The penalty on trainable tensor `tensor` ("kernel", "gamma", ...), or null for none
  /// (Dense and Conv2D: kernel_regularizer, bias_regularizer; BatchNorm: gamma_ and beta_regularizer).
  virtual const Regularizer* weight_regularizer(const std::string& tensor) const {
    (void)tensor;
    return nullptr;
  }

  /// What the layer does differently in the training phase, in a few words
  /// ("drops 20% of units"); empty for a layer whose phases never differ.
  virtual std::string phase_behaviour() const { return ""; }
  /// True if a training-phase forward now computes another function than an
  /// inference-phase one (Dropout with a rate > 0; BatchNorm unless frozen
  /// with the moving-statistics policy); never for a pinned layer.
  bool phases_differ() const { return !inference_pinned_ && phases_differ_impl(); }

  /// True once the input shape is known. Layers that adapt to their input
  /// (Dropout, activations, a BatchNorm made without a size) are built by
  /// Sequential::add from the previous layer's output shape, or by build().
  bool built() const { return input_shape_.rank() > 0; }
  /// Fixes the input shape of a layer made without one. Building an already
  /// built layer with its own input shape is a no-op; with another shape, an error.
  void build(const Shape& input) {
    if (built()) {
      if (input != input_shape_)
        throw ShapeError(detail::message(describe(), ": expects input shape ", input_shape_.str(),
                                         ", got ", input.str()));
      return;
    }
    output_shape_ = build_impl(input);  // may throw: then nothing is changed
    input_shape_ = input;
  }

  /// Draws initial weights from `rng`. Layers without random weights ignore it.
  virtual void initialize(Rng& rng) { (void)rng; }
  /// False until a layer with random weights has been initialized (by Sequential::add, a seed, initialize()).
  virtual bool initialized() const { return true; }

  /// The state of the layer's random generator (Dropout's masks), which BackupAndRestore saves so that a resumed
  /// run draws what the uninterrupted one would have. Default: none. A layer that draws while training overrides
  /// both, with generator_words() and restore_generator().
  virtual std::vector<std::uint64_t> generator_state() const { return {}; }
  /// Restores what generator_state() returned. Throws ValueError naming the layer, which is unchanged, for a
  /// state of another size or one no generator can have.
  virtual void set_generator_state(const std::vector<std::uint64_t>& state) {
    if (!state.empty())
      throw ValueError(detail::message(describe(), ": set_generator_state: got ", state.size(),
                                       " words, expected 0 (the layer has no generator)"));
  }

  /// Runs the forward path of `phase` on a batch (N x input_size()).
  /// Returns the output (N x output_size()), owned by the layer and valid until
  /// the next forward call.
  const Matrix<Scalar>& forward(const Matrix<Scalar>& x, Phase phase) {
    check_input(x, "forward");
    if (!initialized())
      throw StateError(detail::message(describe(), ": weights are not initialized; add the layer to a "
                                                   "Sequential or call initialize(rng) first"));
    check_batch(x.rows(), phase);  // before anything changes
    output_.resize(x.rows(), output_size());
    training_rows_ = 0;  // the backward cache is only valid after a training-phase forward
    if (phase == Phase::training) {
      // A pinned layer runs its inference path, which its backward_impl then differentiates.
      if (runs_inference_path(phase))
        forward_inference(x, output_);
      else
        forward_training(x, output_);
      training_rows_ = x.rows();
    } else {
      forward_inference(x, output_);
    }
    return output_;
  }

  /// Throws (ShapeError, ValueError) if forward() would reject a batch of `rows` samples in `phase`, changing
  /// nothing: the layer's own requirements (BatchNorm with the pytorch convention needs more than one value per
  /// channel to train) and the size of its output. A model asks every layer before the first one runs, so that
  /// a rejected batch leaves no layer changed.
  void check_batch(Index rows, Phase phase) const {
    detail::checked_size([this] { return describe() + ": output of a batch (rows x values per sample)"; },
                         {rows, output_size()});
    check_batch_impl(rows, runs_inference_path(phase) ? Phase::inference : phase);
  }

  /// The output of the last forward call (the matrix forward() returned).
  const Matrix<Scalar>& output() const { return output_; }

  /// Where this replica's rows lie in the global batch of a data-parallel fit (replicas.hpp), set by fit for its
  /// duration; null otherwise. Layers whose training step looks across rows (Dropout, BatchNorm) read it.
  const BatchShard* batch_shard() const { return batch_shard_.pointer; }
  void set_batch_shard(const BatchShard* shard) { batch_shard_.pointer = shard; }

  /// Back-propagates `grad_output` (N x output_size(), dLoss/dOutput) through the
  /// last training-phase forward, whose input must be passed again as `x`.
  /// Stores the parameter gradients (unless frozen) and returns dLoss/dx
  /// (N x input_size()), owned by the layer. With `need_input_grad` false the
  /// input gradient is not computed (the first layer of a model needs none) and
  /// the returned matrix is empty.
  const Matrix<Scalar>& backward(const Matrix<Scalar>& x, const Matrix<Scalar>& grad_output,
                                 bool need_input_grad = true) {
    check_input(x, "backward");
    if (training_rows_ == 0)
      throw StateError(describe() + ": backward() needs a training-phase forward() first");
    if (x.rows() != training_rows_)
      throw ShapeError(detail::message(describe(), ": backward() got a batch of ", x.rows(),
                                       " rows, the last training forward had ", training_rows_));
    if (grad_output.rows() != x.rows() || grad_output.cols() != output_size())
      throw ShapeError(detail::message(describe(), ": backward() gradient is ", grad_output.rows(), " x ",
                                       grad_output.cols(), ", expected ", x.rows(), " x ", output_size()));
    if (need_input_grad) {
      grad_input_.resize(x.rows(), input_size());
      backward_impl(x, grad_output, &grad_input_);
    } else {
      backward_impl(x, grad_output, nullptr);
    }
    return grad_input_;
  }

  /// Trainable weights with their gradients (empty for layers without weights).
  std::vector<Parameter<Scalar>> parameters() {
    std::vector<Parameter<Scalar>> out;
    collect_parameters(out);
    attach_shapes(out);
    return out;
  }
  /// Non-trainable state, e.g. BatchNorm's moving mean and variance.
  std::vector<Parameter<Scalar>> state() {
    std::vector<Parameter<Scalar>> out;
    collect_state(out);
    attach_shapes(out);
    return out;
  }
  Index parameter_count() const { return count(&Layer::collect_parameters); }
  Index state_count() const { return count(&Layer::collect_state); }

  /// "Dense 'dense_1'": how messages name this layer.
  std::string describe() const { return std::string(type()) + " '" + name_ + "'"; }

 protected:
  Layer(Shape input_shape, Shape output_shape)
      : input_shape_(input_shape), output_shape_(output_shape) {}
  /// A layer whose shapes are fixed later by build().
  Layer() = default;

  /// Called once by build() with the input shape; returns the output shape and
  /// sizes anything that depends on the input (BatchNorm's statistics). Must
  /// validate before changing anything. Default: shape-preserving.
  virtual Shape build_impl(const Shape& input) { return input; }
  Layer(const Layer&) = default;
  Layer& operator=(const Layer&) = default;

  /// Layer-specific checks of a batch of `rows` samples in `phase`, run before
  /// anything changes (e.g. BatchNorm's "more than 1 value per channel"); they
  /// may depend on the batch size and the layer's settings, not on the
  /// values. Throw to reject.
  virtual void check_batch_impl(Index rows, Phase phase) const { (void)rows, (void)phase; }
  /// Whether the two phases compute different functions, pinning aside
  /// (see phases_differ()). A layer that returns true must also accept a
  /// backward() after a forward_inference() made in the training phase
  /// (a pinned layer's): backward_impl then differentiates the inference path.
  virtual bool phases_differ_impl() const { return false; }
  /// y = f(x) in the training phase; y is already sized N x output_size().
  virtual void forward_training(const Matrix<Scalar>& x, Matrix<Scalar>& y) = 0;
  /// y = f(x) in the inference phase; y is already sized N x output_size().
  virtual void forward_inference(const Matrix<Scalar>& x, Matrix<Scalar>& y) = 0;
  /// Parameter gradients from dy (skipped when frozen); dx if `dx` is not null
  /// (already sized N x input_size()). The last training output is `output()`.
  virtual void backward_impl(const Matrix<Scalar>& x, const Matrix<Scalar>& dy, Matrix<Scalar>* dx) = 0;

  /// generator_state() and set_generator_state() of a layer with one Rng.
  static std::vector<std::uint64_t> generator_words(const Rng& rng) {
    const Rng::State words = rng.state();
    return {words.begin(), words.end()};
  }
  void restore_generator(Rng& rng, const std::vector<std::uint64_t>& state) const {
    Rng::State words{};
    if (state.size() != words.size())
      throw ValueError(detail::message(describe(), ": set_generator_state: got ", state.size(), " words, expected ",
                                       words.size(), " (one generator's state)"));
    std::copy(state.begin(), state.end(), words.begin());
    if (words == Rng::State{})
      throw ValueError(describe() + ": set_generator_state: four zero words, a state no generator has");
    rng.set_state(words);
  }

  virtual void collect_parameters(std::vector<Parameter<Scalar>>& out) { (void)out; }
  virtual void collect_state(std::vector<Parameter<Scalar>>& out) { (void)out; }

  /// The one door through which a layer's public setters write a weight:
  /// target = value if value has target's shape and its values are finite
  /// (and >= 0 for a `non_negative` tensor); otherwise a ShapeError or
  /// ValueError naming the layer and the tensor, and target is unchanged.
  /// target keeps its storage (same shape, so Eigen does not reallocate):
  /// the views that parameters() and a compiled optimizer hold stay valid.
  template <class Tensor>
  void assign_tensor(Tensor& target, const Tensor& value, const char* tensor, bool non_negative = false) const {
    const auto shape = [](const Tensor& t) {
      return Tensor::ColsAtCompileTime == 1 ? detail::message(t.size(), " values")
                                            : detail::message(t.rows(), " x ", t.cols());
    };
    const std::string what = describe() + ": " + tensor;
    if (value.rows() != target.rows() || value.cols() != target.cols())
      throw ShapeError(detail::message(what, ": expected ", shape(target), ", got ", shape(value)));
    Parameter<Scalar> view;
    view.non_negative = non_negative;
    detail::check_tensor_values(view, Eigen::Map<const Vector<Scalar>>(value.data(), value.size()), what);
    target = value;
  }

 private:
  void check_input(const Matrix<Scalar>& x, const char* call) const {
    if (!built())
      throw StateError(detail::message(describe(), ": ", call, "() on a layer without an input shape; add it "
                                                   "to a Sequential or call build(shape) first"));
    if (x.cols() != input_size())
      throw ShapeError(detail::message(describe(), ": ", call, "() input has ", x.cols(),
                                       " values per sample, expected ", input_size(), " (input shape ",
                                       input_shape_.str(), ")"));
    if (x.rows() == 0) throw ValueError(detail::message(describe(), ": ", call, "() got an empty batch (0 rows)"));
  }

  Index count(void (Layer::*collect)(std::vector<Parameter<Scalar>>&)) const {
    std::vector<Parameter<Scalar>> views;
    (const_cast<Layer*>(this)->*collect)(views);  // collect only takes addresses
    Index n = 0;
    for (const auto& p : views) n += p.size;
    return n;
  }

  // Each view's shape from weight_shapes(), which must agree with the storage.
  void attach_shapes(std::vector<Parameter<Scalar>>& views) const {
    const auto declared = built() ? weight_shapes(input_shape_) : std::nullopt;
    for (auto& p : views) {
      if (p.size > 0) p.shape = Shape{p.size};
      if (!declared) continue;
      for (const auto& w : *declared)
        if (w.name == p.name) {
          if (w.shape.size() != p.size)
            throw StateError(detail::message(describe(), ": weight_shapes() declares ", p.name, " as ",
                                             w.shape.dims(), ", but the layer holds ", p.size, " values"));
          p.shape = w.shape;
          p.layout = w.layout;
        }
    }
  }

  bool runs_inference_path(Phase phase) const {
    return phase == Phase::inference || (inference_pinned_ && phases_differ_impl());
  }

  std::string name_;
  Shape input_shape_, output_shape_;
  bool frozen_ = false;
  bool inference_pinned_ = false;
  std::optional<Regularizer> activity_regularizer_;
  Matrix<Scalar> output_;      // N x output_size(): the last forward's result
  Matrix<Scalar> grad_input_;  // N x input_size(): the last backward's dLoss/dx
  Index training_rows_ = 0;    // batch size of the last training forward; 0 = no backward cache
  detail::FitOnlyPointer<BatchShard> batch_shard_;  // a copy (clone) made during fit does not keep it
};

/// How a layer names itself in messages: "Conv2D 'conv2d'", or just "Conv2D"
/// before it has a name (in its constructor).
template <class Scalar>
std::string layer_label(const Layer<Scalar>& layer) {
  return layer.name().empty() ? std::string(layer.type()) : layer.describe();
}

/// Implements clone() for a concrete layer (CRTP), so each layer need not.
template <class Derived, class Scalar>
class LayerBase : public Layer<Scalar> {
 public:
  std::unique_ptr<Layer<Scalar>> clone() const override {
    return std::make_unique<Derived>(static_cast<const Derived&>(*this));
  }

 protected:
  using Layer<Scalar>::Layer;
};

}  // namespace minidl
