// libFuzzer target: minidl's safetensors reader (include/minidl/safetensors/safetensors.hpp)
// on arbitrary bytes. Any outcome but a valid file or a minidl::FormatError is
// a failure: another exception, a crash, a sanitizer report, a leak, a hang or
// a huge allocation. A file that parses must survive a round trip: every
// tensor can be read, encoding them again in the same order reproduces the
// data section byte for byte, and parsing that gives the same tensors and
// metadata. Build and run: bash tests/fuzz/run.sh [SECONDS]
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <minidl/safetensors/safetensors.hpp>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::uint16_t one = 1;
  if (*reinterpret_cast<const unsigned char*>(&one) != 1) std::abort();  // the round trip assumes little-endian
  minidl::SafetensorsFile file;
  try {
    file = minidl::parse_safetensors(data, size, "fuzz input");
  } catch (const minidl::FormatError&) {
    return 0;
  }
  // Every tensor read as float and as double; written again from its stored
  // bytes (little-endian, the host's order as checked above).
  std::vector<minidl::TensorToWrite> again;
  for (const minidl::TensorEntry& t : file.tensors()) {
    const auto n = static_cast<std::size_t>(t.element_count());
    std::vector<float> f(n);
    std::vector<double> d(n);
    file.read(t, f.data());
    file.read(t, d.data());
    again.push_back({t.name, t.dtype, t.shape, file.raw_bytes(t).data()});
  }
  const std::string bytes = minidl::encode_safetensors(again, file.metadata());
  std::uint64_t header = 0;
  for (int k = 7; k >= 0; --k) header = (header << 8) | data[k];
  const std::size_t data_size = size - 8 - static_cast<std::size_t>(header);
  if (bytes.size() < data_size || std::memcmp(bytes.data() + bytes.size() - data_size, data + size - data_size,
                                              data_size) != 0)
    std::abort();
  const minidl::SafetensorsFile reparsed =
      minidl::parse_safetensors(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), "re-encoded");
  if (reparsed.metadata() != file.metadata() || reparsed.tensors().size() != file.tensors().size()) std::abort();
  for (std::size_t i = 0; i < file.tensors().size(); ++i) {
    const minidl::TensorEntry &a = file.tensors()[i], &b = reparsed.tensors()[i];
    if (a.name != b.name || a.dtype != b.dtype || a.shape != b.shape || a.begin != b.begin || a.end != b.end)
      std::abort();
  }
  return 0;
}
