// GET /metrics, Ray Serve's HTTP request metrics and the access log (see ingress.hpp).
//
// cpp-httplib calls the pre-routing hook before and the logger after each request, on the
// thread that serves it: the hook stamps the start time into the thread's request_log_info,
// handlers add the route, application and model, the logger counts and logs. Metric handles are
// cached per thread by their labels, so a request costs a hash lookup and a few unshared
// increments (libserve/metrics.hpp).
#include <chrono>
#include <cstdio>
#include <ctime>
#include <unordered_map>

#include <httplib.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "actors/call_context.hpp"
#include "http/ingress.hpp"
#include "http/request_log.hpp"
#include "libserve/metrics.hpp"

namespace serve {

request_log_info& current_request_log() {
  thread_local request_log_info info;
  return info;
}

namespace {

struct http_series {
  metrics::counter requests;
  metrics::counter errors;
  metrics::histogram latency_ms;
};

/// This thread's handles for (route, method, application, status).
http_series& series_for(const request_log_info& log, const std::string& method, int status) {
  thread_local std::unordered_map<std::string, http_series> cache;
  const std::string code = std::to_string(status);
  std::string key = log.route;
  key += '\n';
  key += method;
  key += '\n';
  key += log.application;
  key += '\n';
  key += code;
  auto found = cache.find(key);
  if (found != cache.end())
    return found->second;
  auto& reg = metrics::registry::global();
  http_series s;
  s.requests = reg.get_counter(
    "ray_serve_num_http_requests_total", "The number of HTTP requests processed.",
    {{"route", log.route}, {"method", method}, {"application", log.application},
     {"status_code", code}});
  if (status >= 400)
    s.errors = reg.get_counter("ray_serve_num_http_error_requests_total",
                               "The number of non-200 HTTP responses.",
                               {{"route", log.route}, {"error_code", code}, {"method", method},
                                {"application", log.application}});
  s.latency_ms = reg.get_histogram(
    "ray_serve_http_request_latency_ms",
    "The end-to-end latency of HTTP requests (measured from the Serve HTTP proxy).",
    metrics::latency_ms_buckets(),
    {{"route", log.route}, {"method", method}, {"application", log.application},
     {"status_code", code}});
  return cache.emplace(std::move(key), std::move(s)).first->second;
}

void append_json_string(std::string& out, const std::string& s) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
  out.append(buf.GetString(), buf.GetSize());
}

/// "2026-11-25T01:02:03.456Z"
std::string utc_now() {
  auto now = std::chrono::system_clock::now();
  auto t = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count()
            % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[80];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

void write_access_log(const std::string& format, const request_log_info& log,
                      const httplib::Request& req, int status, double latency_ms) {
  std::string line;
  line.reserve(160);
  const std::string target = log.model.empty() ? log.route : log.model;
  char latency[32];
  std::snprintf(latency, sizeof latency, "%.3f", latency_ms);
  if (format == "json") {
    line += "{\"time\":\"" + utc_now() + "\",\"request_id\":";
    append_json_string(line, log.request_id);
    line += ",\"method\":";
    append_json_string(line, req.method);
    line += ",\"path\":";
    append_json_string(line, req.path);
    line += ",\"route\":";
    append_json_string(line, log.route);
    line += ",\"application\":";
    append_json_string(line, log.application);
    line += ",\"model\":";
    append_json_string(line, log.model);
    line += ",\"status\":" + std::to_string(status) + ",\"latency_ms\":" + latency + "}\n";
  } else {
    line += utc_now() + " " + (log.request_id.empty() ? "-" : log.request_id) + " " + req.method
            + " " + req.path + " " + (target.empty() ? "-" : target) + " "
            + std::to_string(status) + " " + latency + "ms\n";
  }
  std::fwrite(line.data(), 1, line.size(), stderr); // one call: lines do not interleave
}

} // namespace

void http_ingress::install_observability() {
  auto& s = *server_;
  s.set_pre_routing_handler([](const httplib::Request&, httplib::Response&) {
    auto& log = current_request_log();
    log = request_log_info{};
    log.start_ns = steady_now_ns();
    return httplib::Server::HandlerResponse::Unhandled;
  });
  const std::string access_log = opts_.access_log;
  s.set_logger([access_log](const httplib::Request& req, const httplib::Response& res) {
    const auto& log = current_request_log();
    const double latency_ms = log.start_ns > 0 ? (steady_now_ns() - log.start_ns) / 1e6 : 0.0;
    if (!log.route.empty()) { // application and v2 routes; not /metrics, health or control API
      auto& series = series_for(log, req.method, res.status);
      series.requests.inc();
      series.errors.inc(); // a no-op handle below 400
      series.latency_ms.observe(latency_ms);
    }
    if (access_log != "off")
      write_access_log(access_log, log, req, res.status, latency_ms);
  });
  s.Get("/metrics", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics::registry::global().render(), "text/plain; version=0.0.4");
  });
}

} // namespace serve
