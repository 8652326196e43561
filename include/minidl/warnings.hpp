// minidl — where warnings go: a mistake that is legal but probably not meant
// (Keras warns about the same ones) is written to one stream, std::cerr by
// default; set_warning_stream(nullptr) silences them, a std::ostringstream
// collects them (tests do).
#pragma once

#include <iostream>
#include <string>

namespace minidl {

/// The stream warnings go to; null: none are written.
inline std::ostream*& warning_stream() {
  static std::ostream* stream = &std::cerr;
  return stream;
}
inline void set_warning_stream(std::ostream* stream) { warning_stream() = stream; }

namespace detail {

inline void warn(const std::string& text) {
  if (std::ostream* out = warning_stream()) *out << "minidl warning: " << text << '\n';
}

}  // namespace detail
}  // namespace minidl
