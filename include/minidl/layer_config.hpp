// minidl — a layer's configuration: its constructor arguments as named
// values, in the order the layer lists them (Keras's get_config()).
//
// Layer::config() describes a layer; a layer type's static from_config()
// makes one from such a description (layers/registry.hpp). save_model writes
// a configuration as a JSON object and load_model reads it back
// (io/layer_config.hpp); this header itself knows nothing of JSON, so that
// <minidl/minidl.hpp> needs Eigen alone.
//
// Values are JSON's kinds that layer arguments use: null, true/false,
// integers, floating-point numbers, strings and lists of integers. Reading a
// field as the wrong kind, or a missing one, is a ValueError naming the field,
// what was expected and (at most ~100 bytes of) what was found.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "error.hpp"
#include "tensor.hpp"

namespace minidl {

class LayerConfig {
 public:
  using List = std::vector<std::int64_t>;
  /// A value a file held that no layer argument has the kind of (an object, a
  /// list of strings): kept as its text, so that reading it names it.
  struct Other {
    std::string text;
    friend bool operator==(const Other& a, const Other& b) { return a.text == b.text; }
  };
  using Value = std::variant<std::nullptr_t, bool, std::int64_t, std::uint64_t, double, std::string, List, Other>;

  /// Sets field `key` (replacing a field of that name, else appending it).
  /// Integers are stored as int64 (unsigned ones above its range as uint64),
  /// std::array/std::vector of integers as a List, std::nullopt as null.
  template <class T>
  LayerConfig& set(const std::string& key, const T& value) {
    Value v = to_value(value);
    for (auto& field : fields_)
      if (field.first == key) {
        field.second = std::move(v);
        return *this;
      }
    fields_.emplace_back(key, std::move(v));
    return *this;
  }

  const std::vector<std::pair<std::string, Value>>& fields() const { return fields_; }
  bool empty() const { return fields_.empty(); }
  bool has(const std::string& key) const { return find(key) != nullptr; }
  /// The field's value; ValueError if there is none.
  const Value& at(const std::string& key) const {
    const Value* v = find(key);
    if (!v) fail(key, "is missing");
    return *v;
  }

  bool boolean(const std::string& key) const {
    const Value& v = at(key);
    if (const bool* b = std::get_if<bool>(&v)) return *b;
    fail(key, "must be true or false, got " + text(v));
  }
  double number(const std::string& key) const {
    const Value& v = at(key);
    if (const double* d = std::get_if<double>(&v)) return *d;
    if (const std::int64_t* i = std::get_if<std::int64_t>(&v)) return static_cast<double>(*i);
    if (const std::uint64_t* u = std::get_if<std::uint64_t>(&v)) return static_cast<double>(*u);
    fail(key, "must be a number, got " + text(v));
  }
  std::int64_t integer(const std::string& key) const {
    const Value& v = at(key);
    if (const std::int64_t* i = std::get_if<std::int64_t>(&v)) return *i;
    fail(key, "must be an integer, got " + text(v));
  }
  /// An integer > 0 (a size, a count).
  Index positive(const std::string& key) const {
    const Value& v = at(key);
    const std::int64_t* i = std::get_if<std::int64_t>(&v);
    if (!i || *i <= 0) fail(key, "must be an integer > 0, got " + text(v));
    return static_cast<Index>(*i);
  }
  std::string string(const std::string& key) const {
    const Value& v = at(key);
    if (const std::string* s = std::get_if<std::string>(&v)) return *s;
    fail(key, "must be a string, got " + text(v));
  }
  /// [height, width], both > 0 (a kernel size, strides).
  std::array<Index, 2> size2(const std::string& key) const {
    const Value& v = at(key);
    const List* l = std::get_if<List>(&v);
    if (!l || l->size() != 2 || (*l)[0] <= 0 || (*l)[1] <= 0)
      fail(key, "must be [height, width] with both > 0, got " + text(v));
    return {static_cast<Index>((*l)[0]), static_cast<Index>((*l)[1])};
  }
  /// A generator seed: null (none) or an integer >= 0.
  std::optional<std::uint64_t> seed(const std::string& key) const {
    const Value& v = at(key);
    if (std::holds_alternative<std::nullptr_t>(v)) return std::nullopt;
    if (const std::uint64_t* u = std::get_if<std::uint64_t>(&v)) return *u;
    if (const std::int64_t* i = std::get_if<std::int64_t>(&v); i && *i >= 0) return static_cast<std::uint64_t>(*i);
    fail(key, "must be null or an integer >= 0, got " + text(v));
  }
  /// The one of `values` whose name (to_string) the string field holds.
  template <class Enum>
  Enum choice(const std::string& key, std::initializer_list<Enum> values) const {
    const std::string s = string(key);
    if (const auto value = detail::enum_named(s, values)) return *value;
    fail(key, "must be one of " + detail::choice_names(values) + ", got " + text(Value(s)));
  }

  /// A value as messages quote it: JSON-like text, at most ~100 bytes.
  static std::string text(const Value& v) {
    std::string s;
    if (std::holds_alternative<std::nullptr_t>(v)) s = "null";
    else if (const bool* b = std::get_if<bool>(&v)) s = *b ? "true" : "false";
    else if (const std::int64_t* i = std::get_if<std::int64_t>(&v)) s = std::to_string(*i);
    else if (const std::uint64_t* u = std::get_if<std::uint64_t>(&v)) s = std::to_string(*u);
    else if (const double* d = std::get_if<double>(&v)) s = detail::message(*d);
    else if (const std::string* str = std::get_if<std::string>(&v)) s = "'" + *str + "'";
    else if (const List* l = std::get_if<List>(&v)) {
      s = "[";
      for (std::size_t k = 0; k < l->size() && s.size() < 120; ++k) s += (k ? ", " : "") + std::to_string((*l)[k]);
      s += "]";
    } else {
      s = std::get<Other>(v).text;
    }
    return s.size() <= 100 ? s : s.substr(0, 100) + "...";
  }

  friend bool operator==(const LayerConfig& a, const LayerConfig& b) { return a.fields_ == b.fields_; }

 private:
  template <class T>
  static Value to_value(const T& value) {
    if constexpr (std::is_same_v<T, Value>) {
      return value;
    } else if constexpr (std::is_same_v<T, bool>) {
      return value;
    } else if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
      return static_cast<std::int64_t>(value);
    } else if constexpr (std::is_integral_v<T>) {
      if (value <= static_cast<std::uint64_t>(INT64_MAX)) return static_cast<std::int64_t>(value);
      return static_cast<std::uint64_t>(value);
    } else if constexpr (std::is_floating_point_v<T>) {
      return static_cast<double>(value);
    } else if constexpr (std::is_convertible_v<T, std::string>) {
      return std::string(value);
    } else if constexpr (std::is_same_v<T, std::optional<std::uint64_t>>) {
      return value ? to_value(*value) : Value(nullptr);
    } else {  // std::array or std::vector of integers
      List list;
      for (const auto& item : value) list.push_back(static_cast<std::int64_t>(item));
      return list;
    }
  }

  const Value* find(const std::string& key) const {
    for (const auto& field : fields_)
      if (field.first == key) return &field.second;
    return nullptr;
  }
  [[noreturn]] static void fail(const std::string& key, const std::string& problem) {
    throw ValueError("field '" + (key.size() <= 100 ? key : key.substr(0, 100) + "...") + "' " + problem);
  }

  std::vector<std::pair<std::string, Value>> fields_;
};

}  // namespace minidl
