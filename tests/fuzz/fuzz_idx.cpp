// libFuzzer target: minidl's IDX reader (include/minidl/idx.hpp) on arbitrary
// bytes. Any outcome but a valid array or a minidl::IOError is a failure:
// another exception, a crash, a sanitizer report, a leak, a hang or a huge
// allocation (libFuzzer's -rss_limit_mb and -malloc_limit_mb).
// Build and run: bash tests/fuzz/run.sh [SECONDS]
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <minidl/idx.hpp>
#include <string>

namespace {

// Checks what a successful parse promises: as many bytes as the dims say.
void check(const minidl::IdxArray& a, std::size_t limit) {
  std::size_t records = a.dims.empty() ? 0 : a.dims[0];
  if (a.dims.empty() || records > limit) std::abort();
  if (a.bytes.size() != a.elements() * minidl::detail::idx_type_size(a.type)) std::abort();
  const minidl::Matrix<double> m = minidl::idx_to_matrix<double>(a);
  if (static_cast<std::size_t>(m.rows()) != records) std::abort();
}

// gzip'd input goes through zlib too, from a file as read_idx reads it.
const std::string& gz_path() {
  static const std::string path = "/tmp/minidl_fuzz_idx_" + std::to_string(::getpid()) + ".gz";
  static const bool cleanup = std::atexit([] { std::remove(gz_path().c_str()); }) == 0;
  (void)cleanup;
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  for (std::size_t limit : {minidl::idx_all, std::size_t{1}}) {
    try {
      check(minidl::parse_idx(data, size, "fuzz input", limit), limit);
    } catch (const minidl::IOError&) {
    }
  }
  if (size >= 2 && data[0] == 0x1F && data[1] == 0x8B) {
    std::FILE* f = std::fopen(gz_path().c_str(), "wb");
    if (!f || std::fwrite(data, 1, size, f) != size || std::fclose(f) != 0) std::abort();
    try {
      check(minidl::read_idx(gz_path()), minidl::idx_all);
    } catch (const minidl::IOError&) {
    }
  }
  return 0;
}
