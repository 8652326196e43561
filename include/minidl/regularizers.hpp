// minidl — weight and activity penalties: Keras's L1, L2 and L1L2
// (keras/src/regularizers/regularizers.py).
//
//   penalty(x)      = l1·Σ|x| + l2·Σx²        (a term whose factor is 0 is left out, as Keras)
//   d penalty / dx  = l1·sign(x) + 2·l2·x     (sign(0) = 0: the gradient of |x| at 0 in TF, JAX and PyTorch)
//
// A layer takes them where Keras does: kernel_regularizer and
// bias_regularizer (Dense, Conv2D), gamma_regularizer and beta_regularizer
// (BatchNorm), and activity_regularizer on any layer
// (Layer::set_activity_regularizer). The model adds, to every loss it
// computes (fit, train_on_batch, evaluate, test_on_batch, validation):
//   Σ penalty(w)       over each regularized weight tensor w, frozen layers
//                      included (their term is a constant; see the README's
//                      conventions: Keras 3 leaves it out);
//   Σ penalty(y) / N   over each layer with an activity regularizer, y its
//                      output for the batch of N rows (Keras divides by the
//                      batch size, so that the weighting does not depend on it).
// The penalties are not multiplied by sample weights (Keras).
#pragma once

#include <charconv>
#include <initializer_list>
#include <cmath>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "error.hpp"
#include "layer_config.hpp"
#include "tensor.hpp"

namespace minidl {

class Regularizer {
 public:
  /// Which of Keras's classes it is (they differ only in their defaults and names).
  enum class Kind { L1, L2, L1L2 };

  /// Throws ValueError naming the factor unless l1 and l2 are finite and >= 0 (Keras's validate_float_arg).
  Regularizer(Kind kind, double l1, double l2) : kind_(kind), l1_(checked("l1", l1)), l2_(checked("l2", l2)) {
    if ((kind == Kind::L1 && l2 != 0) || (kind == Kind::L2 && l1 != 0))
      throw ValueError(detail::message("Regularizer: ", name(kind), " takes only ",
                                       kind == Kind::L1 ? "l1" : "l2", "; use L1L2 for both"));
  }

  Kind kind() const { return kind_; }
  double l1() const { return l1_; }
  double l2() const { return l2_; }

  /// l1·Σ|x| + l2·Σx² of any Eigen expression, in its scalar type.
  template <class X>
  typename X::Scalar penalty(const Eigen::DenseBase<X>& x) const {
    using S = typename X::Scalar;
    S total(0);
    if (l1_ != 0) total += static_cast<S>(l1_) * x.derived().array().abs().sum();
    if (l2_ != 0) total += static_cast<S>(l2_) * x.derived().array().square().sum();
    return total;
  }
  /// grad += scale · d penalty(x)/dx, element by element (x and grad the same size).
  template <class X, class G>
  void add_gradient(const Eigen::DenseBase<X>& x, Eigen::DenseBase<G>& grad, typename X::Scalar scale) const {
    using S = typename X::Scalar;
    if (l1_ != 0) grad.derived().array() += (static_cast<S>(l1_) * scale) * x.derived().array().sign();
    if (l2_ != 0) grad.derived().array() += (static_cast<S>(2 * l2_) * scale) * x.derived().array();
  }

  /// "L1(l1=0.01)", "L2(l2=0.001)", "L1L2(l1=0.01, l2=0.001)": how save_model writes it, the
  /// shortest decimal that reads back as the same double.
  std::string str() const {
    std::string s = std::string(name(kind_)) + "(";
    if (kind_ != Kind::L2) s += "l1=" + shortest(l1_);
    if (kind_ == Kind::L1L2) s += ", ";
    if (kind_ != Kind::L1) s += "l2=" + shortest(l2_);
    return s + ")";
  }
  /// Reads what str() writes; anything else is a ValueError quoting the text.
  static Regularizer parse(std::string_view text) {
    const auto fail = [&]() -> Regularizer {
      throw ValueError(detail::message("Regularizer: cannot read '", text.substr(0, 100),
                                       "', expected L1(l1=<number>), L2(l2=<number>) or L1L2(l1=<number>, "
                                       "l2=<number>)"));
    };
    std::string_view rest = text;
    const auto take = [&](std::string_view prefix) {
      if (rest.substr(0, prefix.size()) != prefix) return false;
      rest.remove_prefix(prefix.size());
      return true;
    };
    const auto number = [&](double& value) {
      const auto [end, error] = std::from_chars(rest.data(), rest.data() + rest.size(), value);
      if (error != std::errc()) return false;
      rest.remove_prefix(static_cast<std::size_t>(end - rest.data()));
      return true;
    };
    double l1 = 0, l2 = 0;
    Kind kind;
    if (take("L1L2(l1=")) {
      kind = Kind::L1L2;
      if (!number(l1) || !take(", l2=") || !number(l2)) return fail();
    } else if (take("L1(l1=")) {
      kind = Kind::L1;
      if (!number(l1)) return fail();
    } else if (take("L2(l2=")) {
      kind = Kind::L2;
      if (!number(l2)) return fail();
    } else {
      return fail();
    }
    if (rest != ")") return fail();
    return Regularizer(kind, l1, l2);
  }

  friend bool operator==(const Regularizer& a, const Regularizer& b) {
    return a.kind_ == b.kind_ && a.l1_ == b.l1_ && a.l2_ == b.l2_;
  }
  friend bool operator!=(const Regularizer& a, const Regularizer& b) { return !(a == b); }

 private:
  static const char* name(Kind kind) { return kind == Kind::L1 ? "L1" : kind == Kind::L2 ? "L2" : "L1L2"; }
  static double checked(const char* factor, double value) {
    if (!std::isfinite(value) || value < 0)
      throw ValueError(detail::message("Regularizer: ", factor, " must be a finite number >= 0, got ", value));
    return value;
  }
  static std::string shortest(double value) {
    char buffer[32];
    const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
    return std::string(buffer, result.ptr);
  }

  Kind kind_;
  double l1_, l2_;
};

/// Keras's constructors and their defaults: L1(0.01), L2(0.01), L1L2(0, 0).
namespace regularizers {
inline Regularizer L1(double l1 = 0.01) { return {Regularizer::Kind::L1, l1, 0}; }
inline Regularizer L2(double l2 = 0.01) { return {Regularizer::Kind::L2, 0, l2}; }
inline Regularizer L1L2(double l1 = 0.0, double l2 = 0.0) { return {Regularizer::Kind::L1L2, l1, l2}; }
}  // namespace regularizers

namespace detail {

/// A regularizer as a field of a layer's configuration: its str(), or null for none.
inline LayerConfig::Value regularizer_value(const std::optional<Regularizer>& regularizer) {
  return regularizer ? LayerConfig::Value(regularizer->str()) : LayerConfig::Value(nullptr);
}
/// A layer's weight_regularizer(tensor): the regularizer of the pair named `tensor`, or null.
inline const Regularizer* regularizer_named(
    const std::string& tensor, std::initializer_list<std::pair<const char*, const std::optional<Regularizer>*>> named) {
  for (const auto& [name, regularizer] : named)
    if (tensor == name && *regularizer) return &**regularizer;
  return nullptr;
}
/// Reads such a field; null, or no field (a file written before layers had one), is none.
inline std::optional<Regularizer> config_regularizer(const LayerConfig& config, const std::string& key) {
  if (!config.has(key) || std::holds_alternative<std::nullptr_t>(config.at(key))) return std::nullopt;
  const std::string text = config.string(key);  // a ValueError naming the field for another kind of value
  try {
    return Regularizer::parse(text);
  } catch (const ValueError& e) {
    throw ValueError("field '" + key + "': " + e.what());
  }
}

}  // namespace detail

}  // namespace minidl
