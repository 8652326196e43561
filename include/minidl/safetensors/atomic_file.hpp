// minidl — writing a file atomically: readers see the old file or the new one,
// never a half-written one, also if the process dies in the middle.
//
// The bytes go to a temporary file in the target's own directory (a rename is
// atomic only within one file system), which is flushed to disk (fsync) and
// then renamed over the target; finally the directory is fsync'd so the rename
// itself survives a power cut. On any failure before the rename the temporary
// file is removed and the old target is left as it was. POSIX only.
//
// If the target is a symbolic link, the link itself is replaced by a regular
// file (as rename(2) does); the new file gets the default mode 0666 & ~umask.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "../error.hpp"

namespace minidl {
namespace detail {

/// Test hook: when set, called with the temporary file's path after it has
/// been written and fsync'd and before the rename. A hook that throws
/// simulates a crash at that point (the temporary file is then removed).
inline std::function<void(const std::string& tmp_path)> before_rename_hook;

[[noreturn]] inline void atomic_write_fail(const std::string& path, const std::string& step, int err) {
  throw IOError("cannot write file '" + path + "': " + step + ": " + std::strerror(err));
}

/// The open temporary file: closed and removed on scope exit unless the
/// rename has taken it over (commit()).
class TempFile {
 public:
  TempFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(path_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  /// Closes the descriptor; returns close's errno, or 0.
  int close() {
    const int r = ::close(fd_);
    fd_ = -1;
    return r == 0 ? 0 : errno;
  }
  void commit() { committed_ = true; }

 private:
  std::string path_;
  int fd_ = -1;
  bool committed_ = false;
};

/// Creates "<path>.tmp-<pid>-<n>" in `dir` exclusively (O_EXCL: never reuses
/// a file another writer has open); retries on a name clash. A file name too
/// long to take the suffix within the directory's name limit (NAME_MAX, 255
/// bytes on most file systems) is shortened in the temporary name only: any
/// name the target can have, the temporary file can too.
inline TempFile create_temp_beside(const std::string& path, const std::string& dir) {
  static std::atomic<unsigned long> counter{0};
  const std::filesystem::path target(path);
  const std::string name = target.filename().string();
  const long limit = ::pathconf(dir.c_str(), _PC_NAME_MAX);
  const std::size_t name_max = limit > 0 ? static_cast<std::size_t>(limit) : 255;
  std::string tmp;
  for (int attempt = 0; attempt < 100; ++attempt) {
    const std::string suffix = ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    const std::size_t keep = name_max > suffix.size() ? std::min(name.size(), name_max - suffix.size()) : 0;
    tmp = (target.parent_path() / (name.substr(0, keep) + suffix)).string();
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) return TempFile(tmp, fd);
    if (errno != EEXIST) break;
  }
  atomic_write_fail(path, "cannot create the temporary file '" + tmp + "'", errno);
}

}  // namespace detail

/// Replaces the contents of `path` with `bytes` atomically (see the top of
/// this file). Throws IOError naming the path, the step that failed and the
/// system's error text; on a failure the old file is unchanged and no
/// temporary file is left behind.
inline void write_file_atomically(const std::string& path, std::string_view bytes) {
  const std::filesystem::path target(path);
  if (path.empty() || !target.has_filename()) detail::atomic_write_fail(path, "the path names no file", EISDIR);
  std::string dir = target.parent_path().string();
  if (dir.empty()) dir = ".";

  detail::TempFile tmp = detail::create_temp_beside(path, dir);
  for (std::size_t done = 0; done < bytes.size();) {
    const ::ssize_t n = ::write(tmp.fd(), bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) detail::atomic_write_fail(path, "writing the temporary file '" + tmp.path() + "'", errno);
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(tmp.fd()) != 0) detail::atomic_write_fail(path, "flushing '" + tmp.path() + "' to disk", errno);
  if (const int err = tmp.close()) detail::atomic_write_fail(path, "closing '" + tmp.path() + "'", err);
  if (detail::before_rename_hook) detail::before_rename_hook(tmp.path());
  if (::rename(tmp.path().c_str(), path.c_str()) != 0)
    detail::atomic_write_fail(path, "renaming '" + tmp.path() + "' over it", errno);
  tmp.commit();

  // The new file is in place; make the rename durable. File systems that
  // cannot sync a directory report EINVAL, which is not a failure of ours.
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) detail::atomic_write_fail(path, "written, but opening its directory to sync it failed", errno);
  const int synced = ::fsync(dir_fd) == 0 ? 0 : errno;
  ::close(dir_fd);
  if (synced != 0 && synced != EINVAL)
    detail::atomic_write_fail(path, "written, but syncing its directory '" + dir + "' failed", synced);
}

}  // namespace minidl
