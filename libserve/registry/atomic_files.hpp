// Writing files and folders so that a reader never sees them half-written: a file is written
// under a hidden temporary name, flushed and renamed over its final name; a folder is assembled
// under a hidden temporary name and renamed into place whole, unless its final name exists.
// Temporary names are ".<name>.tmp-XXXXXX", which MLflow's file store and mlflow_file_store
// ignore (they read only meta.yaml, version-N/, m-<id>/ and the files in aliases/ and tags/ -
// so temporary files for those two folders go to their parent).
//
//   write_file_atomically(dir + "/meta.yaml", text);
//   staging_dir stage(models_dir, model_id);     // models_dir/.m-<id>.tmp-XXXXXX
//   copy_tree_synced(source, stage.path() + "/artifacts");
//   stage.move_to(models_dir + "/" + model_id);  // false when that exists
//
// Used by file_store_writer; not part of the registry's public API.
#pragma once

#include <cstdint>
#include <string>

namespace serve::registry {

/// Writes `content` to `path` through a temporary file in `temp_dir` ("" = path's folder; it
/// must be on the same file system) that is flushed to disk and renamed over `path` (mode 0644).
/// Throws serve_exception(internal) naming the path and the system error.
void write_file_atomically(const std::string& path, const std::string& content,
                           const std::string& temp_dir = "");

/// Copies every regular file below `from` (symbolic links followed) into the existing folder
/// `to`, keeping sub-folders, each file flushed to disk; returns the bytes copied. Throws
/// serve_exception: invalid_argument when `from` cannot be read, internal when `to` cannot be
/// written.
uint64_t copy_tree_synced(const std::string& from, const std::string& to);

/// Creates `path` and its missing parents. Throws serve_exception(internal) naming it.
void make_dirs(const std::string& path);

/// Renames the folder `from` to `to` unless `to` exists (renameat2 RENAME_NOREPLACE where the
/// file system has it); false when `to` exists. Throws serve_exception(internal) otherwise.
bool rename_no_replace(const std::string& from, const std::string& to);

/// A hidden folder ".<name>.tmp-XXXXXX" in `dir` (mode 0755), deleted with its contents by the
/// destructor unless move_to() renamed it into place. Not thread-safe.
class staging_dir {
public:
  /// Throws serve_exception(internal) when the folder cannot be created.
  staging_dir(const std::string& dir, const std::string& name);
  ~staging_dir();
  staging_dir(const staging_dir&) = delete;
  staging_dir& operator=(const staging_dir&) = delete;

  const std::string& path() const { return path_; }

  /// Flushes the folder and renames it to `to` unless that exists (then false, and the folder
  /// stays to be deleted).
  bool move_to(const std::string& to);

private:
  std::string path_;
};

} // namespace serve::registry
