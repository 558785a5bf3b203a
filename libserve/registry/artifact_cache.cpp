#include "libserve/registry/artifact_cache.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <vector>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libserve/future.hpp"

namespace serve::registry {
namespace fs = std::filesystem;
namespace {

constexpr const char* temp_suffix = ".tmp";
constexpr const char* lock_suffix = ".lock";

std::string errno_text() {
  return std::strerror(errno);
}

[[noreturn]] void fail(const std::string& what, const std::string& path) {
  throw serve_exception(errc::internal,
                        "registry cache: " + what + " " + path + ": " + errno_text());
}

/// An open file descriptor, closed on destruction.
class fd_guard {
public:
  explicit fd_guard(int fd) : fd_(fd) {}
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
  ~fd_guard() {
    if (fd_ >= 0)
      ::close(fd_);
  }
  int get() const { return fd_; }

private:
  int fd_;
};

/// flock(2) on a lock file, held until destruction (or the process ends).
class file_lock {
public:
  /// Blocks until the lock is held when `wait`, else `held()` says whether it was free.
  file_lock(const std::string& path, bool wait)
      : fd_(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644)) {
    if (fd_.get() < 0)
      fail("cannot open lock file", path);
    int rc;
    do
      rc = ::flock(fd_.get(), LOCK_EX | (wait ? 0 : LOCK_NB));
    while (rc != 0 && errno == EINTR);
    if (rc != 0 && (wait || errno != EWOULDBLOCK))
      fail("cannot lock", path);
    held_ = rc == 0;
  }
  bool held() const { return held_; }

private:
  fd_guard fd_;
  bool held_ = false;
};

void fsync_path(const std::string& path, bool directory) {
  fd_guard fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0)));
  if (fd.get() < 0 || ::fsync(fd.get()) != 0)
    fail("cannot fsync", path);
}

// fsyncs every file and folder below `dir`, then `dir` itself.
void fsync_tree(const std::string& dir) {
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_symlink())
      continue;
    fsync_path(entry.path().string(), entry.is_directory());
  }
  fsync_path(dir, true);
}

bool is_directory(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(fs::symlink_status(path, ec));
}

void remove_tree(const std::string& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
}

struct key_paths {
  std::string parent;
  std::string final_dir;
  std::string temp_dir;
  std::string lock_file;
};

key_paths paths_of(const std::string& root, const std::string& key) {
  if (key.empty() || key.front() == '/' || key.back() == '/')
    throw serve_exception(errc::internal, "registry cache: bad key '" + key + "'");
  size_t start = 0;
  while (start <= key.size()) {
    auto end = key.find('/', start);
    auto component = key.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (component.empty() || component.front() == '.')
      throw serve_exception(errc::internal,
                            "registry cache: bad key '" + key + "' (use cache_component)");
    if (end == std::string::npos)
      break;
    start = end + 1;
  }
  auto slash = key.rfind('/');
  auto last = slash == std::string::npos ? key : key.substr(slash + 1);
  key_paths p;
  p.parent = slash == std::string::npos ? root : root + "/" + key.substr(0, slash);
  p.final_dir = root + "/" + key;
  p.temp_dir = p.parent + "/." + last + temp_suffix;
  p.lock_file = p.parent + "/." + last + lock_suffix;
  return p;
}

bool ends_with(const std::string& s, const char* suffix) {
  auto n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

} // namespace

std::string default_registry_cache_dir() {
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg == '/')
    return std::string(xdg) + "/actorserve/registry";
  if (const char* home = std::getenv("HOME"); home && *home)
    return std::string(home) + "/.cache/actorserve/registry";
  throw serve_exception(errc::invalid_argument,
                        "registry cache: neither XDG_CACHE_HOME nor HOME is set; give the cache "
                        "folder explicitly");
}

std::string cache_component(const std::string& text) {
  if (text.empty())
    return "%";
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c == '%' || c == '/' || c < 0x20 || c == 0x7f || (i == 0 && c == '.')) {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

artifact_cache::artifact_cache(std::string root) : root_(std::move(root)) {
  while (root_.size() > 1 && root_.back() == '/')
    root_.pop_back();
  std::error_code ec;
  fs::create_directories(root_, ec);
  if (!is_directory(root_))
    throw serve_exception(errc::invalid_argument,
                          "registry cache folder " + root_ + " cannot be created" +
                              (ec ? ": " + ec.message() : std::string(" (not a folder)")));
  remove_stale();
}

std::optional<std::string> artifact_cache::find(const std::string& key) const {
  auto paths = paths_of(root_, key);
  if (is_directory(paths.final_dir))
    return paths.final_dir;
  return std::nullopt;
}

std::string artifact_cache::fill(const std::string& key,
                                 const std::function<void(const std::string&)>& download) {
  auto paths = paths_of(root_, key);
  if (is_directory(paths.final_dir))
    return paths.final_dir;
  std::error_code ec;
  fs::create_directories(paths.parent, ec);
  if (!is_directory(paths.parent))
    throw serve_exception(errc::internal, "registry cache: cannot create " + paths.parent +
                                              (ec ? ": " + ec.message() : std::string()));
  file_lock lock(paths.lock_file, /*wait=*/true);
  if (is_directory(paths.final_dir)) // another filler finished while we waited
    return paths.final_dir;
  remove_tree(paths.temp_dir); // left by a crashed filler: its lock died with it
  if (::mkdir(paths.temp_dir.c_str(), 0755) != 0)
    fail("cannot create", paths.temp_dir);
  try {
    download(paths.temp_dir);
    fsync_tree(paths.temp_dir);
    if (::rename(paths.temp_dir.c_str(), paths.final_dir.c_str()) != 0)
      fail("cannot rename into place", paths.final_dir);
  } catch (...) {
    remove_tree(paths.temp_dir);
    throw;
  }
  // Make the rename durable, and the parents created for it.
  for (fs::path dir = paths.parent;; dir = dir.parent_path()) {
    fsync_path(dir.string(), true);
    if (dir.string().size() <= root_.size())
      break;
  }
  return paths.final_dir;
}

size_t artifact_cache::remove_stale() const {
  // Temp folders are siblings of final folders, whose keys have 1 to 3 components. A temp
  // folder always has its lock file beside it (made first, never deleted), which tells it from
  // a folder named like one inside a model's artifacts.
  std::vector<std::pair<std::string, std::string>> candidates; // temp folder, lock file
  std::error_code ec;
  for (fs::recursive_directory_iterator it(root_, ec), end; !ec && it != end; it.increment(ec)) {
    auto name = it->path().filename().string();
    bool temp = name.size() > 1 + std::strlen(temp_suffix) && name.front() == '.' &&
                ends_with(name, temp_suffix) && it->is_directory(ec);
    if (temp) {
      auto stem = name.substr(0, name.size() - std::strlen(temp_suffix));
      auto lock = (it->path().parent_path() / (stem + lock_suffix)).string();
      if (fs::is_regular_file(lock, ec))
        candidates.emplace_back(it->path().string(), lock);
    }
    if (temp || it.depth() >= 2)
      it.disable_recursion_pending();
  }
  size_t removed = 0;
  for (const auto& [temp, lock_path] : candidates) {
    file_lock lock(lock_path, /*wait=*/false);
    if (!lock.held())
      continue; // a live filler owns it
    remove_tree(temp);
    ++removed;
  }
  return removed;
}

} // namespace serve::registry
