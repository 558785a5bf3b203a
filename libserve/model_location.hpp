// Where a model deployment's files are: a local .onnx file, a model folder, or a registry URI
// resolved against an MLflow store; and the bundle of those files a head ships to a worker node
// (placement "model_source": "head").
//
// Everything here reads files (and, for a tracking server, the network): call it from an
// executor or another detached actor, never on a CAF scheduler thread. Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "libserve/config.hpp"

namespace serve {

/// The bytes of the file at `path`. Throws serve_exception(not_found) "cannot read WHAT
/// \"PATH\"" when it cannot be opened.
std::string read_whole_file(const std::string& path, const std::string& what);

/// Where a model's files are, and which registry version they are.
struct located_model {
  /// The .onnx file to load.
  std::string model_path;
  /// Its folder (where a relative labels file is also looked for).
  std::string dir;
  /// The registry version ("" for local paths and runs:/).
  std::string version;
  /// "models:/iris@production -> version 3", or the path.
  std::string resolved;
};

/// A local .onnx file, a model folder (MLmodel or model.onnx), or a registry URI resolved
/// against `registry_uri` (an MLflow file store, SQLite store or tracking server). Throws
/// serve_exception naming the problem.
located_model locate_model(const std::string& uri, const std::string& registry_uri);

/// The labels file: as given, or, for a relative path that does not exist, inside the model's
/// folder (registry models carry it as an artifact).
std::string labels_path(const std::string& labels, const std::string& model_dir);

/// A model's files as bytes, to be written out on another machine.
struct model_bundle {
  /// Relative path ('/'-separated, no "..") -> contents. Holds the model's folder (or its one
  /// .onnx file) and the labels file as "labels.json" when there is one.
  std::map<std::string, std::string> files;
  /// The model file within `files`.
  std::string model_file;
  /// "labels.json" or "".
  std::string labels_file;
  /// locate_model()'s version and description, kept for the status.
  std::string version;
  std::string resolved;
};

/// Largest bundle shipped to a node (bytes); bigger models must be reachable from the node
/// ("model_source": "node").
constexpr uint64_t max_bundle_bytes = uint64_t{1} << 30;

/// Reads the files of `spec`'s model (resolved as a replica would) into a bundle. Throws
/// serve_exception when the model cannot be located or is over max_bundle_bytes.
model_bundle read_model_bundle(const model_spec& spec);

/// The model spec a head sends with a bundle: `original` with uri and labels naming the files
/// within the bundle, no registry, and the version the head resolved.
model_spec shipped_model_spec(const model_bundle& bundle, const model_spec& original);

/// Writes `bundle` below `folder` (created; existing files replaced). Throws serve_exception
/// when a path is unsafe or a file cannot be written.
void write_model_bundle(const model_bundle& bundle, const std::string& folder);

/// A model spec's JSON (model_spec_json) with relative "uri" and "labels" made absolute below
/// `folder`, where write_model_bundle put the files.
std::string relocate_model_json(const std::string& model_json, const std::string& folder);

} // namespace serve
