// Text, JSON and CSV reports of bench steps. See bench_report.hpp.
#include "apps/actorserve/bench_report.hpp"

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <utility>

#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

namespace serve::cli {

namespace {

std::string format_us(double us) {
  char buf[32];
  if (us < 1000)
    std::snprintf(buf, sizeof(buf), "%.0f us", us);
  else if (us < 1e6)
    std::snprintf(buf, sizeof(buf), "%.2f ms", us / 1e3);
  else
    std::snprintf(buf, sizeof(buf), "%.2f s", us / 1e6);
  return buf;
}

std::string format_bytes(uint64_t bytes) {
  char buf[32];
  if (bytes < 1024 * 1024)
    std::snprintf(buf, sizeof(buf), "%.1f KiB", bytes / 1024.0);
  else
    std::snprintf(buf, sizeof(buf), "%.1f MiB", bytes / (1024.0 * 1024.0));
  return buf;
}

double pct_us(const bench::load_result& r, double p) {
  return r.latency.percentile(p) / 1e3;
}

std::string step_title(const step_report& s) {
  char buf[200];
  if (s.open_loop)
    std::snprintf(buf, sizeof(buf), "open loop (%s), %.6g req/s offered, up to %zu connections",
                  s.poisson ? "Poisson" : "fixed rate", s.rate, s.max_connections);
  else
    std::snprintf(buf, sizeof(buf), "closed loop, %zu connection%s", s.connections,
                  s.connections == 1 ? "" : "s");
  return buf;
}

std::string errors_line(const bench::load_result& r) {
  std::string out;
  auto add = [&](const std::string& what, uint64_t n) {
    if (n)
      out += (out.empty() ? "" : ", ") + what + " " + std::to_string(n);
  };
  for (size_t code = 400; code < r.status_counts.size(); ++code)
    add("HTTP " + std::to_string(code), r.status_counts[code]);
  for (size_t k = 0; k < bench::error_kind_count; ++k)
    add(bench::to_string(static_cast<bench::error_kind>(k)), r.errors[k]);
  if (out.empty())
    return "none";
  return std::to_string(r.http_errors() + r.socket_errors()) + " (" + out + ")";
}

} // namespace

void print_step(const step_report& s, size_t index, size_t steps) {
  const auto& r = s.result;
  std::printf(
      "%s%s, %zu thread%s: %.1f s measured after %.1f s warm-up\n",
      steps > 1 ? ("step " + std::to_string(index + 1) + "/" + std::to_string(steps) + ": ").c_str()
                : "",
      step_title(s).c_str(), s.threads, s.threads == 1 ? "" : "s", r.measured_s, s.warmup_s);
  std::printf("  requests   %llu completed, %.1f req/s\n",
              static_cast<unsigned long long>(r.completed), r.completed_per_s());
  if (s.open_loop)
    std::printf("  offered    %.1f req/s, sent %.1f req/s; %llu connections at peak; %llu "
                "arrivals waited for a free connection; %llu unfinished at the end\n",
                s.rate, r.sent_per_s(), static_cast<unsigned long long>(r.peak_connections),
                static_cast<unsigned long long>(r.queued),
                static_cast<unsigned long long>(r.unfinished));
  std::printf("  latency    p50 %s  p90 %s  p99 %s  p99.9 %s  mean %s  max %s%s\n",
              format_us(pct_us(r, 50)).c_str(), format_us(pct_us(r, 90)).c_str(),
              format_us(pct_us(r, 99)).c_str(), format_us(pct_us(r, 99.9)).c_str(),
              format_us(r.latency.mean_ns() / 1e3).c_str(),
              format_us(r.latency.max_ns() / 1e3).c_str(),
              s.open_loop ? "  (from the scheduled send time)" : "");
  std::string statuses;
  for (size_t code = 0; code < r.status_counts.size(); ++code)
    if (r.status_counts[code])
      statuses += (statuses.empty() ? "" : ", ") + (code ? std::to_string(code) : "other") + " x " +
                  std::to_string(r.status_counts[code]);
  std::printf("  status     %s\n", statuses.empty() ? "no replies" : statuses.c_str());
  std::printf("  errors     %s\n", errors_line(r).c_str());
  std::printf("  transfer   read %s, written %s\n", format_bytes(r.bytes_read).c_str(),
              format_bytes(r.bytes_written).c_str());
  if (!s.kept_up()) {
    bool saturated = r.queued > 0;
    std::printf("  WARNING    the offered rate was not reached: sent %.1f of %.6g req/s. %s\n",
                r.sent_per_s(), s.rate,
                saturated ? "Arrivals waited because all connections were busy: the server is "
                            "saturated, or raise --max-connections."
                          : "The client fell behind (CPU-bound): try more -t/--threads.");
  }
}

void print_sweep_table(const std::vector<step_report>& steps) {
  std::printf("\n%-7s %11s %10s %12s %10s %10s %10s %10s %8s\n", "mode", "connections", "rate",
              "req/s", "p50", "p90", "p99", "p99.9", "errors");
  for (auto& s : steps) {
    const auto& r = s.result;
    std::printf(
        "%-7s %11zu %10s %12.1f %10s %10s %10s %10s %8llu%s\n", s.open_loop ? "open" : "closed",
        s.connections, s.open_loop ? std::to_string(static_cast<long long>(s.rate)).c_str() : "-",
        r.completed_per_s(), format_us(pct_us(r, 50)).c_str(), format_us(pct_us(r, 90)).c_str(),
        format_us(pct_us(r, 99)).c_str(), format_us(pct_us(r, 99.9)).c_str(),
        static_cast<unsigned long long>(r.http_errors() + r.socket_errors()),
        s.kept_up() ? "" : "  (rate not reached)");
  }
}

namespace {

using json_writer = rapidjson::PrettyWriter<rapidjson::StringBuffer>;

void write_latency_json(json_writer& w, const bench::load_result& r) {
  w.StartObject();
  const std::pair<const char*, double> pcts[] = {
      {"p50", 50}, {"p90", 90}, {"p99", 99}, {"p999", 99.9}};
  for (auto& [key, p] : pcts) {
    w.Key(key);
    w.Double(pct_us(r, p));
  }
  w.Key("mean");
  w.Double(r.latency.mean_ns() / 1e3);
  w.Key("min");
  w.Double(r.latency.min_ns() / 1e3);
  w.Key("max");
  w.Double(r.latency.max_ns() / 1e3);
  w.EndObject();
}

/// "status": {"200": n, ...}, "errors": {total, http, connect, ...}, "bytes": {read, written}
void write_outcomes_json(json_writer& w, const bench::load_result& r) {
  w.Key("status");
  w.StartObject();
  for (size_t code = 0; code < r.status_counts.size(); ++code) {
    if (r.status_counts[code]) {
      w.Key(code ? std::to_string(code).c_str() : "other");
      w.Uint64(r.status_counts[code]);
    }
  }
  w.EndObject();
  w.Key("errors");
  w.StartObject();
  w.Key("total");
  w.Uint64(r.http_errors() + r.socket_errors());
  w.Key("http");
  w.Uint64(r.http_errors());
  for (size_t k = 0; k < bench::error_kind_count; ++k) {
    w.Key(bench::to_string(static_cast<bench::error_kind>(k)));
    w.Uint64(r.errors[k]);
  }
  w.EndObject();
  w.Key("bytes");
  w.StartObject();
  w.Key("read");
  w.Uint64(r.bytes_read);
  w.Key("written");
  w.Uint64(r.bytes_written);
  w.EndObject();
}

void write_step_json(json_writer& w, const step_report& s) {
  const auto& r = s.result;
  w.StartObject();
  w.Key("mode");
  w.String(s.open_loop ? "open" : "closed");
  w.Key("connections");
  w.Uint64(s.connections);
  w.Key("max_connections");
  s.open_loop ? w.Uint64(s.max_connections) : w.Null();
  w.Key("threads");
  w.Uint64(s.threads);
  w.Key("target_rate");
  s.open_loop ? w.Double(s.rate) : w.Null();
  w.Key("poisson");
  w.Bool(s.poisson);
  w.Key("warmup_s");
  w.Double(s.warmup_s);
  w.Key("duration_s");
  w.Double(r.measured_s);
  const std::pair<const char*, uint64_t> counts[] = {{"requests", r.completed},
                                                     {"sent", r.sent},
                                                     {"queued", r.queued},
                                                     {"unfinished", r.unfinished},
                                                     {"peak_connections", r.peak_connections}};
  for (auto& [key, n] : counts) {
    w.Key(key);
    w.Uint64(n);
  }
  w.Key("rps");
  w.Double(r.completed_per_s());
  w.Key("sent_rps");
  w.Double(r.sent_per_s());
  w.Key("kept_up");
  w.Bool(s.kept_up());
  w.Key("latency_us");
  write_latency_json(w, r);
  write_outcomes_json(w, r);
  w.EndObject();
}

std::string csv_header() {
  return "mode,connections,threads,target_rate,poisson,duration_s,requests,rps,sent_rps,"
         "p50_us,p90_us,p99_us,p999_us,mean_us,max_us,errors,connect_errors,timeouts,"
         "read_errors,write_errors,status_2xx,status_3xx,status_4xx,status_5xx,statuses";
}

std::string csv_row(const step_report& s) {
  const auto& r = s.result;
  uint64_t classes[6] = {};
  std::string statuses;
  for (size_t code = 0; code < r.status_counts.size(); ++code) {
    if (!r.status_counts[code])
      continue;
    classes[code / 100] += r.status_counts[code];
    statuses += (statuses.empty() ? "" : " ") + (code ? std::to_string(code) : "other") + ":" +
                std::to_string(r.status_counts[code]);
  }
  char buf[512];
  std::snprintf(
      buf, sizeof(buf),
      "%s,%zu,%zu,%s,%d,%.3f,%llu,%.2f,%.2f,%.1f,%.1f,%.1f,%.1f,%.1f,%.1f,%llu,%llu,%llu,%llu,%llu,"
      "%llu,%llu,%llu,%llu,",
      s.open_loop ? "open" : "closed", s.connections, s.threads,
      s.open_loop ? std::to_string(s.rate).c_str() : "", s.poisson ? 1 : 0, r.measured_s,
      static_cast<unsigned long long>(r.completed), r.completed_per_s(), r.sent_per_s(),
      pct_us(r, 50), pct_us(r, 90), pct_us(r, 99), pct_us(r, 99.9), r.latency.mean_ns() / 1e3,
      r.latency.max_ns() / 1e3,
      static_cast<unsigned long long>(r.http_errors() + r.socket_errors()),
      static_cast<unsigned long long>(r.errors[0]), static_cast<unsigned long long>(r.errors[1]),
      static_cast<unsigned long long>(r.errors[2]), static_cast<unsigned long long>(r.errors[3]),
      static_cast<unsigned long long>(classes[2]), static_cast<unsigned long long>(classes[3]),
      static_cast<unsigned long long>(classes[4]), static_cast<unsigned long long>(classes[5]));
  return buf + statuses;
}

} // namespace

void print_json(const std::string& target, const std::vector<step_report>& steps) {
  rapidjson::StringBuffer buf;
  json_writer w(buf);
  w.StartObject();
  w.Key("target");
  w.String(target.c_str());
  w.Key("steps");
  w.StartArray();
  for (auto& s : steps)
    write_step_json(w, s);
  w.EndArray();
  w.EndObject();
  std::puts(buf.GetString());
}

bool write_csv(const std::string& path, const std::vector<step_report>& steps) {
  std::ofstream out(path);
  out << csv_header() << "\n";
  for (auto& s : steps)
    out << csv_row(s) << "\n";
  out.close();
  if (!out) {
    std::fprintf(stderr, "actorserve bench: cannot write --csv file %s\n", path.c_str());
    return false;
  }
  return true;
}

} // namespace serve::cli
