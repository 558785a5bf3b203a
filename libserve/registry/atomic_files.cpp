#include "libserve/registry/atomic_files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>
#include <vector>

#include "libserve/future.hpp"

namespace serve::registry {
namespace fs = std::filesystem;
namespace {

[[noreturn]] void fail_io(const std::string& what, const std::string& path, int err) {
  throw serve_exception(errc::internal, what + " " + path + ": " + std::strerror(err));
}

// Best effort: a folder's fsync makes the renames in it durable.
void sync_dir(const std::string& path) {
  int fd = ::open(path.empty() ? "." : path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

void write_all(int fd, const char* data, size_t size, const std::string& path) {
  while (size > 0) {
    auto n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      fail_io("cannot write", path, errno);
    data += n;
    size -= static_cast<size_t>(n);
  }
}

// Copies `from` to the new file `to`, flushed to disk.
void copy_file_synced(const fs::path& from, const fs::path& to) {
  std::ifstream in(from, std::ios::binary);
  if (!in)
    throw serve_exception(errc::invalid_argument, "cannot read " + from.string());
  int fd = ::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0)
    fail_io("cannot create", to.string(), errno);
  std::vector<char> buf(1 << 16);
  try {
    while (in) {
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      write_all(fd, buf.data(), static_cast<size_t>(in.gcount()), to.string());
    }
    if (in.bad())
      throw serve_exception(errc::invalid_argument, "cannot read " + from.string());
    if (::fsync(fd) != 0)
      fail_io("cannot flush", to.string(), errno);
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
}

} // namespace

void make_dirs(const std::string& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec)
    throw serve_exception(errc::internal, "cannot create folder " + path + ": " + ec.message());
}

void write_file_atomically(const std::string& path, const std::string& content,
                           const std::string& temp_dir) {
  fs::path target(path);
  auto dir = temp_dir.empty() ? target.parent_path().string() : temp_dir;
  std::string temp =
      (dir.empty() ? std::string(".") : dir) + "/." + target.filename().string() + ".tmp-XXXXXX";
  int fd = ::mkstemp(temp.data());
  if (fd < 0)
    fail_io("cannot create a temporary file in", dir, errno);
  try {
    write_all(fd, content.data(), content.size(), temp);
    if (::fchmod(fd, 0644) != 0 || ::fsync(fd) != 0)
      fail_io("cannot flush", temp, errno);
  } catch (...) {
    ::close(fd);
    ::unlink(temp.c_str());
    throw;
  }
  ::close(fd);
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(temp.c_str());
    fail_io("cannot rename " + temp + " to", path, err);
  }
  sync_dir(target.parent_path().string());
}

uint64_t copy_tree_synced(const std::string& from, const std::string& to) {
  uint64_t bytes = 0;
  std::error_code ec;
  auto unreadable = [&] {
    throw serve_exception(errc::invalid_argument, "cannot list " + from + ": " + ec.message());
  };
  fs::recursive_directory_iterator it(from, ec), end;
  if (ec)
    unreadable();
  for (; it != end; it.increment(ec)) {
    if (ec)
      unreadable();
    auto target = fs::path(to) / it->path().lexically_relative(from);
    if (fs::is_directory(it->path(), ec)) {
      make_dirs(target.string());
    } else if (fs::is_regular_file(it->path(), ec)) {
      copy_file_synced(it->path(), target);
      bytes += fs::file_size(it->path(), ec);
    }
  }
  return bytes;
}

bool rename_no_replace(const std::string& from, const std::string& to) {
#ifdef RENAME_NOREPLACE
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0)
    return true;
  if (errno == EEXIST)
    return false;
  if (errno != EINVAL && errno != ENOSYS)
    fail_io("cannot rename " + from + " to", to, errno);
#endif
  // No RENAME_NOREPLACE here: rename(2) refuses a non-empty target folder, not an empty one.
  std::error_code ec;
  if (fs::exists(to, ec))
    return false;
  if (std::rename(from.c_str(), to.c_str()) != 0) {
    if (errno == EEXIST || errno == ENOTEMPTY)
      return false;
    fail_io("cannot rename " + from + " to", to, errno);
  }
  return true;
}

staging_dir::staging_dir(const std::string& dir, const std::string& name) {
  std::string pattern = dir + "/." + name + ".tmp-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr)
    fail_io("cannot create a temporary folder in", dir, errno);
  path_ = pattern;
  ::chmod(path_.c_str(), 0755); // mkdtemp's 0700 would stay on the renamed folder
}

staging_dir::~staging_dir() {
  if (!path_.empty()) {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
}

bool staging_dir::move_to(const std::string& to) {
  std::error_code ec;
  for (fs::recursive_directory_iterator it(path_, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_directory(ec))
      sync_dir(it->path().string());
  sync_dir(path_);
  if (!rename_no_replace(path_, to))
    return false;
  path_.clear();
  sync_dir(fs::path(to).parent_path().string());
  return true;
}

} // namespace serve::registry
