// minidl — the element types (dtypes) of the safetensors format, their sizes
// and names, the little-endian encoding of their values, and the size and
// message helpers that the safetensors reader and writer share.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

namespace minidl {

/// The dtypes of the format. minidl's models are saved as F32 or F64.
/// F8_E4M3 is the "fn" variant (no infinities), as in PyTorch's float8_e4m3fn.
enum class DType { F32, F64, BOOL, U8, I8, I16, U16, I32, U32, I64, U64, F16, BF16, F8_E5M2, F8_E4M3 };

namespace detail {
inline constexpr const char* dtype_names[] = {"F32", "F64", "BOOL", "U8",  "I8",  "I16",     "U16",    "I32",
                                              "U32", "I64", "U64",  "F16", "BF16", "F8_E5M2", "F8_E4M3"};
inline constexpr unsigned char dtype_sizes[] = {4, 8, 1, 1, 1, 2, 2, 4, 4, 8, 8, 2, 2, 1, 1};
}  // namespace detail

inline bool dtype_valid(DType dtype) { return static_cast<unsigned>(dtype) < std::size(detail::dtype_sizes); }
/// "F32", "F64", ... ("?" for a value outside the enum)
inline const char* dtype_name(DType dtype) {
  return dtype_valid(dtype) ? detail::dtype_names[static_cast<unsigned>(dtype)] : "?";
}
/// Bytes per element (0 for a value outside the enum).
inline std::size_t dtype_size(DType dtype) {
  return dtype_valid(dtype) ? detail::dtype_sizes[static_cast<unsigned>(dtype)] : 0;
}

namespace detail {

static_assert(std::numeric_limits<float>::is_iec559 && std::numeric_limits<double>::is_iec559,
              "safetensors stores IEEE 754 values");

/// Little-endian bytes <-> unsigned integers, whatever the host's byte order.
template <class U>
U load_le(const unsigned char* p) {
  U u = 0;
  for (std::size_t k = sizeof(U); k-- > 0;) u = static_cast<U>((u << 8) | p[k]);
  return u;
}
template <class U>
void store_le(U u, unsigned char* p) {
  for (std::size_t k = 0; k < sizeof(U); ++k, u = static_cast<U>(u >> 8)) p[k] = static_cast<unsigned char>(u & 0xFF);
}
template <class F, class U = std::conditional_t<sizeof(F) == 4, std::uint32_t, std::uint64_t>>
F load_float(const unsigned char* p) {
  const U bits = load_le<U>(p);
  F value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

/// A small IEEE-style float (sign, `e` exponent bits, `m` mantissa bits, bias
/// 2^(e-1) - 1). `ieee`: all-ones exponent is Inf/NaN; else only all-ones
/// exponent and mantissa is NaN (F8_E4M3's "fn" encoding). Exact in double.
inline double decode_small_float(unsigned bits, int e, int m, bool ieee) {
  const unsigned exponent = (bits >> m) & ((1u << e) - 1), mantissa = bits & ((1u << m) - 1);
  const int bias = (1 << (e - 1)) - 1;
  double v;
  if (exponent == (1u << e) - 1 && (ieee || mantissa == (1u << m) - 1))
    v = ieee && mantissa == 0 ? std::numeric_limits<double>::infinity() : std::numeric_limits<double>::quiet_NaN();
  else if (exponent == 0) v = std::ldexp(mantissa, 1 - bias - m);  // subnormal
  else v = std::ldexp(mantissa | (1u << m), static_cast<int>(exponent) - bias - m);
  return (bits >> (e + m)) & 1 ? -v : v;
}

/// One element of any dtype as a double (integers above 2^53 round).
inline double decode_element(DType dtype, const unsigned char* p) {
  switch (dtype) {
    case DType::F32: return load_float<float>(p);
    case DType::F64: return load_float<double>(p);
    case DType::BOOL: return p[0] != 0;
    case DType::U8: return p[0];
    case DType::I8: return static_cast<std::int8_t>(p[0]);
    case DType::I16: return static_cast<std::int16_t>(load_le<std::uint16_t>(p));
    case DType::U16: return load_le<std::uint16_t>(p);
    case DType::I32: return static_cast<std::int32_t>(load_le<std::uint32_t>(p));
    case DType::U32: return load_le<std::uint32_t>(p);
    case DType::I64: return static_cast<double>(static_cast<std::int64_t>(load_le<std::uint64_t>(p)));
    case DType::U64: return static_cast<double>(load_le<std::uint64_t>(p));
    case DType::F16: return decode_small_float(load_le<std::uint16_t>(p), 5, 10, true);
    case DType::BF16: {  // the upper half of an F32
      const std::uint32_t bits = std::uint32_t{load_le<std::uint16_t>(p)} << 16;
      float value;
      std::memcpy(&value, &bits, sizeof value);
      return value;
    }
    case DType::F8_E5M2: return decode_small_float(p[0], 5, 2, true);
    case DType::F8_E4M3: return decode_small_float(p[0], 4, 3, false);
  }
  return 0;
}

/// Bytes of a tensor of `shape` and `dtype`; false if a dimension is negative
/// or the size does not fit in size_t.
inline bool tensor_bytes(const std::vector<std::int64_t>& shape, DType dtype, std::size_t& bytes) {
  const std::size_t max = std::numeric_limits<std::size_t>::max();
  bool zero = false, overflow = false;
  std::size_t n = dtype_size(dtype);
  for (std::int64_t d : shape) {
    if (d < 0) return false;
    if (d == 0) zero = true;
    else if (n > max / static_cast<std::uint64_t>(d)) overflow = true;
    else n *= static_cast<std::size_t>(d);
  }
  bytes = zero ? 0 : n;
  return zero || !overflow;
}

/// "[2, 3]"
inline std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

/// Text cut to 80 bytes for a message (a name or JSON value from a file can be huge).
inline std::string st_short(std::string text, std::size_t max = 80) {
  return text.size() <= max ? text : text.substr(0, max - 3) + "...";
}

}  // namespace detail
}  // namespace minidl
