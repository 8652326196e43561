// minidl — Sequential's structural calls: appending a model, copying one,
// compiling, setting every weight (declared, with their contracts, in
// sequential.hpp, which includes this file at its end).
#pragma once

#include <algorithm>
#include <memory>
#include <type_traits>

#include "../sequential.hpp"
#include "../warnings.hpp"

namespace minidl {

template <class Scalar>
void Sequential<Scalar>::add(const Sequential& other) {
  check_not_training("add");
  if (&other == this) throw ValueError("Sequential::add: a model cannot be appended to itself");
  if (other.layers_.empty()) throw ValueError("Sequential::add: the model to append has no layers");
  for (const auto& l : other.layers_)
    if (std::find(layers_.begin(), layers_.end(), l) != layers_.end())
      throw ValueError(detail::message("Sequential::add: ", l->describe(), " is already in this model; a layer can ",
                                       "be used once per model (add(other.clone()) appends a copy)"));
  if (!layers_.empty() && other.input_shape() != output_shape())
    throw ShapeError(detail::message("Sequential::add: the appended model expects input shape ",
                                     other.input_shape().str(), ", the last layer, ", layers_.back()->describe(),
                                     ", outputs ", output_shape().str()));
  layers_.insert(layers_.end(), other.layers_.begin(), other.layers_.end());
  compiled_ = false;
}

template <class Scalar>
Sequential<Scalar> Sequential<Scalar>::clone() const {
  Sequential copy(0);
  copy.init_rng_ = init_rng_;
  for (const auto& l : layers_) copy.layers_.push_back(std::shared_ptr<Layer<Scalar>>(l->clone()));
  if (loss_) copy.loss_ = loss_->clone();
  if (optimizer_) copy.optimizer_ = optimizer_->clone();
  copy.metrics_ = metrics_;
  copy.compiled_ = compiled_;
  if (compiled_) copy.cache_parameters();
  return copy;
}

template <class Scalar>
Scalar Sequential<Scalar>::regularization_loss() const {
  std::vector<std::vector<Parameter<Scalar>>> parameters;  // fresh views: the model need not be compiled
  for (const auto& l : layers_) parameters.push_back(l->parameters());
  return detail::Penalties<Scalar>::weights(layers_, parameters);
}

template <class Scalar>
Layer<Scalar>& Sequential<Scalar>::add_owned(std::shared_ptr<Layer<Scalar>> layer) {
  check_not_training("add");
  if (layer->name().empty()) layer->set_name(unique_name(layer->type()));  // so errors can name it
  if (layers_.empty()) {
    if (!layer->built())
      throw ShapeError(detail::message("Sequential::add: the first layer, ", layer->describe(),
                                       ", needs an input shape"));
  } else {
    layer->build(layers_.back()->output_shape());  // throws on a mismatch, naming the layer
  }
  if (!layer->initialized()) layer->initialize(init_rng_);
  layers_.push_back(std::move(layer));
  compiled_ = false;
  return *layers_.back();
}

template <class Scalar>
template <class Loss, class Opt>
void Sequential<Scalar>::compile(const Loss& loss, const Opt& optimizer, std::vector<Metric> metrics) {
  static_assert(std::is_base_of_v<Optimizer<Scalar>, Opt>,
                "compile: the optimizer must be a minidl::Optimizer of the model's scalar type");
  check_not_training("compile");
  checked_back();
  for (const Metric& m : metrics) m.template check_scalar<Scalar>("Sequential::compile");
  auto opt = std::make_unique<Opt>(optimizer);
  std::vector<Index> sizes;
  for (auto& l : layers_)
    for (const auto& p : l->parameters()) sizes.push_back(p.size);
  opt->build(sizes);
  loss_ = std::make_unique<detail::LossFunction<Scalar, Loss>>(loss);
  // Keras 3 warns too: from_logits on probabilities squashes them twice.
  if (const char* last = layers_.back()->output_activation(); loss_->expects_logits_not(last))
    detail::warn(detail::message("Sequential::compile: ", loss_->name(), " has from_logits = true, but the last ",
                                 "layer, ", layers_.back()->describe(), ", ends with a ", last, " activation: its "
                                 "outputs are probabilities, not logits. Was this intended? (use from_logits = false, "
                                 "or a linear last layer)"));
  optimizer_ = std::move(opt);
  metrics_ = std::move(metrics);
  cache_parameters();
  compiled_ = true;
}

template <class Scalar>
void Sequential<Scalar>::set_weights(const std::vector<Vector<Scalar>>& weights) {
  auto tensors = all_tensors();
  if (weights.size() != tensors.size())
    throw ShapeError(detail::message("Sequential::set_weights: got ", weights.size(), " tensors, expected ",
                                     tensors.size()));
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    if (weights[i].size() != tensors[i].size)
      throw ShapeError(detail::message("Sequential::set_weights: tensor ", i, " (", tensors[i].name, ") has ",
                                       weights[i].size(), " values, expected ", tensors[i].size));
    detail::check_tensor_values(tensors[i], weights[i],
                                detail::message("Sequential::set_weights: tensor ", i, " (", tensors[i].name, ")"));
  }
  for (std::size_t i = 0; i < tensors.size(); ++i) tensors[i].values() = weights[i];
}

}  // namespace minidl
