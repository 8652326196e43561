// minidl — a layer's configuration as JSON, and back: what save_model writes
// for each layer and load_model rebuilds it from.
//
// Each layer is {"type": <type()>, "name": ..., "frozen": bool, "config": {...}}, with
// "inference_pinned": true after "frozen" for a layer pinned to the inference phase, and
// "activity_regularizer": "L2(l2=0.01)" (Regularizer::str()) for a layer that has one.
// "config" is the layer's Layer::config() as a JSON object, with Keras's
// argument names:
//   Dense                    units, activation, use_bias, kernel_initializer, seed,
//                            kernel_regularizer, bias_regularizer
//   Conv2D                   filters, kernel_size [h, w], strides [h, w], padding,
//                            activation, use_bias, kernel_initializer, seed,
//                            kernel_regularizer, bias_regularizer
//   MaxPooling2D,
//   AveragePooling2D         pool_size [h, w], strides [h, w], padding
//   Dropout                  rate, seed
//   BatchNormalization       convention ("keras" | "pytorch"), momentum, epsilon,
//                            cumulative_average, frozen_policy
//                            ("moving_statistics" | "batch_statistics"),
//                            gamma_regularizer, beta_regularizer, synchronized
//   LeakyReLU                negative_slope
//   ELU                      alpha
//   GELU                     approximate (true: the tanh form)
//   Flatten, GlobalAveragePooling2D, ReLU, Sigmoid, Tanh, Softmax, Linear,
//   SiLU, Softplus, ReLU6:   {}
//   a registered user type   whatever its config() writes
// "seed" is an unsigned integer or null; a regularizer is null or its str().
// Every field a layer reads is required, but the regularizers and BatchNorm's
// synchronized (files written before layers had them load without); unknown
// fields are ignored. load_model makes each layer through
// the registry (layers/registry.hpp), so this file knows no layer type.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "../layers/registry.hpp"
#include "../sequential.hpp"
#include "../safetensors/safetensors.hpp"

namespace minidl::detail {

using Json = nlohmann::ordered_json;  // keys in the order written: type, name, frozen, config

/// A JSON object with these members, in this order. Built member by member:
/// nlohmann 3.11's nested initializer-list constructor leaked memory here
/// when compiled with clang (LeakSanitizer, in the load fuzz target's saves).
inline Json object(std::initializer_list<std::pair<const char*, Json>> members) {
  Json out = Json::object();
  for (const auto& [key, value] : members) out[key] = value;
  return out;
}

/// A configuration as a JSON object, field by field in the layer's order.
inline Json config_json(const LayerConfig& config) {
  Json out = Json::object();
  for (const auto& [key, value] : config.fields()) {
    Json& v = out[key];
    std::visit(
        [&v](const auto& x) {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, LayerConfig::Other>) v = x.text;
          else if constexpr (std::is_same_v<T, LayerConfig::List>) {
            v = Json::array();
            for (std::int64_t item : x) v.push_back(item);
          } else {
            v = x;
          }
        },
        value);
  }
  return out;
}

/// A configuration from a JSON object (one of save_model's "config"s).
/// Values of a kind no layer argument has (objects, lists of non-integers)
/// are kept as their text, so that a layer that reads them names them.
inline LayerConfig config_from_json(const Json& object) {
  const auto integer = [](const Json& v, std::int64_t& out) {
    if (v.is_number_unsigned()) {
      if (v.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return false;
      out = static_cast<std::int64_t>(v.get<std::uint64_t>());
      return true;
    }
    if (v.is_number_integer()) return out = v.get<std::int64_t>(), true;
    return false;
  };
  LayerConfig config;
  for (auto it = object.begin(); it != object.end(); ++it) {
    const Json& v = it.value();
    LayerConfig::Value value = LayerConfig::Other{st_short(v.dump(), 100)};
    std::int64_t i = 0;
    if (v.is_null()) value = nullptr;
    else if (v.is_boolean()) value = v.get<bool>();
    else if (integer(v, i)) value = i;
    else if (v.is_number_unsigned()) value = v.get<std::uint64_t>();
    else if (v.is_number_float()) value = v.get<double>();
    else if (v.is_string()) value = v.get<std::string>();
    else if (v.is_array()) {
      LayerConfig::List list;
      for (const Json& item : v)
        if (integer(item, i)) list.push_back(i);
      if (list.size() == v.size()) value = std::move(list);
    }
    config.set(it.key(), value);
  }
  return config;
}

/// The description of one layer; throws ValueError for a layer of a type
/// load_model could not make again (not in the registry).
template <class S>
Json layer_json(const Layer<S>& layer, std::size_t index) {
  if (!LayerRegistry<S>::instance().contains(layer.type()))
    throw ValueError(message("save_model: layer ", index, " (", layer.describe(), ") is of type '", layer.type(),
                             "', which is not registered, so load_model could not make it again: call "
                             "register_layer<Type>(\"", layer.type(), "\") first (save_weights saves its weights)"));
  Json out = object({{"type", layer.type()}, {"name", layer.name()}, {"frozen", layer.frozen()}});
  // Only when set: an unpinned model's file is what it was before the flag existed.
  if (layer.inference_pinned()) out["inference_pinned"] = true;
  if (const auto& r = layer.activity_regularizer()) out["activity_regularizer"] = r->str();
  out["config"] = config_json(layer.config());
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
  bool has(const char* field) const { return object_.is_object() && object_.find(field) != object_.end(); }
  /// boolean(field), or `absent` if the object has no such field.
  bool boolean_or(const char* field, bool absent) const { return has(field) ? boolean(field) : absent; }
  /// The regularizer a string field holds (Regularizer::str()), or none if the object has no such field.
  std::optional<Regularizer> regularizer_or_none(const char* field) const {
    if (!has(field)) return std::nullopt;
    try {
      return Regularizer::parse(string(field));
    } catch (const ValueError& e) {
      fail(field, e.what());
    }
  }
  /// A JSON value as a message quotes it: at most ~100 bytes of its text
  /// (a value from a file can be megabytes long).
  static std::string excerpt(const Json& v) { return st_short(v.dump(), 100); }
  [[noreturn]] void fail(const std::string& field, const std::string& problem) const {
    throw FormatError(where_ + (field.empty() ? ": " : ": field '" + field + "' ") + problem);
  }

 private:
  const Json& object_;
  std::string where_;
};

/// What a layer's weights must be in the file, checked before the layer is
/// built: expect(tensor, shape, layout) throws FormatError unless the file
/// holds "<layer name>.<tensor>" with that shape (weights.hpp's check_file_tensor).
using ExpectTensor = std::function<void(const char* tensor, const Shape& shape, const char* layout)>;

/// Appends the layer of `type` that `config` describes (made by the
/// registry) to `model`; the first layer of the model gets `model_input` as
/// its input shape. The tensors the layer declares (weight_shapes) are passed
/// to `expect` before it is built, so that nothing is allocated for a layer
/// whose tensors the file does not hold; a layer that declares none is
/// checked once built. Errors from the registry, from_config or add (a bad
/// value, a shape mismatch) propagate.
template <class S>
Layer<S>& add_layer(Sequential<S>& model, const std::string& type, const std::string& name,
                    const LayerConfig& config, const Shape& model_input, const ExpectTensor& expect) {
  const bool first = model.size() == 0;
  const Shape& input = first ? model_input : model.output_shape();
  std::unique_ptr<Layer<S>> layer = LayerRegistry<S>::instance().create(type, config);
  layer->set_name(name);
  const auto declared = layer->weight_shapes(input);
  if (declared)
    for (const auto& w : *declared) expect(w.name.c_str(), w.shape, w.layout);
  if (first) layer->build(input);
  Layer<S>& added = model.add(std::move(layer));
  if (!declared)
    for (const auto& tensors : {added.parameters(), added.state()})
      for (const auto& p : tensors) expect(p.name.c_str(), p.shape, p.layout);
  return added;
}

}  // namespace minidl::detail
