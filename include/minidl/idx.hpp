// minidl — reading IDX files, the format of MNIST and Fashion-MNIST.
//
// An IDX file is: two zero bytes, an element-type byte, a rank byte, `rank`
// big-endian uint32 dimensions, then the elements, big-endian, last axis
// fastest (row-major). The published files are gzip'd; zlib's gzread reads
// gzip'd and plain files alike, so every function here accepts both.
//
// Not included by minidl.hpp because it needs zlib (minidl::minidl links
// ZLIB::ZLIB). Every problem with a file throws minidl::IOError naming the file,
// what was expected and what was found. A whole file is always checked, also
// when `limit` keeps only its first records.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "idx/byte_readers.hpp"
#include "error.hpp"
#include "tensor.hpp"

namespace minidl {

/// Element type codes of the IDX format (MNIST uses UInt8).
enum class IdxType : std::uint8_t {
  UInt8 = 0x08, Int8 = 0x09, Int16 = 0x0B, Int32 = 0x0C, Float32 = 0x0D, Float64 = 0x0E
};

/// "All records": the default `limit` of the readers.
inline constexpr std::size_t idx_all = std::numeric_limits<std::size_t>::max();

/// Type and shape of an IDX file; dims[0] counts the records (images, labels).
struct IdxHeader {
  IdxType type = IdxType::UInt8;
  std::vector<std::uint32_t> dims;
  /// Number of elements: the product of dims.
  std::size_t elements() const {
    std::size_t n = 1;
    for (std::uint32_t d : dims) n *= d;
    return n;
  }
};

/// An IDX array as stored: `bytes` holds elements() big-endian elements, row-major.
/// idx_to_matrix converts it to numbers.
struct IdxArray : IdxHeader {
  std::vector<unsigned char> bytes;
};

namespace detail {

/// Calls f(T{}) with the C++ type T of an IDX element type: one dispatch per
/// array, so the conversion loops are tight and free of per-element branches.
template <class F>
void idx_visit(IdxType type, F&& f) {
  switch (type) {
    case IdxType::UInt8: f(std::uint8_t{}); break;
    case IdxType::Int8: f(std::int8_t{}); break;
    case IdxType::Int16: f(std::int16_t{}); break;
    case IdxType::Int32: f(std::int32_t{}); break;
    case IdxType::Float32: f(float{}); break;
    case IdxType::Float64: f(double{}); break;
  }
}

inline std::size_t idx_type_size(IdxType type) {
  std::size_t size = 0;
  idx_visit(type, [&](auto tag) { size = sizeof(tag); });
  return size;
}

/// The format's own names of the types, for messages (codes 0x08..0x0E; 0x0A is unused).
inline const char* idx_type_name(IdxType type) {
  static const char* const names[] = {"ubyte", "byte", "?", "short", "int", "float", "double"};
  const auto code = static_cast<unsigned>(type);
  return code >= 0x08 && code <= 0x0E ? names[code - 0x08] : "?";
}

/// Decodes one big-endian element of type T (memcpy: no aliasing, no sign tricks).
template <class T>
T idx_decode(const unsigned char* p) {
  std::uint64_t u = 0;
  for (std::size_t k = 0; k < sizeof(T); ++k) u = (u << 8) | p[k];
  using Bits = std::conditional_t<sizeof(T) == 1, std::uint8_t,
               std::conditional_t<sizeof(T) == 2, std::uint16_t,
               std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>>>;
  const Bits bits = static_cast<Bits>(u);
  T value;
  std::memcpy(&value, &bits, sizeof(T));
  return value;
}

/// "10 x 28 x 28"
inline std::string idx_dims_text(const std::vector<std::uint32_t>& dims) {
  std::string s;
  for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? " x " : "") + std::to_string(dims[i]);
  return s;
}

/// Reads and validates the header; leaves `in` at the first data byte.
template <class Reader>
IdxHeader idx_read_header(Reader& in, const std::string& path) {
  unsigned char magic[4];
  const std::size_t got = in.read(magic, 4);
  if (got < 4)
    idx_fail(path, "truncated header: expected a 4-byte magic number, file has " + std::to_string(got) + " bytes");
  char hex[16];
  std::snprintf(hex, sizeof hex, "0x%02X%02X%02X%02X", magic[0], magic[1], magic[2], magic[3]);
  if (magic[0] != 0 || magic[1] != 0)
    idx_fail(path, std::string("bad magic number ") + hex + ": the first two bytes must be 0 (not an IDX file?)");
  IdxHeader header;
  header.type = static_cast<IdxType>(magic[2]);
  if (idx_type_size(header.type) == 0)
    idx_fail(path, "unknown element type code 0x" + std::string(hex + 6, 2) +
                       ", expected 0x08 (ubyte), 0x09 (byte), 0x0B (short), 0x0C (int), 0x0D (float) or 0x0E (double)");
  const std::size_t rank = magic[3];
  if (rank == 0) idx_fail(path, "rank 0 in the header, expected at least 1 dimension");
  std::vector<unsigned char> raw(4 * rank);
  const std::size_t dim_bytes = in.read(raw.data(), raw.size());
  if (dim_bytes < raw.size())
    idx_fail(path, detail::message("truncated header: rank ", rank, " needs ", raw.size(),
                                   " bytes of dimensions, file has ", dim_bytes));
  for (std::size_t i = 0; i < rank; ++i) header.dims.push_back(idx_decode<std::uint32_t>(&raw[4 * i]));
  return header;
}

/// Bytes of data the header promises. Rejects a record size (the product of
/// the dims after the first, times the element size) or a total above
/// PTRDIFF_MAX, the most any array can hold: a file of 0 records of absurd
/// size must not pass, or its records would not fit a Matrix's columns.
inline std::size_t idx_data_bytes(const IdxHeader& header, const std::string& path) {
  const auto max = static_cast<std::size_t>(std::numeric_limits<std::ptrdiff_t>::max());
  std::size_t record = idx_type_size(header.type);
  for (std::size_t k = 1; k <= header.dims.size(); ++k) {
    const std::size_t d = header.dims[k % header.dims.size()];  // dims[1..], then dims[0]
    if (d != 0 && record > max / d)
      idx_fail(path, detail::message("absurd dimensions ", idx_dims_text(header.dims), ": ",
                                     k < header.dims.size() ? "a record" : "the data",
                                     " would have more than 2^63 - 1 bytes"));
    record *= d;
  }
  return record;
}

/// Reads and validates an IDX stream (a GzReader or a MemoryReader), keeping
/// its first `limit` records. `check(header)` runs before any data is read, so
/// a wrong kind of file fails before a large read.
template <class Reader, class Check>
IdxArray idx_parse(Reader& in, const std::string& path, std::size_t limit, Check&& check) {
  IdxArray array;
  static_cast<IdxHeader&>(array) = idx_read_header(in, path);
  check(static_cast<const IdxHeader&>(array));
  const std::size_t expected = idx_data_bytes(array, path);
  const auto size_mismatch = [&](std::size_t actual) {
    const std::string sizes = detail::message("expected ", expected, " bytes of data, file has ", actual, " (dims ",
                                              idx_dims_text(array.dims), ", ", idx_type_name(array.type), ")");
    idx_fail(path, actual < expected ? "truncated data: " + sizes : "inconsistent size: " + sizes);
  };
  // Bound the allocation by what the stream can hold, before allocating.
  std::size_t size = 0;
  bool exact = false;
  const bool bounded = in.size_bound(size, exact);
  if (bounded) {
    const std::size_t header_bytes = 4 + 4 * array.dims.size();  // already read, so size >= header_bytes
    if (exact && size - header_bytes != expected) size_mismatch(size - header_bytes);
    if (!exact && expected / 1032 > size)
      idx_fail(path, detail::message("absurd dimensions ", idx_dims_text(array.dims), ": ", expected,
                                     " bytes of data cannot come from a ", size, "-byte gzip file"));
  }
  const std::size_t kept_records = std::min<std::size_t>(limit, array.dims[0]);
  const std::size_t wanted = kept_records * (array.dims[0] == 0 ? 0 : expected / array.dims[0]);
  // Bounded: one allocation. Unbounded (a pipe): the buffer grows only as data arrives.
  const std::size_t step = bounded ? wanted : std::min<std::size_t>(wanted, std::size_t{1} << 24);
  std::size_t got = 0;
  while (got < wanted) {
    const std::size_t n = std::min(step, wanted - got);
    array.bytes.resize(got + n);
    const std::size_t r = in.read(array.bytes.data() + got, n);
    got += r;
    if (r < n) break;
  }
  array.bytes.resize(got);
  const std::size_t total = got < wanted ? got : got + in.drain();
  if (total != expected) size_mismatch(total);
  array.dims[0] = static_cast<std::uint32_t>(kept_records);
  return array;
}

/// idx_parse on a file, gzip'd or plain.
template <class Check>
IdxArray idx_read(const std::string& path, std::size_t limit, Check&& check) {
  GzReader in(path);
  return idx_parse(in, path, limit, std::forward<Check>(check));
}

}  // namespace detail

/// Reads the header only (type and dims), without touching the data.
inline IdxHeader read_idx_header(const std::string& path) {
  detail::GzReader in(path);
  return detail::idx_read_header(in, path);
}

/// Validates and decodes IDX bytes held in memory (not gzip'd), exactly as
/// read_idx does a file; `source` names them in messages.
inline IdxArray parse_idx(const unsigned char* bytes, std::size_t size, const std::string& source,
                          std::size_t limit = idx_all) {
  detail::MemoryReader in{bytes, size};
  return detail::idx_parse(in, source, limit, [](const IdxHeader&) {});
}

/// Reads a whole IDX file of any element type; keeps the first `limit` records.
inline IdxArray read_idx(const std::string& path, std::size_t limit = idx_all) {
  return detail::idx_read(path, limit, [](const IdxHeader&) {});
}

/// dims[0] x (product of the other dims) matrix of scale * value, one record per row.
template <class Scalar>
Matrix<Scalar> idx_to_matrix(const IdxArray& array, Scalar scale = Scalar(1)) {
  const std::size_t rows = array.dims.empty() ? 0 : array.dims[0];
  std::size_t cols = 1;
  for (std::size_t k = 1; k < array.dims.size(); ++k) cols *= array.dims[k];
  if (!array.dims.empty() && array.bytes.size() != detail::idx_data_bytes(array, "(in memory)"))
    throw ValueError(detail::message("idx_to_matrix: dims ", detail::idx_dims_text(array.dims), " of ",
                                     detail::idx_type_name(array.type), " do not match the ", array.bytes.size(),
                                     " bytes held"));
  Matrix<Scalar> m(static_cast<Index>(rows), static_cast<Index>(cols));
  Scalar* out = m.data();
  const unsigned char* in = array.bytes.data();
  detail::idx_visit(array.type, [&](auto tag) {
    using T = decltype(tag);
    for (std::size_t i = 0; i < rows * cols; ++i)
      out[i] = static_cast<Scalar>(detail::idx_decode<T>(in + i * sizeof(T))) * scale;
  });
  return m;
}

/// Images file (N x rows x cols) -> N x (rows*cols) matrix, one image per row,
/// each pixel times `scale` (1/255 maps MNIST's bytes to [0, 1]).
template <class Scalar>
Matrix<Scalar> read_idx_images(const std::string& path, Scalar scale = Scalar(1) / Scalar(255),
                               std::size_t limit = idx_all) {
  const IdxArray array = detail::idx_read(path, limit, [&](const IdxHeader& h) {
    if (h.dims.size() < 2)
      detail::idx_fail(path, detail::message("expected an images file of rank >= 2 (images x rows x cols), got rank ",
                                             h.dims.size(), " (dims ", detail::idx_dims_text(h.dims), ")"));
  });
  return idx_to_matrix<Scalar>(array, scale);
}

/// Labels file (rank 1, integer elements) -> one int per record.
inline std::vector<int> read_idx_labels(const std::string& path, std::size_t limit = idx_all) {
  const IdxArray array = detail::idx_read(path, limit, [&](const IdxHeader& h) {
    if (h.dims.size() != 1)
      detail::idx_fail(path, detail::message("expected a labels file of rank 1, got rank ", h.dims.size(), " (dims ",
                                             detail::idx_dims_text(h.dims), ")"));
    if (h.type == IdxType::Float32 || h.type == IdxType::Float64)
      detail::idx_fail(path, std::string("expected integer labels, got element type ") +
                                 detail::idx_type_name(h.type));
  });
  std::vector<int> labels(array.dims[0]);
  detail::idx_visit(array.type, [&](auto tag) {
    using T = decltype(tag);
    for (std::size_t i = 0; i < labels.size(); ++i)
      labels[i] = static_cast<int>(detail::idx_decode<T>(&array.bytes[i * sizeof(T)]));
  });
  return labels;
}

/// labels.size() x classes matrix with a single 1 per row, at the label's column.
template <class Scalar>
Matrix<Scalar> one_hot(const std::vector<int>& labels, int classes) {
  if (classes <= 0) throw ValueError(detail::message("one_hot: classes must be positive, got ", classes));
  for (std::size_t i = 0; i < labels.size(); ++i)
    if (labels[i] < 0 || labels[i] >= classes)
      throw ValueError(
          detail::message("one_hot: label ", labels[i], " at index ", i, " is outside [0, ", classes, ")"));
  Matrix<Scalar> y = Matrix<Scalar>::Zero(static_cast<Index>(labels.size()), classes);
  for (std::size_t i = 0; i < labels.size(); ++i) y(static_cast<Index>(i), labels[i]) = Scalar(1);
  return y;
}

}  // namespace minidl
