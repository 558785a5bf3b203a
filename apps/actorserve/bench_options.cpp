// Parsing `actorserve bench`'s flags and URL. See bench_options.hpp.
#include "apps/actorserve/bench_options.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "apps/actorserve/commands.hpp"

namespace serve::cli {

int usage_failure(const std::string& message) {
  std::fprintf(stderr, "actorserve bench: %s\n(see actorserve bench --help)\n", message.c_str());
  return bench_exit_usage;
}

namespace {

std::optional<double> parse_number(const std::string& text) {
  if (text.empty())
    return std::nullopt;
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(v))
    return std::nullopt;
  return v;
}

} // namespace

/// "2", "0.5", "500ms", "10s", "1m" -> seconds.
std::optional<double> parse_seconds(std::string text) {
  double scale = 1;
  auto ends_with = [&](const char* suffix) {
    size_t n = std::strlen(suffix);
    return text.size() > n && text.compare(text.size() - n, n, suffix) == 0;
  };
  if (ends_with("ms")) {
    scale = 1e-3;
    text.resize(text.size() - 2);
  } else if (ends_with("s")) {
    text.resize(text.size() - 1);
  } else if (ends_with("m")) {
    scale = 60;
    text.resize(text.size() - 1);
  }
  auto v = parse_number(text);
  if (!v)
    return std::nullopt;
  return *v * scale;
}

namespace {

size_t parse_count(const std::string& flag, const std::string& text, size_t min) {
  bool digits = !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
  if (digits && text.size() <= 9 && std::stoul(text) >= min)
    return std::stoul(text);
  throw usage_error{flag + " expects an integer >= " + std::to_string(min) + "; got '" + text +
                    "'"};
}

double parse_rate(const std::string& flag, const std::string& text) {
  auto v = parse_number(text);
  if (!v || *v <= 0)
    throw usage_error{flag + " expects a rate in requests/s > 0; got '" + text + "'"};
  return *v;
}

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> parts;
  std::stringstream ss(text);
  std::string part;
  while (std::getline(ss, part, sep))
    parts.push_back(part);
  if (!text.empty() && text.back() == sep)
    parts.emplace_back();
  return parts;
}

/// "input=1,4" -> shapes["input"] = {1, 4}.
void parse_shape(const std::string& text, bench_options& o) {
  auto eq = text.find('=');
  std::vector<int64_t> dims;
  bool ok = eq != std::string::npos && eq > 0 && eq + 1 < text.size();
  if (ok) {
    for (auto& d : split(text.substr(eq + 1), ',')) {
      bool digits = !d.empty() && d.size() <= 9 && d.find_first_not_of("0123456789") == d.npos;
      ok = ok && digits;
      if (digits)
        dims.push_back(std::stoll(d));
    }
  }
  if (!ok)
    throw usage_error{"--shape expects NAME=D1,D2,... with dimensions >= 0, e.g. input=1,4; got '" +
                      text + "'"};
  o.shapes[text.substr(0, eq)] = dims;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw usage_error{"--body cannot read file '" + path + "'"};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

} // namespace

parsed_url parse_url(const std::string& url) {
  const std::string scheme = "http://";
  if (url.compare(0, 8, "https://") == 0)
    throw usage_error{"URL: https is not supported; use http:// (got '" + url + "')"};
  if (url.compare(0, scheme.size(), scheme) != 0 || url.size() == scheme.size())
    throw usage_error{"URL expects http://HOST[:PORT]/PATH; got '" + url + "'"};
  parsed_url out;
  auto rest = url.substr(scheme.size());
  auto slash = rest.find('/');
  auto authority = rest.substr(0, slash);
  out.path = slash == std::string::npos ? "/" : rest.substr(slash);
  out.host_header = authority;
  std::string port_text;
  if (!authority.empty() && authority[0] == '[') { // [::1]:8000
    auto close = authority.find(']');
    if (close == std::string::npos)
      throw usage_error{"URL has an unclosed '[' in '" + url + "'"};
    out.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size() && authority[close + 1] == ':')
      port_text = authority.substr(close + 2);
  } else {
    auto colon = authority.find(':');
    out.host = authority.substr(0, colon);
    if (colon != std::string::npos)
      port_text = authority.substr(colon + 1);
  }
  if (out.host.empty())
    throw usage_error{"URL has no host: '" + url + "'"};
  if (!port_text.empty()) {
    bool digits = port_text.find_first_not_of("0123456789") == std::string::npos;
    if (!digits || port_text.size() > 5 || std::stoul(port_text) == 0 ||
        std::stoul(port_text) > 65535)
      throw usage_error{"URL port must be 1-65535; got '" + port_text + "'"};
    out.port = static_cast<uint16_t>(std::stoul(port_text));
  }
  return out;
}

namespace {

/// "-d" and "--duration" both read "-d/--duration" in messages.
std::string display_flag(const std::string& flag) {
  static const std::pair<const char*, const char*> pairs[] = {
      {"-m", "--method"},  {"-H", "--header"},   {"-c", "--connections"},
      {"-t", "--threads"}, {"-d", "--duration"}, {"-q", "--quiet"}};
  for (auto& [short_name, long_name] : pairs)
    if (flag == short_name || flag == long_name)
      return std::string(short_name) + "/" + long_name;
  return flag;
}

/// Reads one flag's value from the argument list; messages name the flag as the user wrote it.
class flag_reader {
public:
  flag_reader(arg_reader& args, const std::string& flag) : args_(args), flag_(display_flag(flag)) {}

  const std::string& name() const { return flag_; }

  std::string value(const char* expects) {
    if (args_.done())
      throw usage_error{flag_ + " needs a value: " + expects};
    return args_.next();
  }

  double seconds(bool zero_ok) {
    auto text = value("SECONDS");
    auto v = parse_seconds(text);
    if (!v || *v < 0 || (!zero_ok && *v == 0))
      throw usage_error{flag_ + " expects seconds " + (zero_ok ? ">= 0" : "> 0") +
                        " (e.g. 10, 0.5, 500ms); got '" + text + "'"};
    return *v;
  }

  size_t count(const char* expects, size_t min) { return parse_count(flag_, value(expects), min); }

private:
  arg_reader& args_;
  std::string flag_;
};

/// -m, --body, --body-text, --content-type, -H and the --v2-* flags. False: not one of them.
bool parse_target_flag(const std::string& a, flag_reader& f, bench_options& o) {
  if (a == "-m" || a == "--method") {
    o.method = f.value("an HTTP method such as GET or POST");
    if (o.method.empty() || o.method.find_first_of(" \r\n") != std::string::npos)
      throw usage_error{f.name() + " expects a method name such as GET or POST"};
  } else if (a == "--body") {
    o.body = read_file(f.value("a FILE"));
  } else if (a == "--body-text") {
    o.body = f.value("the body TEXT");
  } else if (a == "--content-type") {
    o.content_type = f.value("a media type such as application/json");
  } else if (a == "-H" || a == "--header") {
    auto h = f.value("'Name: value'");
    auto colon = h.find(':');
    if (colon == std::string::npos || colon == 0 || h.find_first_of("\r\n") != h.npos)
      throw usage_error{f.name() + " expects 'Name: value'; got '" + h + "'"};
    o.headers.push_back(h);
  } else if (a == "--v2-model") {
    o.v2_model = f.value("a model NAME");
  } else if (a == "--v2-version") {
    o.v2_version = f.value("a model version");
  } else if (a == "--shape") {
    parse_shape(f.value("NAME=D1,D2,..."), o);
  } else if (a == "--binary") {
    o.binary = true;
  } else {
    return false;
  }
  return true;
}

/// The load and output flags. False: not one of them.
bool parse_load_flag(const std::string& a, flag_reader& f, bench_options& o) {
  if (a == "-c" || a == "--connections") {
    o.connections = f.count("a count N", 1);
  } else if (a == "--connections-list") {
    for (auto& part : split(f.value("a list like 1,8,32"), ','))
      o.connection_steps.push_back(parse_count(f.name(), part, 1));
  } else if (a == "--rate") {
    o.rate = parse_rate(f.name(), f.value("requests per second"));
  } else if (a == "--rates") {
    for (auto& part : split(f.value("a list like 100,200,400"), ','))
      o.rate_steps.push_back(parse_rate(f.name(), part));
  } else if (a == "--poisson") {
    o.poisson = true;
  } else if (a == "--max-connections") {
    o.max_connections = f.count("a count N", 1);
  } else if (a == "-t" || a == "--threads") {
    o.threads = f.count("a count N", 1);
  } else if (a == "--warmup") {
    o.warmup_s = f.seconds(true);
  } else if (a == "-d" || a == "--duration") {
    o.duration_s = f.seconds(false);
  } else if (a == "--timeout") {
    o.timeout_s = f.seconds(false);
  } else if (a == "--seed") {
    o.seed = f.count("an integer", 0);
  } else if (a == "--json") {
    o.json = true;
  } else if (a == "--csv") {
    o.csv_path = f.value("a FILE");
  } else if (a == "--plot") {
    o.plot_path = f.value("a FILE.png");
  } else if (a == "-q" || a == "--quiet") {
    o.quiet = true;
  } else {
    return false;
  }
  return true;
}

/// Rejects flags that exclude each other and turns -c / --rate into one-step sweeps.
void check_flag_combinations(bench_options& o) {
  if (o.url.empty())
    throw usage_error{"missing URL, e.g. actorserve bench http://127.0.0.1:8000/noop"};
  if (o.rate && !o.rate_steps.empty())
    throw usage_error{"--rate and --rates exclude each other"};
  if (o.connections && !o.connection_steps.empty())
    throw usage_error{"-c/--connections and --connections-list exclude each other"};
  bool open_loop = o.rate || !o.rate_steps.empty();
  if (open_loop && (o.connections || !o.connection_steps.empty()))
    throw usage_error{"-c/--connections and --connections-list are for the closed loop; with "
                      "--rate/--rates the connections follow the load (cap: --max-connections)"};
  if (o.poisson && !open_loop)
    throw usage_error{"--poisson needs --rate or --rates"};
  if (o.rate)
    o.rate_steps = {*o.rate};
  if (!open_loop && o.connection_steps.empty())
    o.connection_steps = {o.connections.value_or(1)};
  if (open_loop && o.max_connections < o.threads)
    throw usage_error{"--max-connections must be >= -t/--threads (" + std::to_string(o.threads) +
                      "); got " + std::to_string(o.max_connections)};
  if (o.v2_model.empty() && (o.binary || !o.shapes.empty() || !o.v2_version.empty()))
    throw usage_error{"--binary, --shape and --v2-version need --v2-model"};
  if (o.binary && o.body)
    throw usage_error{"--binary generates the payload; with --body FILE give the headers "
                      "yourself (-H 'Inference-Header-Content-Length: N', --content-type)"};
}

} // namespace

bool parse_bench_args(const std::vector<std::string>& args, bench_options& o) {
  arg_reader r{args};
  while (!r.done()) {
    auto a = r.next();
    flag_reader f(r, a);
    if (a == "-h" || a == "--help")
      return true;
    if (parse_target_flag(a, f, o) || parse_load_flag(a, f, o))
      continue;
    if (a.size() > 1 && a[0] == '-')
      throw usage_error{"unknown option " + a};
    if (!o.url.empty())
      throw usage_error{"unexpected argument '" + a + "' (the URL is '" + o.url + "')"};
    o.url = a;
  }
  check_flag_combinations(o);
  return false;
}

} // namespace serve::cli
