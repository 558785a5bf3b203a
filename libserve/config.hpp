// The serving configuration: what `actorserve run CONFIG` and PUT /api/serve/applications/ take.
//
// JSON with Ray Serve's field names where Ray Serve has one. parse_config() validates
// everything before anything starts; a bad field is reported with its JSON path and the reason
// ("applications[0].deployments[1].batching.max_batch_size: must be >= 1; was 0"). Unknown
// fields are refused (a typo must not silently fall back to a default).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace serve {

/// @serve.batch's parameters (Ray Serve names and defaults).
struct batch_options {
  /// Largest batch handed to the handler. Must be >= 1.
  size_t max_batch_size = 10;
  /// How long the first request of a batch waits for company. 0 = send what is there.
  std::chrono::microseconds batch_wait_timeout{10'000};
  /// Batches allowed to run at once on one replica. Must be >= 1.
  size_t max_concurrent_batches = 1;
};

/// "model": an ONNX model by path or registry URI (served from issue 3 on).
struct model_spec {
  /// A .onnx file, or a folder holding model.onnx. Relative paths are relative to the working
  /// directory of the server.
  std::string uri;
  /// Optional JSON file: an array mapping class ids to names, or an object {"id": "name"}.
  std::string labels;
  /// Optional feature order: requests may then be objects {"<feature>": value, ...} (one row).
  std::vector<std::string> features;
  /// Where registry URIs (models:/..., runs:/...) are resolved: an MLflow file store folder,
  /// sqlite:///path/mlflow.db or a tracking server http://host:port. The model's own
  /// "registry_uri", else its application's, else the config's top-level one; "" = none.
  std::string registry_uri;
  /// How often a model pinned to an alias, stage or "latest" asks its registry for a newer
  /// version (seconds, > 0).
  double poll_interval_s = 10.0;
  /// Set only for a model a head shipped to a worker node (model_location.hpp): the registry
  /// version and description the head resolved, shown in the status instead of the local copy's.
  std::string resolved_version;
  std::string resolved_from;
};

/// The model spec as a JSON object ({"uri", "labels", "features"}), as the executor reads it.
std::string model_spec_json(const model_spec& spec);

/// Where a deployment's replicas may run ("placement").
struct placement_options {
  /// Node names replicas may be placed on; "head" is the process that reads the config. Empty =
  /// spread over every node that is up, the head included.
  std::vector<std::string> nodes;
  /// "head": the head reads the model's files (resolving its registry URI) and sends them to the
  /// node; "node": the node resolves the model URI itself (a registry or path it can reach).
  std::string model_source = "head";
};

/// One deployment of an application: exactly one of class, model or graph.
struct deployment_config {
  enum class kind { class_name, model, graph };

  std::string name;
  kind type = kind::class_name;
  /// "class": a C++ deployment class registered under this name.
  std::string class_name;
  /// "model"
  model_spec model;
  /// "graph": the graph object as compact JSON text, validated (see README, "graph").
  std::string graph_json;
  /// Names of the deployments a graph calls (validated to exist in the same application).
  std::vector<std::string> graph_calls;

  /// Replicas of this deployment. >= 1. Ray default 1.
  int num_replicas = 1;
  /// In-flight cap per replica. >= 1. Ray default 5.
  int max_ongoing_requests = 5;
  /// Wait-queue cap of the deployment's router; -1 = unlimited (Ray default), else >= 1.
  int max_queued_requests = -1;
  /// user_config as compact JSON text; "null" when absent.
  std::string user_config_json = "null";
  /// Present when the deployment batches requests.
  std::optional<batch_options> batching;
  /// Where a model deployment's replicas compute: "cpu" (default: existing configs keep their
  /// behaviour and numerics), "auto" (a GPU when one is usable and the graph has GPU kernels,
  /// else the CPU, saying why), "cuda" (a GPU, replicas spread round-robin; fails to start
  /// without one) or "cuda:N" (that GPU). Class deployments receive it in deployment_context.
  std::string device = "cpu";
  /// GPU compute precision of float32 models: "tf32" (default), "fp32", "fp16", "bf16".
  /// Ignored on the CPU.
  std::string precision = "tf32";
  /// Drain time on shutdown before in-flight work is abandoned. >= 0. Ray default 20 s.
  double graceful_shutdown_timeout_s = 20.0;
  placement_options placement;

  /// In-flight cap the router applies per replica: max_ongoing_requests, raised to
  /// max_batch_size x max_concurrent_batches when batching would otherwise be capped.
  size_t effective_max_ongoing() const;
  /// The load-time warning about batching vs max_ongoing_requests, or "" when it does not apply.
  std::string batching_warning() const;
  /// True when `other` differs only in fields applied without restarting replicas
  /// (user_config, num_replicas, max_ongoing_requests, max_queued_requests, batching,
  /// graceful_shutdown_timeout_s).
  bool same_code(const deployment_config& other) const;
};

struct application_config {
  std::string name;
  /// Starts with "/", no trailing "/" (except "/" itself); unique across applications.
  std::string route_prefix = "/";
  /// The deployment that receives HTTP requests. Defaults to the only deployment when there is one.
  std::string ingress;
  std::vector<deployment_config> deployments;
  /// "registry_uri" of the application (see model_spec::registry_uri), or "".
  std::string registry_uri;

  const deployment_config* find(const std::string& deployment) const;
};

/// "http_options" (Ray's names; the last four are ActorServe's own).
/// The HTTP ingress (http/): an event-driven HTTP/1.1 server. Each limit has its own status:
/// a body over max_body_bytes 413, headers over max_header_bytes or max_header_count 431, a
/// request target over max_url_bytes 414, a request not fully received within
/// request_read_timeout_s 408; each answer closes the connection.
struct http_options {
  std::string host = "127.0.0.1";
  /// 0 = pick a free port (the bound port is printed at start).
  int port = 8000;
  /// Seconds before a request gets 408, whether queued or running; unset = no limit.
  std::optional<double> request_timeout_s;
  /// Idle keep-alive connections are closed after this many seconds. > 0.
  double keep_alive_timeout_s = 5.0;
  /// Seconds a client has to send one whole request, headers and body, from its first byte;
  /// past it the client gets 408 and the connection closes. One deadline per request, not per
  /// read, so a client that drips bytes cannot hold a connection. > 0.
  double request_read_timeout_s = 30.0;
  /// Threads running the event loops; each owns the connections placed on it and an idle or
  /// slow connection holds none. 0 = one per core. 0..256.
  int io_threads = 0;
  /// Client connections open at once; at the limit accepting pauses (new clients wait in the
  /// listen queue) until one closes. >= 1.
  int max_connections = 10000;
  /// Requests read ahead on one connection while earlier ones are being answered (HTTP
  /// pipelining; answers go out in request order). At the limit reading pauses. >= 1.
  int max_pipelined_requests = 16;
  /// Requests served on one keep-alive connection before it is closed. >= 1.
  int keep_alive_max_count = 10000;
  /// Largest accepted request body in bytes, whether framed by Content-Length or chunked
  /// (413 at the limit; nothing past it is buffered). >= 1.
  size_t max_body_bytes = 64 * 1024 * 1024;
  /// Largest request line plus header fields in bytes (431 above). 1024..1048576.
  size_t max_header_bytes = 16 * 1024;
  /// Most header fields in one request (431 above). >= 1.
  int max_header_count = 100;
  /// Longest request target (path and query) in bytes (414 above). 16..1048576.
  size_t max_url_bytes = 8 * 1024;
  /// One line per request on stderr: "off", "text" or "json" (`actorserve run --access-log`).
  std::string access_log = "off";
  /// The former thread-per-connection server's pool size: accepted so old configs still load,
  /// ignored with a warning.
  std::optional<int> num_threads;
};

/// A worker node (`actorserve node --listen HOST:PORT`) the head may place replicas on.
struct node_config {
  /// Unique; not "head".
  std::string name;
  std::string host;
  int port = 0;
};

/// TLS between the head and its nodes (CAF's OpenSSL module). Off when certificate is "".
struct tls_options {
  /// PEM certificate and private key of this process.
  std::string certificate;
  std::string key;
  /// PEM file of the CA that signed the peers' certificates ("" = do not verify peers).
  std::string ca_file;
  bool enabled() const { return !certificate.empty(); }
};

/// How the head talks to its nodes ("cluster").
struct cluster_options {
  /// File holding the token nodes were started with (--token-file); "" = send none (such a head
  /// can join only nodes started without a token).
  std::string token_file;
  /// How often the head pings each node (seconds, > 0).
  double heartbeat_interval_s = 1.0;
  /// A node that has not answered for this long is lost: its in-flight calls fail with 503 and
  /// its replicas are placed elsewhere (seconds, > heartbeat_interval_s). A node that hears no
  /// ping for this long stops the replicas it hosts for that head.
  double heartbeat_timeout_s = 5.0;
  /// How long to wait between attempts to reach a node that is down (seconds, > 0).
  double reconnect_interval_s = 1.0;
  tls_options tls;
};

struct serve_config {
  http_options http;
  /// Top-level "registry_uri" (see model_spec::registry_uri), or "".
  std::string registry_uri;
  std::vector<application_config> applications;
  /// Worker nodes ("nodes"); empty = everything runs in this process.
  std::vector<node_config> nodes;
  cluster_options cluster;
};

/// A refused config: the JSON path of the bad field and why.
struct config_error {
  std::string path;
  std::string reason;
  std::string to_string() const { return path.empty() ? reason : path + ": " + reason; }
};

struct config_parse_options {
  /// Tells whether a deployment class name is registered. Unset = every name is accepted.
  std::function<bool(const std::string&)> is_known_class;
  /// The registered names, quoted in the error for an unknown class.
  std::vector<std::string> known_classes;
};

/// Result of parse_config: a config, or the first error found.
struct config_result {
  std::optional<serve_config> config;
  std::optional<config_error> error;
  /// Non-fatal findings (the batching warning, ...), prefixed with the deployment's path.
  std::vector<std::string> warnings;
};

/// Parses and validates a config document. Never throws.
config_result parse_config(const std::string& json_text, const config_parse_options& opts = {});

/// Reads and parses a config file; a missing or unreadable file is a config_error.
config_result load_config_file(const std::string& path, const config_parse_options& opts = {});

/// The deployment's options as Ray's "deployment_config" JSON object (for the status API).
std::string deployment_config_json(const deployment_config& dep);

} // namespace serve
