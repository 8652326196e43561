// minidl — writing safetensors files (the format is described in
// safetensors.hpp, which includes this header).
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../error.hpp"
#include "atomic_file.hpp"
#include "dtype.hpp"

namespace minidl {

/// One tensor to write: `data` points to element_count() values of `dtype`
/// in the host's representation (float for F32, double for F64, int64_t for
/// I64, raw 16-bit patterns for F16/BF16, ...), row-major.
struct TensorToWrite {
  std::string name;
  DType dtype = DType::F32;
  std::vector<std::int64_t> shape;
  const void* data = nullptr;
};

/// Serializes to the bytes of a safetensors file: tensors laid out in the
/// given order, the header padded with spaces to a multiple of 8 bytes (as
/// the reference implementation does, so the data section is 8-aligned).
/// Throws ValueError for a duplicate or reserved name, text that is not
/// UTF-8, a negative dimension or null data.
inline std::string encode_safetensors(const std::vector<TensorToWrite>& tensors,
                                      const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<std::size_t> sizes;
  std::size_t offset = 0;
  for (const TensorToWrite& t : tensors) {
    const std::string what = "encode_safetensors: tensor \"" + detail::st_short(t.name) + "\": ";
    std::size_t bytes = 0;
    if (t.name == "__metadata__") throw ValueError(what + "the name is reserved for the metadata");
    if (header.contains(t.name)) throw ValueError(what + "duplicate name");
    if (!dtype_valid(t.dtype)) throw ValueError(what + "invalid dtype");
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
    const auto store = [&](auto bits) {  // each value's bits, little-endian (memcpy: no aliasing)
      for (std::size_t k = 0; k < sizes[i]; k += size, p += size) {
        std::memcpy(&bits, in + k, size);
        detail::store_le(bits, p);
      }
    };
    if (size == 1) store(std::uint8_t{});
    else if (size == 2) store(std::uint16_t{});
    else if (size == 4) store(std::uint32_t{});
    else store(std::uint64_t{});
  }
  return out;
}

/// encode_safetensors, then write_file_atomically (include/minidl/safetensors/atomic_file.hpp).
inline void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                              const std::map<std::string, std::string>& metadata) {
  write_file_atomically(path, encode_safetensors(tensors, metadata));
}

}  // namespace minidl
