// A local cache of artifact folders downloaded from a remote registry, where a folder under its
// final name is always complete.
//
//   artifact_cache cache(default_registry_cache_dir() + "/127.0.0.1_5000");
//   if (auto dir = cache.find("iris/1")) return *dir;                  // no network
//   auto dir = cache.fill("iris/1", [&](const std::string& temp_dir) { /* download into it */ });
//
// Layout: a key is '/'-separated components, each made with cache_component(), and names the
// folder <root>/<key>. While key .../P/LAST is filled, its files go to the temp folder
// P/.LAST.tmp and the filler holds flock(2) on P/.LAST.lock.
//
// Invariants:
//   - A folder under its final name is complete: it appears only by rename(2) of a temp folder
//     whose files and folders were all fsync'ed first; the parent is fsync'ed after the rename.
//   - Fills of one key are serialized across threads and processes by the lock file; the second
//     filler finds the folder complete and downloads nothing.
//   - A temp folder whose lock is free was left by a crash (a lock dies with its process): the
//     constructor and the next fill() of that key delete it. A failed fill() deletes its own.
//   - Components never start with '.', so temp folders and lock files cannot collide with keys.
//
// Thread-safe: all state is on disk, guarded by the lock files.
#pragma once

#include <functional>
#include <optional>
#include <string>

namespace serve::registry {

/// The default root of the registry cache: $XDG_CACHE_HOME/actorserve/registry, else
/// $HOME/.cache/actorserve/registry. Throws serve_exception(invalid_argument) when neither
/// variable is set.
std::string default_registry_cache_dir();

/// `text` as one path component of a cache key: '%' -> %25, '/' -> %2F, a leading '.' -> %2E,
/// control characters -> %XX; "" -> "%". Distinct texts give distinct components.
std::string cache_component(const std::string& text);

class artifact_cache {
public:
  /// Fills folders under `root` (created when missing) and removes stale temp folders left
  /// there by crashed fills. Throws serve_exception(invalid_argument) when `root` cannot be
  /// created.
  explicit artifact_cache(std::string root);

  /// The complete folder for `key`, or nullopt when it has not been filled.
  std::optional<std::string> find(const std::string& key) const;

  /// The complete folder for `key`: as found, else made by calling `download(temp_dir)` on an
  /// empty temp folder, fsync'ing what it wrote and renaming it into place. An exception from
  /// `download` leaves no folder under the final name; it is rethrown after the temp folder is
  /// deleted. Blocks while another thread or process fills the same key.
  std::string fill(const std::string& key,
                   const std::function<void(const std::string& temp_dir)>& download);

  /// Deletes the temp folders (up to three levels below the root) whose lock is free; returns
  /// how many it deleted.
  size_t remove_stale() const;

  const std::string& root() const { return root_; }

private:
  std::string root_;
};

} // namespace serve::registry
