// minidl — the two byte sources of the IDX reader (include/minidl/idx.hpp):
// a file read through zlib (gzip'd or plain) and a buffer in memory. Both
// offer read, drain and size_bound, so one parser validates either.
#pragma once

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "../error.hpp"

namespace minidl::detail {

[[noreturn]] inline void idx_fail(const std::string& path, const std::string& problem) {
  throw IOError("IDX file '" + path + "': " + problem);
}

/// An open gzFile (plain files read through unchanged), closed on scope exit.
class GzReader {
 public:
  explicit GzReader(const std::string& path) : path_(path) {
    errno = 0;
    file_ = gzopen(path.c_str(), "rb");
    if (!file_) idx_fail(path, std::string("cannot open: ") + (errno ? std::strerror(errno) : "out of memory"));
    gzbuffer(file_, 1u << 17);  // before the first read; fewer, larger reads of the 26 MB files
  }
  ~GzReader() { gzclose(file_); }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;

  /// Reads up to n bytes into dst; fewer only at the end of the file.
  std::size_t read(void* dst, std::size_t n) {
    auto* out = static_cast<unsigned char*>(dst);
    std::size_t got = 0;
    while (got < n) {
      const auto chunk = static_cast<unsigned>(std::min<std::size_t>(n - got, std::size_t{1} << 30));
      const int r = gzread(file_, out + got, chunk);
      check_stream();  // a corrupt or cut gzip stream shows up here, not as a short read
      if (r <= 0) break;
      got += static_cast<std::size_t>(r);
    }
    return got;
  }
  /// Reads and counts everything left (to find out how much data a file really has).
  std::size_t drain() {
    std::vector<unsigned char> sink(1u << 16);
    std::size_t total = 0;
    for (std::size_t r; (r = read(sink.data(), sink.size())) > 0;) total += r;
    return total;
  }
  /// The stream's size if known exactly (a plain file: its size on disk), else
  /// an upper bound (a gzip'd file: 1032 times its size, deflate's largest
  /// expansion ratio); false if the size on disk is unknown.
  bool size_bound(std::size_t& bytes, bool& exact) {
    std::error_code ec;
    const auto on_disk = std::filesystem::file_size(path_, ec);
    if (ec) return false;
    exact = gzdirect(file_) == 1;
    bytes = static_cast<std::size_t>(on_disk);
    return true;
  }

 private:
  void check_stream() {
    int code = Z_OK;
    const char* text = gzerror(file_, &code);
    if (code == Z_OK) return;
    std::string what = text ? text : "unknown error";
    if (what.rfind(path_ + ": ", 0) == 0) what.erase(0, path_.size() + 2);  // zlib prefixes the path
    idx_fail(path_, code == Z_ERRNO ? "read error: " + what : "corrupt gzip stream: " + what);
  }

  std::string path_;
  gzFile file_ = nullptr;
};

/// A byte range read like a file: the in-memory twin of GzReader, so that
/// files and buffers go through the same validation (idx_parse).
struct MemoryReader {
  const unsigned char* bytes;
  std::size_t size, pos = 0;
  std::size_t read(void* dst, std::size_t n) {
    n = std::min(n, size - pos);
    if (n > 0) std::memcpy(dst, bytes + pos, n);
    pos += n;
    return n;
  }
  std::size_t drain() {
    const std::size_t left = size - pos;
    pos = size;
    return left;
  }
  bool size_bound(std::size_t& total, bool& exact) {  // the size is known exactly
    total = size;
    exact = true;
    return true;
  }
};

}  // namespace minidl::detail
