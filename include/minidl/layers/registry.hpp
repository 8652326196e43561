// minidl — layer types by name: what load_model makes a layer from, and how a
// user's own layer type becomes one minidl can save and load.
//
// Each layer type describes itself: config() gives its constructor arguments,
// a static from_config(const LayerConfig&) makes it again (a type without one
// is default-constructed), weight_shapes() declares its tensors. The registry
// only maps a type name (Layer::type()) to that function; the built-in table
// below is the one list of minidl's layer types. A user registers a type of
// their own with one line, before the first load_model that needs it:
//
//   minidl::register_layer<ScaledNoise>("ScaledNoise");   // float and double
//
// One registry per scalar type, filled on first use (so a program that uses
// only float builds no double layers for it). Registering is not thread-safe
// against a concurrent load_model: register at start-up.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "../layer.hpp"
#include "activation_layer.hpp"
#include "batch_norm.hpp"
#include "conv2d.hpp"
#include "dense.hpp"
#include "dropout.hpp"
#include "flatten.hpp"
#include "pooling.hpp"

namespace minidl {

namespace detail {
template <class L, class = void>
struct has_from_config : std::false_type {};
template <class L>
struct has_from_config<L, std::void_t<decltype(L::from_config(std::declval<const LayerConfig&>()))>>
    : std::true_type {};
}  // namespace detail

template <class Scalar>
class LayerRegistry {
 public:
  using Creator = std::function<std::unique_ptr<Layer<Scalar>>(const LayerConfig&)>;

  /// The registry of layers of `Scalar`, holding minidl's layer types from the start.
  static LayerRegistry& instance() {
    static LayerRegistry registry;
    return registry;
  }

  /// Makes `type` known: create(type, config) then returns
  /// L::from_config(config) (or L() for a type without from_config).
  /// Registering a name again replaces its creator.
  template <class L>
  void add(const std::string& type) {
    static_assert(std::is_base_of_v<Layer<Scalar>, L>, "register_layer: L must derive from minidl::Layer<Scalar>");
    static_assert(detail::has_from_config<L>::value || std::is_default_constructible_v<L>,
                  "register_layer: L needs a static L from_config(const LayerConfig&) or a default constructor");
    add(type, [](const LayerConfig& config) -> std::unique_ptr<Layer<Scalar>> {
      if constexpr (detail::has_from_config<L>::value) return std::make_unique<L>(L::from_config(config));
      else return std::make_unique<L>();
    });
  }
  void add(const std::string& type, Creator creator) {
    if (type.empty() || !creator) throw ValueError("register_layer: needs a type name and a creator");
    creators_[type] = std::move(creator);
  }

  bool contains(const std::string& type) const { return creators_.count(type) != 0; }

  /// A new, unbuilt layer of `type` made from `config`. Throws ValueError
  /// for an unknown type (listing the known ones) and whatever the type's
  /// from_config throws for a bad configuration; StateError if the layer made
  /// is not of the type it was registered as (its type() differs).
  std::unique_ptr<Layer<Scalar>> create(const std::string& type, const LayerConfig& config) const {
    const auto it = creators_.find(type);
    if (it == creators_.end())
      throw ValueError(detail::message("unknown layer type '", type.size() <= 100 ? type : type.substr(0, 100) + "...",
                                       "' (known: ", known(), "; a type of your own needs "
                                       "register_layer<Type>(\"", type.substr(0, 100), "\") first)"));
    auto layer = it->second(config);
    if (!layer || layer->type() != type)
      throw StateError(detail::message("register_layer: the creator registered as '", type, "' made ",
                                       layer ? "a layer of type '" + std::string(layer->type()) + "'" : "nothing"));
    return layer;
  }

  /// The known type names, comma-separated, in name order.
  std::string known() const {
    std::string list;
    for (const auto& entry : creators_) list += (list.empty() ? "" : ", ") + entry.first;
    return list;
  }

 private:
  // minidl's own layer types: the one table of them.
  LayerRegistry() {
    add<Dense<Scalar>>("Dense");
    add<Conv2D<Scalar>>("Conv2D");
    add<MaxPooling2D<Scalar>>("MaxPooling2D");
    add<AveragePooling2D<Scalar>>("AveragePooling2D");
    add<GlobalAveragePooling2D<Scalar>>("GlobalAveragePooling2D");
    add<Flatten<Scalar>>("Flatten");
    add<Dropout<Scalar>>("Dropout");
    add<BatchNorm<Scalar>>("BatchNormalization");
    add<ReLU<Scalar>>("ReLU");
    add<Sigmoid<Scalar>>("Sigmoid");
    add<Tanh<Scalar>>("Tanh");
    add<Softmax<Scalar>>("Softmax");
    add<Linear<Scalar>>("Linear");
    add<LeakyReLU<Scalar>>("LeakyReLU");
    add<ELU<Scalar>>("ELU");
    add<GELU<Scalar>>("GELU");
    add<SiLU<Scalar>>("SiLU");
    add<Softplus<Scalar>>("Softplus");
    add<ReLU6<Scalar>>("ReLU6");
  }

  std::map<std::string, Creator> creators_;
};

/// Registers the layer class `L` (a Layer<float> or Layer<double>) under
/// `type`, which must be what its type() returns. Returns true, so that a
/// registration can initialize a variable at namespace scope.
template <class L>
bool register_layer(const std::string& type) {
  LayerRegistry<typename L::scalar_type>::instance().template add<L>(type);
  return true;
}
/// Registers the class template `L` for both float and double.
template <template <class> class L>
bool register_layer(const std::string& type) {
  LayerRegistry<float>::instance().template add<L<float>>(type);
  LayerRegistry<double>::instance().template add<L<double>>(type);
  return true;
}

}  // namespace minidl
