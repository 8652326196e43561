// minidl — the penalties a model adds to every loss it computes (which ones,
// and their formulas, are in regularizers.hpp): their value after a forward
// pass, and their gradients for the backward pass.
//
// Weight penalties count every regularized trainable tensor, a frozen
// layer's too (a constant then: its weights do not change and get no
// gradient). Activity penalties count the layers' outputs of the forward pass
// just run, in whatever phase it ran: in fit the training-phase outputs, in
// evaluate the inference-phase ones; their gradient flows back through the
// layers below, frozen or not.
#pragma once

#include <memory>
#include <vector>

#include "../layer.hpp"

namespace minidl {
namespace detail {

template <class Scalar>
class Penalties {
  using Layers = std::vector<std::shared_ptr<Layer<Scalar>>>;
  using LayerParameters = std::vector<std::vector<Parameter<Scalar>>>;

 public:
  /// Σ penalty(w) over the regularized tensors; parameters[i] are layer i's parameters().
  static Scalar weights(const Layers& layers, const LayerParameters& parameters) {
    Scalar total(0);
    for (std::size_t i = 0; i < layers.size(); ++i)
      for (const auto& p : parameters[i])
        if (const Regularizer* r = layers[i]->weight_regularizer(p.name)) total += r->penalty(p.values());
    return total;
  }
  /// Σ penalty(y) / rows over the layers with an activity regularizer, y their last forward's output.
  static Scalar activity(const Layers& layers) {
    Scalar total(0);
    for (const auto& layer : layers)
      if (const auto& r = layer->activity_regularizer())
        total += r->penalty(layer->output()) / static_cast<Scalar>(layer->output().rows());
    return total;
  }
  /// Both: what a forward pass adds to the loss.
  static Scalar total(const Layers& layers, const LayerParameters& parameters) {
    return weights(layers, parameters) + activity(layers);
  }

  /// Adds d penalty/dw to the gradients of the regularized tensors of every
  /// layer that is not frozen (call after the backward pass, before the update).
  static void add_weight_gradients(const Layers& layers, const LayerParameters& parameters) {
    for (std::size_t i = 0; i < layers.size(); ++i) {
      if (layers[i]->frozen()) continue;
      for (const auto& p : parameters[i])
        if (const Regularizer* r = layers[i]->weight_regularizer(p.name)) {
          auto grad = p.gradient();
          r->add_gradient(p.values(), grad, Scalar(1));
        }
    }
  }

  /// dLoss/d(output of layer i), given `grad`, the loss's gradient from above:
  /// `grad` itself, or with an activity regularizer grad + d penalty(y)/dy / rows
  /// (the batch's rows; a data-parallel fit's global batch's),
  /// in a buffer of layer i's that keeps its size while the batch size does.
  const Matrix<Scalar>& output_gradient(std::size_t i, const Layer<Scalar>& layer, const Matrix<Scalar>& grad,
                                        Index rows) {
    const auto& r = layer.activity_regularizer();
    if (!r) return grad;
    if (buffers_.size() <= i) buffers_.resize(i + 1);  // once per model: empty matrices hold no memory
    Matrix<Scalar>& out = buffers_[i];
    out = grad;
    r->add_gradient(layer.output(), out, Scalar(1) / static_cast<Scalar>(rows));
    return out;
  }

 private:
  std::vector<Matrix<Scalar>> buffers_;  // per layer index: the gradient with its activity penalty's
};

}  // namespace detail
}  // namespace minidl
