// minidl — the safetensors file format: a low-level, fully validating reader
// and a writer.
//
// Layout: an 8-byte little-endian unsigned header length N, N bytes of UTF-8
// JSON, then the data section. The JSON object maps each tensor name to
//   {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}
// (byte offsets relative to the start of the data section) and may hold
// "__metadata__": {string: string}. Values are little-endian, row-major.
//
// The reader makes the checks of the reference implementation (Hugging Face's
// safetensors): header within the file and at most 100 MB, starting with '{';
// tensors tile the data section exactly, without overlaps, gaps or trailing
// bytes; each tensor's byte range matches dtype size x element count. It is
// stricter in three ways: duplicate keys, unknown fields in a tensor entry and
// JSON nesting deeper than the format uses are rejected. minidl reads and
// writes F32 and F64 only; other dtypes are rejected as unsupported.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "../error.hpp"
#include "atomic_file.hpp"

namespace minidl {

/// A malformed file: its bytes contradict the format.
class FormatError : public IOError {
 public:
  using IOError::IOError;
};

/// The dtypes minidl reads and writes.
enum class DType { F32, F64 };

inline const char* dtype_name(DType dtype) { return dtype == DType::F32 ? "F32" : "F64"; }
inline std::size_t dtype_size(DType dtype) { return dtype == DType::F32 ? 4 : 8; }

/// One tensor of a parsed file.
struct TensorEntry {
  std::string name;
  DType dtype = DType::F32;
  std::vector<std::int64_t> shape;  // empty: a scalar (one element)
  std::size_t begin = 0, end = 0;   // byte offsets into the data section
  /// Product of the shape (1 for a scalar). For a parsed entry it cannot overflow.
  std::int64_t element_count() const {
    std::uint64_t n = 1;
    for (std::int64_t d : shape) n *= static_cast<std::uint64_t>(d);
    return static_cast<std::int64_t>(n);
  }
};

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
template <class F>
using float_bits_t = std::conditional_t<sizeof(F) == 4, std::uint32_t, std::uint64_t>;

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

[[noreturn]] inline void st_fail(const std::string& source, const std::string& problem) {
  throw FormatError("safetensors file '" + source + "': " + problem);
}

/// Text cut to 80 bytes for a message (a name or JSON value from a file can be huge).
inline std::string st_short(std::string text) { return text.size() <= 80 ? text : text.substr(0, 77) + "..."; }

}  // namespace detail

/// A fully validated file, held in memory.
class SafetensorsFile {
 public:
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  /// In data-offset order.
  const std::vector<TensorEntry>& tensors() const { return tensors_; }
  /// nullptr if the file has no tensor of that name.
  const TensorEntry* find(const std::string& name) const {
    for (const TensorEntry& t : tensors_)
      if (t.name == name) return &t;
    return nullptr;
  }
  /// Copies the values of `entry` into out[0 .. element_count()), converting
  /// F32 <-> F64 to T (float or double; F64 -> float rounds to nearest).
  template <class T>
  void read(const TensorEntry& entry, T* out) const {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "read into float or double");
    std::size_t bytes = 0;
    if (!detail::tensor_bytes(entry.shape, entry.dtype, bytes) || entry.begin > entry.end ||
        entry.end > data_size_ || entry.end - entry.begin != bytes)
      throw ValueError(detail::message("SafetensorsFile::read: entry '", entry.name, "' (", dtype_name(entry.dtype),
                                       " ", detail::shape_text(entry.shape), ", bytes [", entry.begin, ", ",
                                       entry.end, ")) does not describe data of this file (", data_size_,
                                       " data bytes)"));
    const unsigned char* p = reinterpret_cast<const unsigned char*>(bytes_.data()) + data_start_ + entry.begin;
    const std::size_t n = bytes / dtype_size(entry.dtype);
    if (entry.dtype == DType::F32) convert<float>(p, n, out);
    else convert<double>(p, n, out);
  }

 private:
  friend SafetensorsFile parse_safetensors(std::string bytes, const std::string& source,
                                           std::size_t max_header_bytes);
  template <class Stored, class T>
  static void convert(const unsigned char* p, std::size_t n, T* out) {
    for (std::size_t i = 0; i < n; ++i) {
      const auto bits = detail::load_le<detail::float_bits_t<Stored>>(p + i * sizeof(Stored));
      Stored v;
      std::memcpy(&v, &bits, sizeof v);
      out[i] = static_cast<T>(v);
    }
  }

  std::string bytes_;  // the whole file
  std::size_t data_start_ = 0, data_size_ = 0;
  std::map<std::string, std::string> metadata_;
  std::vector<TensorEntry> tensors_;
};

namespace detail {

/// Parses the JSON header. Rejects duplicate keys (the JSON standard leaves
/// them undefined; nlohmann would keep the last) and nesting deeper than the
/// format's three levels (object > tensor > shape) while parsing.
inline nlohmann::json st_parse_json(const char* begin, const char* end, const std::string& source) {
  using json = nlohmann::json;
  std::vector<std::set<std::string>> keys;  // keys seen in each open object
  int depth = 0;
  const json::parser_callback_t callback = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) {
      if (++depth > 3) st_fail(source, "header JSON is nested deeper than the format's 3 levels");
      if (event == json::parse_event_t::object_start) keys.emplace_back();
    } else if (event == json::parse_event_t::object_end || event == json::parse_event_t::array_end) {
      --depth;
      if (event == json::parse_event_t::object_end) keys.pop_back();
    } else if (event == json::parse_event_t::key && !keys.back().insert(parsed.get<std::string>()).second) {
      st_fail(source, "duplicate key \"" + parsed.get<std::string>() + "\" in the header JSON");
    }
    return true;
  };
  try {
    return json::parse(begin, end, callback);
  } catch (const json::exception& e) {
    std::string what = e.what();  // may quote raw bytes: keep it short and printable
    if (what.size() > 200) what = what.substr(0, 200) + "...";
    for (char& c : what)
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7E) c = '?';
    st_fail(source, "header is not valid JSON: " + what);
  }
}

/// Validates one tensor entry of the header (`data_size`: bytes of the data section).
inline TensorEntry st_tensor(const std::string& name, const nlohmann::json& v, std::size_t data_size,
                             const std::string& source) {
  const std::string what = "tensor \"" + st_short(name) + "\": ";
  const auto fail = [&](auto&&... parts) { st_fail(source, message(what, parts...)); };
  if (!v.is_object()) fail("expected an object {dtype, shape, data_offsets}, got ", st_short(v.dump()));
  for (const auto& item : v.items())
    if (item.key() != "dtype" && item.key() != "shape" && item.key() != "data_offsets")
      fail("unexpected field \"", st_short(item.key()), "\", expected only dtype, shape and data_offsets");
  for (const char* field : {"dtype", "shape", "data_offsets"})
    if (!v.contains(field)) fail("missing field \"", field, "\"");
  TensorEntry t;
  t.name = name;
  const nlohmann::json &dtype = v["dtype"], &shape = v["shape"], &offsets = v["data_offsets"];
  static const std::set<std::string> others = {"BOOL", "U8",  "I8",  "F8_E5M2", "F8_E4M3", "I16", "U16",
                                                "F16",  "BF16", "I32", "U32",     "I64",     "U64"};
  if (dtype == "F32" || dtype == "F64") t.dtype = dtype == "F32" ? DType::F32 : DType::F64;
  else if (dtype.is_string() && others.count(dtype.get<std::string>()))
    fail("dtype ", dtype.dump(), " is not supported, expected \"F32\" or \"F64\"");
  else fail("unknown dtype ", st_short(dtype.dump()), ", expected \"F32\" or \"F64\"");
  if (!shape.is_array()) fail("shape: expected an array, got ", st_short(shape.dump()));
  for (const nlohmann::json& dim : shape) {
    if (!dim.is_number_unsigned() || dim.get<std::uint64_t>() > std::uint64_t{INT64_MAX})
      fail("shape ", st_short(shape.dump()), ": expected integers in [0, 2^63), got ", st_short(dim.dump()));
    t.shape.push_back(static_cast<std::int64_t>(dim.get<std::uint64_t>()));
  }
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned())
    fail("data_offsets: expected [begin, end], two non-negative integers, got ", st_short(offsets.dump()));
  const auto begin = offsets[0].get<std::uint64_t>(), end = offsets[1].get<std::uint64_t>();
  if (begin > end) fail("data_offsets ", offsets.dump(), ": begin ", begin, " is after end ", end);
  if (end > data_size)
    fail("data_offsets ", offsets.dump(), ": end ", end, " is beyond the data section's ", data_size, " bytes");
  t.begin = static_cast<std::size_t>(begin);
  t.end = static_cast<std::size_t>(end);
  std::size_t bytes = 0;
  const bool fits = tensor_bytes(t.shape, t.dtype, bytes);
  if (!fits || bytes != t.end - t.begin)
    fail("dtype ", dtype_name(t.dtype), " x shape ", st_short(shape_text(t.shape)), " needs ",
         fits ? std::to_string(bytes) : "more than 2^64", " bytes, data_offsets ", offsets.dump(), " hold ",
         t.end - t.begin);
  return t;
}

}  // namespace detail

/// Validates a whole file held in `bytes` (see the top of this file); throws
/// FormatError naming `source`, the field and the expected vs actual value.
inline SafetensorsFile parse_safetensors(std::string bytes, const std::string& source,
                                         std::size_t max_header_bytes = 100u << 20) {
  using detail::st_short;
  const auto fail = [&](auto&&... parts) { detail::st_fail(source, detail::message(parts...)); };
  if (bytes.size() < 8) fail("truncated length prefix: expected 8 bytes, file has ", bytes.size());
  const auto* raw = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::uint64_t n = detail::load_le<std::uint64_t>(raw);
  if (n > max_header_bytes) fail("header length ", n, " exceeds the limit of ", max_header_bytes, " bytes");
  if (n > bytes.size() - 8)
    fail("header length ", n, " is larger than the ", bytes.size() - 8, " bytes that follow the length prefix");
  if (n == 0) fail("header length 0: expected a JSON object");
  if (raw[8] != '{') fail("header is not a JSON object: expected '{' as its first byte, got byte ", int{raw[8]});
  SafetensorsFile file;
  file.data_start_ = static_cast<std::size_t>(8 + n);
  file.data_size_ = bytes.size() - file.data_start_;
  const nlohmann::json header = detail::st_parse_json(bytes.data() + 8, bytes.data() + 8 + n, source);
  if (!header.is_object()) fail("header is not a JSON object but ", header.type_name());
  for (const auto& item : header.items()) {
    if (item.key() != "__metadata__") {
      file.tensors_.push_back(detail::st_tensor(item.key(), item.value(), file.data_size_, source));
      continue;
    }
    if (!item.value().is_object()) fail("__metadata__: expected an object, got ", st_short(item.value().dump()));
    for (const auto& m : item.value().items()) {
      if (!m.value().is_string())
        fail("__metadata__[\"", st_short(m.key()), "\"]: expected a string, got ", st_short(m.value().dump()));
      file.metadata_[m.key()] = m.value().get<std::string>();
    }
  }
  // The tensors must tile the data section: sorted by offset, each begins
  // where the previous one ended, and the last one ends at its end.
  std::sort(file.tensors_.begin(), file.tensors_.end(), [](const TensorEntry& a, const TensorEntry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end != b.end ? a.end < b.end : a.name < b.name;
  });
  std::size_t next = 0;
  const TensorEntry* previous = nullptr;
  for (const TensorEntry& t : file.tensors_) {
    if (t.begin < next)
      fail("tensor \"", st_short(t.name), "\" (bytes [", t.begin, ", ", t.end, ")) overlaps tensor \"",
           st_short(previous->name), "\" (bytes [", previous->begin, ", ", previous->end, "))");
    if (t.begin > next)
      fail("gap in the data section: bytes [", next, ", ", t.begin, ") belong to no tensor (expected tensor \"",
           st_short(t.name), "\" to begin at ", next, ")");
    next = t.end;
    previous = &t;
  }
  if (next != file.data_size_)
    fail("unused bytes at the end of the data section: tensors end at byte ", next, " of ", file.data_size_);
  file.bytes_ = std::move(bytes);
  return file;
}

/// As above, for bytes held elsewhere (copies them).
inline SafetensorsFile parse_safetensors(const unsigned char* bytes, std::size_t size, const std::string& source,
                                         std::size_t max_header_bytes = 100u << 20) {
  return parse_safetensors(std::string(reinterpret_cast<const char*>(bytes), size), source, max_header_bytes);
}

/// Reads and validates a file; IOError if it is missing, unreadable or a directory.
inline SafetensorsFile read_safetensors(const std::string& path) {
  const auto fail = [&](const std::string& what, int err) {
    throw IOError("safetensors file '" + path + "': " + what + ": " + std::strerror(err));
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open", errno);
  struct Closer { int fd; ~Closer() { ::close(fd); } } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) fail("cannot stat", errno);
  if (S_ISDIR(st.st_mode)) fail("cannot read", EISDIR);
  std::string bytes;
  if (S_ISREG(st.st_mode)) bytes.reserve(static_cast<std::size_t>(st.st_size));
  char buffer[1 << 16];
  for (;;) {
    const ::ssize_t r = ::read(fd, buffer, sizeof buffer);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail("read error", errno);
    if (r == 0) break;
    bytes.append(buffer, static_cast<std::size_t>(r));
  }
  return parse_safetensors(std::move(bytes), path);
}

/// One tensor to write: `data` points to element_count values of `dtype`
/// (float for F32, double for F64), row-major.
struct TensorToWrite {
  std::string name;
  DType dtype = DType::F32;
  std::vector<std::int64_t> shape;
  const void* data = nullptr;
};

/// Serializes to the bytes of a safetensors file: tensors laid out in the
/// given order, the header padded with spaces to a multiple of 8 bytes (as
/// the reference implementation does, so the data section is 8-aligned).
/// Throws ValueError for a bad name (empty metadata key allowed), a duplicate,
/// a negative dimension or null data.
inline std::string encode_safetensors(const std::vector<TensorToWrite>& tensors,
                                      const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<std::size_t> sizes;
  std::size_t offset = 0;
  for (const TensorToWrite& t : tensors) {
    const std::string what = "encode_safetensors: tensor \"" + t.name + "\": ";
    std::size_t bytes = 0;
    if (t.name == "__metadata__") throw ValueError(what + "the name is reserved for the metadata");
    if (header.contains(t.name)) throw ValueError(what + "duplicate name");
    if (!detail::tensor_bytes(t.shape, t.dtype, bytes) || bytes > std::numeric_limits<std::size_t>::max() - offset)
      throw ValueError(what + "invalid shape " + detail::shape_text(t.shape));
    if (bytes > 0 && t.data == nullptr) throw ValueError(what + "data is null");
    header[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    sizes.push_back(bytes);
    offset += bytes;
  }
  std::string json;
  try {
    json = header.dump();
  } catch (const nlohmann::json::exception& e) {
    throw ValueError(std::string("encode_safetensors: names and metadata must be valid UTF-8: ") + e.what());
  }
  json.append((8 - json.size() % 8) % 8, ' ');
  std::string out(8 + json.size() + offset, '\0');
  auto* p = reinterpret_cast<unsigned char*>(out.data());
  detail::store_le<std::uint64_t>(json.size(), p);
  std::memcpy(p + 8, json.data(), json.size());
  p += 8 + json.size();
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const std::size_t size = dtype_size(tensors[i].dtype);
    const auto* in = static_cast<const unsigned char*>(tensors[i].data);
    for (std::size_t k = 0; k < sizes[i]; k += size, p += size) {
      std::uint64_t wide = 0;  // the value's bits (memcpy: no aliasing)
      std::uint32_t narrow = 0;
      if (size == 4) std::memcpy(&narrow, in + k, 4), detail::store_le(narrow, p);
      else std::memcpy(&wide, in + k, 8), detail::store_le(wide, p);
    }
  }
  return out;
}

/// encode_safetensors, then write_file_atomically (include/minidl/io/atomic_file.hpp).
inline void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                              const std::map<std::string, std::string>& metadata) {
  write_file_atomically(path, encode_safetensors(tensors, metadata));
}

}  // namespace minidl
