// minidl — the safetensors file format: a low-level, fully validating reader,
// and the writer (safetensors_writer.hpp, included here).
//
// Layout: an 8-byte little-endian unsigned header length N, N bytes of UTF-8
// JSON, then the data section. The JSON object maps each tensor name to
//   {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}
// (byte offsets relative to the start of the data section) and may hold
// "__metadata__": {string: string}. Values are little-endian, row-major.
//
// The reader makes the checks of the reference implementation (Hugging Face's
// safetensors): header within the file and at most 100 MiB, starting with
// '{'; known dtypes; tensors tile the data section exactly, without overlaps,
// gaps or trailing bytes; each tensor's byte range is dtype size x element
// count. It is stricter in three ways: duplicate keys, unknown fields in a
// tensor entry and JSON nested deeper than the format needs are rejected.
// minidl's models use F32 and F64; the other dtypes (dtype.hpp) are read and
// converted too, e.g. PyTorch's I64 BatchNorm counter or F16/BF16 weights.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "../error.hpp"
#include "dtype.hpp"
#include "safetensors_writer.hpp"

namespace minidl {

/// A malformed file: its bytes contradict the format.
class FormatError : public IOError {
 public:
  using IOError::IOError;
};

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
  /// Copies the values of `entry` into out[0 .. element_count()) as T (float
  /// or double): F32 and F64 are cast directly (F64 -> float rounds to
  /// nearest), other dtypes go through double. ValueError if `entry` does not
  /// describe this file's data.
  template <class T>
  void read(const TensorEntry& entry, T* out) const {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "read into float or double");
    const auto* p = reinterpret_cast<const unsigned char*>(raw_bytes(entry).data());
    const std::size_t size = dtype_size(entry.dtype), n = (entry.end - entry.begin) / size;
    if (entry.dtype == DType::F32)
      for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<T>(detail::load_float<float>(p + 4 * i));
    else if (entry.dtype == DType::F64)
      for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<T>(detail::load_float<double>(p + 8 * i));
    else
      for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<T>(detail::decode_element(entry.dtype, p + size * i));
  }
  /// The stored little-endian bytes of `entry`; ValueError as read.
  std::string_view raw_bytes(const TensorEntry& entry) const {
    std::size_t bytes = 0;
    if (!dtype_valid(entry.dtype) || !detail::tensor_bytes(entry.shape, entry.dtype, bytes) ||
        entry.begin > entry.end || entry.end > data_size_ || entry.end - entry.begin != bytes)
      throw ValueError(detail::message("SafetensorsFile: entry '", detail::st_short(entry.name), "' (",
                                       dtype_name(entry.dtype), " ", detail::shape_text(entry.shape), ", bytes [",
                                       entry.begin, ", ", entry.end, ")) does not describe data of this file (",
                                       data_size_, " data bytes)"));
    return std::string_view(bytes_).substr(data_start_ + entry.begin, bytes);
  }

 private:
  friend SafetensorsFile parse_safetensors(std::string bytes, const std::string& source,
                                           std::size_t max_header_bytes);
  std::string bytes_;  // the whole file
  std::size_t data_start_ = 0, data_size_ = 0;
  std::map<std::string, std::string> metadata_;
  std::vector<TensorEntry> tensors_;
};

namespace detail {

[[noreturn]] inline void st_fail(const std::string& source, const std::string& problem) {
  throw FormatError("safetensors file '" + source + "': " + problem);
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
  const auto* known = std::find(std::begin(dtype_names), std::end(dtype_names), dtype);
  if (known == std::end(dtype_names))
    fail("unknown dtype ", st_short(dtype.dump()), ", expected one of F32, F64, BOOL, U8, I8, I16, U16, I32, U32, ",
         "I64, U64, F16, BF16, F8_E5M2, F8_E4M3");
  t.dtype = static_cast<DType>(known - std::begin(dtype_names));
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

/// Parses the JSON header, validating each tensor entry into `tensors` as
/// soon as it has been read and dropping its JSON, so that memory stays
/// proportional to the header's size. Rejects while parsing: duplicate keys
/// (the JSON standard leaves them undefined; nlohmann would keep the last),
/// nesting deeper than the format's three levels (object > tensor > shape),
/// tensor entries of more than 1024 JSON values, and metadata that is an array
/// or holds arrays or objects. Returns what is left: at most "__metadata__".
inline nlohmann::json st_parse_header(const char* begin, const char* end, std::size_t data_size,
                                      const std::string& source, std::vector<TensorEntry>& tensors) {
  using json = nlohmann::json;
  using E = json::parse_event_t;
  std::vector<std::set<std::string>> keys;  // keys seen in each open object
  std::string name, key;                    // the current top-level key, the current key
  int depth = 0;                            // 1 in the top-level object, 2 in a tensor entry
  std::size_t values = 0;                   // JSON values in the current tensor entry
  const json::parser_callback_t callback = [&](int, E event, json& parsed) {
    const bool start = event == E::object_start || event == E::array_start;
    const bool metadata = name == "__metadata__";
    if (start && ++depth > 3) st_fail(source, "header JSON is nested deeper than the format's 3 levels");
    if (start && depth == 2) values = 0;
    if (start && metadata && depth == 2 && event == E::array_start)
      st_fail(source, "__metadata__: expected an object, got an array");
    if (start && metadata && depth == 3)
      st_fail(source, "__metadata__[\"" + st_short(key) + "\"]: expected a string, got an array or object");
    if ((start || event == E::value) && depth >= 2 && !metadata && ++values > 1024)
      st_fail(source, "tensor \"" + st_short(name) + "\": more than 1024 JSON values in its entry");
    if (event == E::object_start) keys.emplace_back();
    if (event == E::object_end) keys.pop_back();
    if (event == E::key) {
      key = parsed.get<std::string>();
      if (!keys.back().insert(key).second)
        st_fail(source, "duplicate key \"" + st_short(key) + "\" in the header JSON");
      if (depth == 1) name = key;
    }
    const bool ended = (event == E::object_end || event == E::array_end) && --depth == 1;
    if (!metadata && (ended || (event == E::value && depth == 1))) {
      tensors.push_back(st_tensor(name, parsed, data_size, source));
      return false;  // validated: drop its JSON
    }
    return true;
  };
  try {
    return json::parse(begin, end, callback);
  } catch (const json::exception& e) {
    std::string what = st_short(e.what(), 300);  // may quote raw bytes: keep it short and printable
    for (char& c : what)
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7E) c = '?';
    st_fail(source, "header is not valid JSON: " + what);
  }
}

}  // namespace detail

/// Validates a whole file held in `bytes` (see the top of this file); throws
/// FormatError naming `source`, the field and the expected vs actual value.
/// Nothing is allocated for the header before its length is checked against
/// `max_header_bytes` and the file's size.
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
  const nlohmann::json rest = detail::st_parse_header(bytes.data() + 8, bytes.data() + 8 + n, file.data_size_,
                                                      source, file.tensors_);
  if (rest.contains("__metadata__")) {
    const nlohmann::json& metadata = rest["__metadata__"];
    if (!metadata.is_object()) fail("__metadata__: expected an object, got ", st_short(metadata.dump()));
    for (const auto& m : metadata.items()) {
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

/// Reads and validates a file; IOError if it is missing, unreadable or not a
/// regular file. A device, pipe or socket is refused before anything is
/// read: /dev/zero would be read forever, and a safetensors file's size must
/// be known to check its header against it (parse_safetensors reads bytes
/// that came from anywhere). At most the size fstat reports is read, so a
/// file that grows while it is read is seen as it was.
inline SafetensorsFile read_safetensors(const std::string& path) {
  const auto fail = [&](const char* what, int err) {
    throw IOError("safetensors file '" + path + "': " + what + ": " + std::strerror(err));
  };
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer
  // before fstat could tell that it is one (it has no effect on a regular file).
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) fail("cannot open", errno);
  const struct Closer { int fd; ~Closer() { ::close(fd); } } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) fail("cannot stat", errno);
  if (S_ISDIR(st.st_mode)) fail("cannot read", EISDIR);
  if (!S_ISREG(st.st_mode))
    throw IOError("safetensors file '" + path + "': not a regular file (" +
                  (S_ISCHR(st.st_mode) ? "a character device" : S_ISBLK(st.st_mode) ? "a block device"
                   : S_ISFIFO(st.st_mode) ? "a pipe" : S_ISSOCK(st.st_mode) ? "a socket" : "a special file") +
                  "); read its bytes yourself and call parse_safetensors");
  std::string bytes(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t got = 0;
  while (got < bytes.size()) {
    const ::ssize_t r = ::read(fd, &bytes[got], bytes.size() - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail("read error", errno);
    if (r == 0) break;  // shrank while being read: what was read is validated as it is
    got += static_cast<std::size_t>(r);
  }
  bytes.resize(got);
  return parse_safetensors(std::move(bytes), path);
}

}  // namespace minidl
