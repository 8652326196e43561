// minidl — a layer's configuration as JSON, and back: what save_model writes
// for each layer and load_model rebuilds it from.
//
// Each layer is {"type": <type()>, "name": ..., "frozen": bool, "config": {...}}, with
// "inference_pinned": true after "frozen" for a layer pinned to the inference phase
// with Keras's argument names in "config":
//   Dense                    units, activation, use_bias, kernel_initializer, seed
//   Conv2D                   filters, kernel_size [h, w], strides [h, w], padding,
//                            activation, use_bias, kernel_initializer, seed
//   MaxPooling2D,
//   AveragePooling2D         pool_size [h, w], strides [h, w], padding
//   Dropout                  rate, seed
//   BatchNormalization       convention ("keras" | "pytorch"), momentum, epsilon,
//                            cumulative_average, frozen_policy
//                            ("moving_statistics" | "batch_statistics")
//   Flatten, GlobalAveragePooling2D, ReLU, Sigmoid, Tanh, Softmax, Linear: {}
// "seed" is an unsigned integer or null. Every field is required; unknown
// fields are ignored.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "../layers/activation_layer.hpp"
#include "../layers/batch_norm.hpp"
#include "../layers/conv2d.hpp"
#include "../layers/dense.hpp"
#include "../layers/dropout.hpp"
#include "../layers/flatten.hpp"
#include "../layers/pooling.hpp"
#include "../sequential.hpp"
#include "safetensors.hpp"

namespace minidl::detail {

using Json = nlohmann::ordered_json;  // keys in the order written: type, name, frozen, config

inline const char* convention_name(BatchNormConvention c) {
  return c == BatchNormConvention::keras ? "keras" : "pytorch";
}
inline const char* policy_name(FrozenBatchNormPolicy p) {
  return p == FrozenBatchNormPolicy::moving_statistics ? "moving_statistics" : "batch_statistics";
}
inline Json seed_json(const std::optional<std::uint64_t>& seed) { return seed ? Json(*seed) : Json(nullptr); }
inline Json size2_json(const std::array<Index, 2>& size) { return Json::array({size[0], size[1]}); }

/// A JSON object with these members, in this order. Built member by member:
/// nlohmann 3.11's nested initializer-list constructor leaked memory here
/// when compiled with clang (LeakSanitizer, in the load fuzz target's saves).
inline Json object(std::initializer_list<std::pair<const char*, Json>> members) {
  Json out = Json::object();
  for (const auto& [key, value] : members) out[key] = value;
  return out;
}

/// The configuration of one layer; throws ValueError for a layer type save_model cannot describe.
template <class S>
Json layer_json(const Layer<S>& layer, std::size_t index) {
  Json c = Json::object();
  if (const auto* d = dynamic_cast<const Dense<S>*>(&layer)) {
    c = object({{"units", d->units()}, {"activation", to_string(d->activation())}, {"use_bias", d->use_bias()},
         {"kernel_initializer", to_string(d->kernel_initializer())}, {"seed", seed_json(d->seed())}});
  } else if (const auto* k = dynamic_cast<const Conv2D<S>*>(&layer)) {
    c = object({{"filters", k->filters()}, {"kernel_size", size2_json(k->kernel_size())},
         {"strides", size2_json(k->strides())}, {"padding", to_string(k->padding())},
         {"activation", to_string(k->activation())}, {"use_bias", k->use_bias()},
         {"kernel_initializer", to_string(k->kernel_initializer())}, {"seed", seed_json(k->seed())}});
  } else if (const auto* m = dynamic_cast<const MaxPooling2D<S>*>(&layer)) {
    c = object({{"pool_size", size2_json(m->pool_size())}, {"strides", size2_json(m->strides())},
         {"padding", to_string(m->padding())}});
  } else if (const auto* a = dynamic_cast<const AveragePooling2D<S>*>(&layer)) {
    c = object({{"pool_size", size2_json(a->pool_size())}, {"strides", size2_json(a->strides())},
         {"padding", to_string(a->padding())}});
  } else if (const auto* r = dynamic_cast<const Dropout<S>*>(&layer)) {
    c = object({{"rate", r->rate()}, {"seed", seed_json(r->seed())}});
  } else if (const auto* b = dynamic_cast<const BatchNorm<S>*>(&layer)) {
    const BatchNormOptions& o = b->options();
    c = object({{"convention", convention_name(o.convention)}, {"momentum", o.momentum}, {"epsilon", o.epsilon},
         {"cumulative_average", o.cumulative_average}, {"frozen_policy", policy_name(o.frozen_policy)}});
  } else if (!(dynamic_cast<const Flatten<S>*>(&layer) || dynamic_cast<const GlobalAveragePooling2D<S>*>(&layer) ||
               dynamic_cast<const ReLU<S>*>(&layer) || dynamic_cast<const Sigmoid<S>*>(&layer) ||
               dynamic_cast<const Tanh<S>*>(&layer) || dynamic_cast<const Softmax<S>*>(&layer) ||
               dynamic_cast<const Linear<S>*>(&layer))) {
    throw ValueError(message("save_model: layer ", index, " (", layer.describe(),
                             ") is not a layer type save_model can describe; save_weights saves its weights"));
  }
  Json out = object({{"type", layer.type()}, {"name", layer.name()}, {"frozen", layer.frozen()}});
  // Only when set: an unpinned model's file is what it was before the flag existed.
  if (layer.inference_pinned()) out["inference_pinned"] = true;
  out["config"] = c;
  return out;
}

/// Typed access to the fields of one JSON object; every failure is a
/// FormatError naming `where` (the file and the layer) and the field.
class ConfigReader {
 public:
  ConfigReader(const Json& object, std::string where) : object_(object), where_(std::move(where)) {}

  const Json& at(const char* field) const {
    if (!object_.is_object()) fail("", "must be a JSON object, got " + excerpt(object_));
    const auto it = object_.find(field);
    if (it == object_.end()) fail(field, "is missing");
    return *it;
  }
  std::string string(const char* field) const {
    const Json& v = at(field);
    if (!v.is_string()) fail(field, "must be a string, got " + excerpt(v));
    return v.get<std::string>();
  }
  bool boolean(const char* field) const {
    const Json& v = at(field);
    if (!v.is_boolean()) fail(field, "must be true or false, got " + excerpt(v));
    return v.get<bool>();
  }
  /// boolean(field), or `absent` if the object has no such field.
  bool boolean_or(const char* field, bool absent) const {
    return object_.find(field) == object_.end() ? absent : boolean(field);
  }
  double number(const char* field) const {
    const Json& v = at(field);
    if (!v.is_number()) fail(field, "must be a number, got " + excerpt(v));
    return v.get<double>();
  }
  Index positive(const char* field) const { return positive(field, at(field)); }
  std::array<Index, 2> size2(const char* field) const {
    const Json& v = at(field);
    if (!v.is_array() || v.size() != 2) fail(field, "must be [height, width], got " + excerpt(v));
    return {positive(field, v[0]), positive(field, v[1])};
  }
  std::optional<std::uint64_t> seed(const char* field) const {
    const Json& v = at(field);
    if (v.is_null()) return std::nullopt;
    if (!v.is_number_unsigned()) fail(field, "must be null or an integer >= 0, got " + excerpt(v));
    return v.get<std::uint64_t>();
  }
  /// The one of `values` whose name the field holds.
  template <class Enum>
  Enum choice(const char* field, std::initializer_list<Enum> values, const char* (*name)(Enum)) const {
    const std::string s = string(field);
    std::string list;
    for (Enum value : values) {
      if (s == name(value)) return value;
      list += (list.empty() ? "" : ", ") + std::string(name(value));
    }
    fail(field, "must be one of " + list + ", got '" + st_short(s) + "'");
  }
  /// A JSON value as a message quotes it: at most ~100 bytes of its text
  /// (a value from a file can be megabytes long).
  static std::string excerpt(const Json& v) { return st_short(v.dump(), 100); }
  [[noreturn]] void fail(const std::string& field, const std::string& problem) const {
    throw FormatError(where_ + (field.empty() ? ": " : ": field '" + field + "' ") + problem);
  }

 private:
  Index positive(const char* field, const Json& v) const {
    if (!v.is_number_integer() || v.get<std::int64_t>() <= 0) fail(field, "must be an integer > 0, got " + excerpt(v));
    return v.get<Index>();
  }
  const Json& object_;
  std::string where_;
};

inline Activation activation_field(const ConfigReader& r) {
  using A = Activation;
  return r.choice("activation", {A::linear, A::relu, A::sigmoid, A::tanh, A::softmax}, to_string);
}
inline Initializer initializer_field(const ConfigReader& r) {
  using I = Initializer;
  return r.choice("kernel_initializer", {I::glorot_uniform, I::he_uniform, I::he_normal, I::zeros}, to_string);
}
inline Padding padding_field(const ConfigReader& r) {
  return r.choice("padding", {Padding::valid, Padding::same}, to_string);
}

/// What a layer's weights must be in the file, checked before the layer is
/// built: expect(tensor, shape, layout) throws FormatError unless the file
/// holds "<layer name>.<tensor>" with that shape (weights.hpp's check_file_tensor).
using ExpectTensor = std::function<void(const char* tensor, std::vector<std::int64_t> shape, const char* layout)>;

/// Appends the layer `config` describes (type `type`) to `model`; the first
/// layer of the model gets `model_input` as its input shape. The weights the
/// layer will have are passed to `expect` first, so that nothing is allocated
/// for a layer whose tensors the file does not hold. Errors from the layer's
/// constructor or from add (a bad value, a shape mismatch) propagate.
template <class S>
Layer<S>& add_layer(Sequential<S>& model, const std::string& type, const std::string& name, const ConfigReader& r,
                    const Shape& model_input, const ExpectTensor& expect) {
  const bool first = model.size() == 0;
  const Shape& input = first ? model_input : model.output_shape();
  const auto add = [&](auto layer) -> Layer<S>& {
    layer.set_name(name);
    if (first) layer.build(input);
    return model.add(std::move(layer));
  };
  if (type == "Dense") {
    const Index units = r.positive("units");
    const Activation activation = activation_field(r);
    const DenseOptions o{initializer_field(r), r.boolean("use_bias"), r.seed("seed")};
    expect("kernel", {input.size(), units}, " (inputs x units)");
    if (o.use_bias) expect("bias", {units}, "");
    return add(Dense<S>(input.size(), units, activation, o));
  }
  if (type == "Conv2D") {
    const Index filters = r.positive("filters");
    const auto kernel_size = r.size2("kernel_size");
    Conv2DOptions o;
    o.strides = r.size2("strides");
    o.padding = padding_field(r);
    o.activation = activation_field(r);
    o.use_bias = r.boolean("use_bias");
    o.kernel_initializer = initializer_field(r);
    o.seed = r.seed("seed");
    if (input.rank() == 3) {  // else the layer itself rejects the input shape, allocating nothing
      expect("kernel", {kernel_size[0], kernel_size[1], input[2], filters}, " (kh x kw x C x F)");
      if (o.use_bias) expect("bias", {filters}, "");
    }
    return add(Conv2D<S>(filters, kernel_size, o));
  }
  if (type == "MaxPooling2D") return add(MaxPooling2D<S>(r.size2("pool_size"), r.size2("strides"), padding_field(r)));
  if (type == "AveragePooling2D")
    return add(AveragePooling2D<S>(r.size2("pool_size"), r.size2("strides"), padding_field(r)));
  if (type == "Dropout") return add(Dropout<S>(r.number("rate"), r.seed("seed")));
  if (type == "BatchNormalization") {
    BatchNormOptions o;
    o.convention = r.choice("convention", {BatchNormConvention::keras, BatchNormConvention::pytorch}, convention_name);
    o.momentum = r.number("momentum");
    o.epsilon = r.number("epsilon");
    o.cumulative_average = r.boolean("cumulative_average");
    o.frozen_policy = r.choice("frozen_policy", {FrozenBatchNormPolicy::moving_statistics,
                                                 FrozenBatchNormPolicy::batch_statistics},
                               policy_name);
    for (const char* tensor : {"gamma", "beta", "moving_mean", "moving_variance"}) expect(tensor, {input.back()}, "");
    return add(BatchNorm<S>(o));
  }
  if (type == "Flatten") return add(Flatten<S>());
  if (type == "GlobalAveragePooling2D") return add(GlobalAveragePooling2D<S>());
  if (type == "ReLU") return add(ReLU<S>());
  if (type == "Sigmoid") return add(Sigmoid<S>());
  if (type == "Tanh") return add(Tanh<S>());
  if (type == "Softmax") return add(Softmax<S>());
  if (type == "Linear") return add(Linear<S>());
  r.fail("", "unknown layer type '" + st_short(type) + "' (known: Dense, Conv2D, MaxPooling2D, AveragePooling2D, "
             "GlobalAveragePooling2D, Flatten, Dropout, BatchNormalization, ReLU, Sigmoid, Tanh, Softmax, Linear)");
}

}  // namespace minidl::detail
