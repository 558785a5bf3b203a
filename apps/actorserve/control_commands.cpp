// `actorserve status`, `deploy` and `check`: talk to a running server's control API, or
// validate a config offline.
#include <cstdio>
#include <fstream>
#include <sstream>

#include <httplib.h>
#include <rapidjson/document.h>

#include "apps/actorserve/commands.hpp"
#include "libserve/config.hpp"
#include "libserve/deployment.hpp"
#include "libserve/json.hpp"

namespace serve::cli {

namespace {

const char* default_address = "http://127.0.0.1:8000";

const char* status_usage = R"(Usage: actorserve status [--address URL]

Prints the applications, deployments and replicas of a running server (Ray Serve's status
vocabulary), with in-flight and queued requests and load-time warnings.
  --address URL   the server (default http://127.0.0.1:8000)
  --json          print the raw JSON of GET /api/serve/applications/
)";

const char* deploy_usage = R"(Usage: actorserve deploy CONFIG [--address URL]

Applies CONFIG to a running server (PUT /api/serve/applications/): new applications start,
missing ones are deleted, changed code rolls out replica by replica, and a changed user_config
reaches each replica's reconfigure() without a restart.
  --address URL   the server (default http://127.0.0.1:8000)
)";

const char* check_usage = R"(Usage: actorserve check CONFIG

Validates CONFIG as `run` would (JSON paths of bad fields, unknown deployment classes) and
prints warnings. Exits 0 when valid, 2 otherwise. Starts nothing.
)";

bool read_file(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return false;
  std::stringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return true;
}

/// Parses "[--address URL] [other flags]"; returns an exit code on help/error.
std::optional<int> parse_common(const std::vector<std::string>& args, const char* usage,
                                std::string& address, std::vector<std::string>& positional,
                                bool* json_flag = nullptr) {
  arg_reader r{args};
  while (!r.done()) {
    auto a = r.next();
    if (a == "-h" || a == "--help") {
      std::fputs(usage, stdout);
      return 0;
    }
    if (a == "--address") {
      if (r.done()) {
        std::fprintf(stderr, "--address needs a URL\n");
        return 2;
      }
      address = r.next();
    } else if (a == "--json" && json_flag) {
      *json_flag = true;
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "unknown option %s\n\n%s", a.c_str(), usage);
      return 2;
    } else {
      positional.push_back(a);
    }
  }
  return std::nullopt;
}

void print_deployment(const rapidjson::Value& dep) {
  size_t running = 0;
  uint64_t ongoing = 0;
  for (auto& r : dep["replicas"].GetArray()) {
    running += std::string(r["state"].GetString()) == "RUNNING";
    ongoing += r["ongoing_requests"].GetUint64();
  }
  std::printf("    %-24s %-14s replicas %zu/%d running  in-flight %llu  queued %llu\n",
              dep["name"].GetString(), dep["status"].GetString(), running,
              dep["target_num_replicas"].GetInt(), static_cast<unsigned long long>(ongoing),
              static_cast<unsigned long long>(dep["queued_requests"].GetUint64()));
  if (dep["message"].GetStringLength() > 0)
    std::printf("      message: %s\n", dep["message"].GetString());
  for (auto& w : dep["warnings"].GetArray())
    std::printf("      warning: %s\n", w.GetString());
  for (auto& r : dep["replicas"].GetArray())
    std::printf("      %-36s %-9s in-flight %llu  node %s\n", r["replica_id"].GetString(),
                r["state"].GetString(),
                static_cast<unsigned long long>(r["ongoing_requests"].GetUint64()),
                r.HasMember("node") ? r["node"].GetString() : "head");
}

void print_status(const rapidjson::Document& doc) {
  if (doc.HasMember("nodes"))
    for (auto& n : doc["nodes"].GetArray())
      std::printf("node %-16s %-22s %-10s %s\n", n["name"].GetString(), n["address"].GetString(),
                  n["status"].GetString(), n["message"].GetString());
  const auto& apps = doc["applications"];
  if (apps.MemberCount() == 0)
    std::puts("no applications");
  for (auto& m : apps.GetObject()) {
    const auto& app = m.value;
    std::printf("%s  %s  route %s  ingress %s\n", app["name"].GetString(),
                app["status"].GetString(), app["route_prefix"].GetString(),
                app["ingress"].GetString());
    if (app["message"].GetStringLength() > 0)
      std::printf("  message: %s\n", app["message"].GetString());
    for (auto& d : app["deployments"].GetObject())
      print_deployment(d.value);
  }
}

} // namespace

int status_command(const std::vector<std::string>& args) {
  std::string address = default_address;
  std::vector<std::string> positional;
  bool raw = false;
  if (auto code = parse_common(args, status_usage, address, positional, &raw))
    return *code;
  httplib::Client client(address);
  client.set_connection_timeout(5);
  auto res = client.Get("/api/serve/applications/");
  if (!res) {
    std::fprintf(stderr, "actorserve status: cannot reach %s (%s)\n", address.c_str(),
                 httplib::to_string(res.error()).c_str());
    return 1;
  }
  if (res->status != 200) {
    std::fprintf(stderr, "actorserve status: HTTP %d: %s\n", res->status, res->body.c_str());
    return 1;
  }
  if (raw) {
    std::puts(res->body.c_str());
    return 0;
  }
  rapidjson::Document doc;
  if (parse_json(doc, res->body) || !doc.IsObject()
      || !doc.HasMember("applications")) {
    std::fprintf(stderr, "actorserve status: unexpected reply: %s\n", res->body.c_str());
    return 1;
  }
  print_status(doc);
  return 0;
}

int deploy_command(const std::vector<std::string>& args) {
  std::string address = default_address;
  std::vector<std::string> positional;
  if (auto code = parse_common(args, deploy_usage, address, positional))
    return *code;
  if (positional.size() != 1) {
    std::fprintf(stderr, "actorserve deploy: expected exactly one CONFIG\n\n%s", deploy_usage);
    return 2;
  }
  std::string text;
  if (!read_file(positional[0], text)) {
    std::fprintf(stderr, "actorserve deploy: cannot read %s\n", positional[0].c_str());
    return 2;
  }
  httplib::Client client(address);
  client.set_read_timeout(600);
  auto res = client.Put("/api/serve/applications/", text, "application/json");
  if (!res) {
    std::fprintf(stderr, "actorserve deploy: cannot reach %s (%s)\n", address.c_str(),
                 httplib::to_string(res.error()).c_str());
    return 1;
  }
  if (res->status != 200) {
    std::fprintf(stderr, "actorserve deploy: HTTP %d: %s\n", res->status, res->body.c_str());
    return res->status == 400 ? 2 : 1;
  }
  std::printf("applied %s: %s\n", positional[0].c_str(), res->body.c_str());
  return 0;
}

int check_command(const std::vector<std::string>& args) {
  std::string address;
  std::vector<std::string> positional;
  if (auto code = parse_common(args, check_usage, address, positional))
    return *code;
  if (positional.size() != 1) {
    std::fprintf(stderr, "actorserve check: expected exactly one CONFIG\n\n%s", check_usage);
    return 2;
  }
  config_parse_options popts;
  popts.known_classes = deployment_registry::names();
  popts.is_known_class = [](const std::string& n) { return bool(deployment_registry::find(n)); };
  auto result = load_config_file(positional[0], popts);
  for (auto& w : result.warnings)
    std::printf("warning: %s\n", w.c_str());
  if (!result.config) {
    std::fprintf(stderr, "invalid config %s: %s\n", positional[0].c_str(),
                 result.error->to_string().c_str());
    return 2;
  }
  std::printf("%s is valid: %zu application(s)\n", positional[0].c_str(),
              result.config->applications.size());
  return 0;
}

} // namespace serve::cli
