// GET /metrics, Ray Serve's HTTP request metrics and the access log (see ingress.hpp).
//
// finished() runs on the io thread right after each exchange is answered, refusals by the HTTP
// layer included (their route is ""): it counts the response by route, method, application and
// status and writes the access-log line. Metric handles are cached per io thread by their
// labels, so a request costs a hash lookup and a few unshared increments (libserve/metrics.hpp).
#include <chrono>
#include <cstdio>
#include <ctime>
#include <unordered_map>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "actors/call_context.hpp"
#include "http/ingress.hpp"
#include "http/request_log.hpp"
#include "libserve/json.hpp"
#include "libserve/metrics.hpp"

namespace serve {

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
  auto text = printable_utf8(s);
  w.String(text.c_str(), static_cast<rapidjson::SizeType>(text.size()));
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
                      const http_request& req, int status, double latency_ms) {
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
    auto field = [](const std::string& s) {
      auto text = printable_utf8(s);
      for (auto& c : text)
        if (c == ' ' || c == '\n' || c == '\t')
          c = '_';
      return text.empty() ? std::string("-") : text;
    };
    line += utc_now() + " " + field(log.request_id) + " " + field(req.method) + " "
            + field(req.path) + " " + field(target) + " " + std::to_string(status) + " "
            + latency + "ms\n";
  }
  std::fwrite(line.data(), 1, line.size(), stderr); // one call: lines do not interleave
}

/// The server's own endpoints, not counted as HTTP requests in Ray Serve's metrics.
bool is_internal_route(const std::string& route) {
  return route == "/metrics" || route == "/-/routes" || route == "/-/healthz"
         || route == "/api/serve/applications/";
}

/// The method as a label: a known one, or "other" (a client must not mint label values).
std::string metric_method(const std::string& method) {
  for (const char* known : {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
    if (method == known)
      return method;
  return method.empty() ? "" : "other";
}

} // namespace

bool http_ingress::handle_observability(const exchange_ptr& ex) {
  if (ex->request.path != "/metrics" || !ex->request.is_get_or_head())
    return false;
  ex->log.route = "/metrics";
  http_response res;
  res.content_type = "text/plain; version=0.0.4";
  res.body = metrics::registry::global().render();
  ex->reply(std::move(res));
  return true;
}

void http_ingress::finished(const exchange& ex) {
  const auto& log = ex.log;
  const int64_t now = steady_now_ns();
  const double latency_ms = log.start_ns > 0 ? (now - log.start_ns) / 1e6 : 0.0;
  // Every response but the server's own endpoints: applications, v2, and requests refused
  // before routing (route "").
  if (!is_internal_route(log.route)) {
    auto& series = series_for(log, metric_method(ex.request.method), ex.status());
    series.requests.inc();
    series.errors.inc(); // a no-op handle below 400
    series.latency_ms.observe(latency_ms);
  }
  if (opts_.access_log != "off")
    write_access_log(opts_.access_log, log, ex.request, ex.status(), latency_ms);
}

} // namespace serve
