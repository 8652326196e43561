// minidl — errors.
//
// Every check in minidl throws one of these. Messages say which layer or
// argument was wrong, what was expected and what was found, e.g.
//   "Dense 'dense_1': input has 99 features per sample, expected 100".
// Contract (as in dlib): a call that throws leaves the object it was called on
// exactly as it was before the call.
#pragma once

#include <initializer_list>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace minidl {

/// Base of every exception minidl throws.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A matrix or layer has the wrong shape (rows, columns, per-sample shape).
class ShapeError : public Error {
 public:
  using Error::Error;
};

/// An argument has an invalid value: hyper-parameter out of range, NaN/Inf in data, empty data.
class ValueError : public Error {
 public:
  using Error::Error;
};

/// A call came in the wrong order (fit before compile, backward before a training forward).
class StateError : public Error {
 public:
  using Error::Error;
};

/// A file is missing, truncated or inconsistent.
class IOError : public Error {
 public:
  using Error::Error;
};

namespace detail {

/// Concatenates its arguments with operator<< into a message string.
template <class... Parts>
std::string message(Parts&&... parts) {
  std::ostringstream out;
  (out << ... << std::forward<Parts>(parts));
  return out.str();
}

/// The one of `values` whose name (`to_string`) is `name`, if any; with
/// choice_names, how an enum is read back from its name and how the error
/// lists the choices.
template <class Enum>
std::optional<Enum> enum_named(const std::string& name, std::initializer_list<Enum> values) {
  for (Enum value : values)
    if (name == to_string(value)) return value;
  return std::nullopt;
}

/// "a, b, c": the names of `values`, for a message.
template <class Enum>
std::string choice_names(std::initializer_list<Enum> values) {
  std::string list;
  for (Enum value : values) list += (list.empty() ? "" : ", ") + std::string(to_string(value));
  return list;
}

}  // namespace detail
}  // namespace minidl
