// The cluster part of the config: "nodes", "cluster" and each deployment's "placement".
#include <doctest/doctest.h>

#include "libserve/config.hpp"

using namespace serve;

namespace {

std::string with_cluster(const std::string& top, const std::string& deployment_fields = "") {
  return "{" + top + R"(, "applications": [{"name": "a", "deployments": [{"name": "D", "class": "C")"
         + deployment_fields + "}]}]}";
}

std::string error_of(const std::string& text) {
  auto r = parse_config(text);
  REQUIRE_FALSE(r.config);
  return r.error->to_string();
}

} // namespace

TEST_CASE("nodes, cluster settings and a placement are read with their defaults") {
  auto r = parse_config(with_cluster(
    R"("nodes": [{"name": "w1", "address": "127.0.0.1:7101"}, {"name": "gpu", "address": "[::1]:80"}],
       "cluster": {"token_file": "t", "heartbeat_timeout_s": 3})",
    R"(, "placement": {"nodes": ["w1", "head"]})"));
  REQUIRE(r.config);
  auto& cfg = *r.config;
  REQUIRE(cfg.nodes.size() == 2);
  CHECK(cfg.nodes[0].name == "w1");
  CHECK(cfg.nodes[0].host == "127.0.0.1");
  CHECK(cfg.nodes[0].port == 7101);
  CHECK(cfg.nodes[1].host == "::1");
  CHECK(cfg.cluster.token_file == "t");
  CHECK(cfg.cluster.heartbeat_interval_s == 1.0);
  CHECK(cfg.cluster.heartbeat_timeout_s == 3.0);
  CHECK_FALSE(cfg.cluster.tls.enabled());
  auto& p = cfg.applications[0].deployments[0].placement;
  CHECK(p.nodes == std::vector<std::string>{"w1", "head"});
  CHECK(p.model_source == "head");
}

TEST_CASE("a deployment without placement may use every node") {
  auto r = parse_config(with_cluster(R"("nodes": [{"name": "w1", "address": "h:1"}])"));
  REQUIRE(r.config);
  CHECK(r.config->applications[0].deployments[0].placement.nodes.empty());
}

TEST_CASE("a node address without a valid port is refused with its path") {
  CHECK(error_of(with_cluster(R"("nodes": [{"name": "w1", "address": "localhost"}])"))
        == "nodes[0].address: must be \"host:port\" with a port in 1..65535; was \"localhost\"");
  CHECK(error_of(with_cluster(R"("nodes": [{"name": "w1", "address": "h:70000"}])"))
        == "nodes[0].address: must be \"host:port\" with a port in 1..65535; was \"h:70000\"");
}

TEST_CASE("node names are unique and head is reserved") {
  CHECK(error_of(with_cluster(
          R"("nodes": [{"name": "w1", "address": "h:1"}, {"name": "w1", "address": "h:2"}])"))
        == "nodes[1].name: duplicate node name \"w1\"");
  CHECK(error_of(with_cluster(R"("nodes": [{"name": "head", "address": "h:1"}])"))
        == "nodes[0].name: \"head\" is reserved for the head process itself");
}

TEST_CASE("a placement naming an unknown node lists the known ones") {
  CHECK(error_of(with_cluster(R"("nodes": [{"name": "w1", "address": "h:1"}])",
                              R"(, "placement": {"nodes": ["w2"]})"))
        == "applications[0].deployments[0].placement.nodes[0]: unknown node \"w2\"; known nodes: "
           "head, w1 (list nodes in the top-level \"nodes\")");
}

TEST_CASE("a bad model_source and a heartbeat timeout not above the interval are refused") {
  CHECK(error_of(with_cluster(R"("nodes": [])", R"(, "placement": {"model_source": "s3"})"))
        == "applications[0].deployments[0].placement.model_source: must be \"head\" or \"node\"; "
           "was \"s3\"");
  CHECK(error_of(with_cluster(
          R"("cluster": {"heartbeat_interval_s": 2, "heartbeat_timeout_s": 1})"))
        == "cluster.heartbeat_timeout_s: must be greater than heartbeat_interval_s (2.0); was 1.0");
}

TEST_CASE("tls needs a certificate and a key") {
  CHECK(error_of(with_cluster(R"("cluster": {"tls": {"certificate": "c.pem"}})"))
        == "cluster.tls.key: is required");
  auto r = parse_config(with_cluster(
    R"("cluster": {"tls": {"certificate": "c.pem", "key": "k.pem", "ca_file": "ca.pem"}})"));
  REQUIRE(r.config);
  CHECK(r.config->cluster.tls.enabled());
  CHECK(r.config->cluster.tls.ca_file == "ca.pem");
}

TEST_CASE("the deployment JSON shows the placement") {
  auto r = parse_config(with_cluster(R"("nodes": [{"name": "w1", "address": "h:1"}])",
                                     R"(, "placement": {"nodes": ["w1"], "model_source": "node"})"));
  REQUIRE(r.config);
  auto json = deployment_config_json(r.config->applications[0].deployments[0]);
  CHECK(json.find(R"("placement":{"nodes":["w1"],"model_source":"node"})") != std::string::npos);
}
