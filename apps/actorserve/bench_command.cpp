// `actorserve bench URL`: a load generator for any HTTP/1.1 server (ActorServe, Triton,
// KServe, ...). Parses the flags, builds the requests (a plain route, or random tensors for an
// Open Inference Protocol v2 model), runs each step through serve::bench::run_load and reports
// text, JSON, CSV and a plot.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <sstream>

#include <httplib.h>
#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "apps/actorserve/commands.hpp"
#include "apps/actorserve/load_generator.hpp"

namespace serve::cli {

namespace {

const char* bench_usage = R"(Usage: actorserve bench URL [options]

Load generator for any HTTP/1.1 server (ActorServe, Triton, KServe, ...). Keep-alive
connections on non-blocking sockets, one epoll event loop per thread.

  closed loop (default)  -c N connections, each sends its next request when the previous
                         reply arrives; latency runs from the send.
  open loop (--rate R)   R requests/s (evenly spaced, or --poisson), whatever the replies do,
                         on as many connections as needed up to --max-connections; an arrival
                         with no free connection waits. Latency runs from the SCHEDULED send
                         time, so a server that falls behind shows as latency (no coordinated
                         omission). A client that could not send the offered rate says so.

Target:
  URL                      http://HOST[:PORT]/PATH (no https). With --v2-model: the server's
                           base URL, e.g. http://127.0.0.1:8000
  -m, --method METHOD      HTTP method (default GET, or POST when there is a body)
  --body FILE              request body read from FILE
  --body-text TEXT         request body TEXT
  --content-type TYPE      Content-Type of the body (default application/json)
  -H, --header 'K: V'      extra request header (repeatable)

Open Inference Protocol (v2) models:
  --v2-model NAME          read GET URL/v2/models/NAME (inputs: name, datatype, shape) and POST
                           random inputs of those shapes and datatypes (FP16/32/64, BF16,
                           INT8-64, UINT8-64, BOOL, BYTES) to URL/v2/models/NAME/infer as JSON
                           tensors; 16 different payloads are sent in turn. With --body FILE,
                           FILE is posted as it is instead.
  --v2-version V           address version V (URL/v2/models/NAME/versions/V/...)
  --shape NAME=D1,D2,..    the shape of input NAME (default: the metadata's, -1 read as 1)
  --binary                 Triton's binary tensor extension: a JSON header with
                           binary_data_size per input, raw little-endian tensors after it
                           (BYTES: 4-byte length + bytes per element), outputs asked for in
                           binary; Inference-Header-Content-Length, application/octet-stream

Load:
  -c, --connections N      closed loop: N connections (default 1)
  --connections-list LIST  closed-loop sweep, one step per count, e.g. 1,8,32
  --rate R                 open loop: R requests/s
  --rates LIST             open-loop sweep, one step per rate, e.g. 100,200,400
  --poisson                open loop: Poisson arrivals (exponential gaps) instead of even ones
  --max-connections N      open loop: most connections open at once (default 256). A server
                           that serves each keep-alive connection on its own thread (ActorServe:
                           http_options.num_threads, 64 by default) leaves the connections beyond
                           its thread count unanswered while the others stay open: stay below it
  -t, --threads N          event-loop threads (default 1); one handles tens of thousands of
                           requests/s, give it more only when the client is the bottleneck
  --warmup SECONDS         load before each step's measurement, not counted (default 2)
  -d, --duration SECONDS   measured time per step (default 10)
  --timeout SECONDS        a request without a full reply after this fails (default 10)
  --seed N                 seed for Poisson gaps and v2 input data (default 1)
  SECONDS accept a number (2, 0.5) or a suffix: 500ms, 10s, 1m.

Output (text on stdout; a progress line on stderr once a second):
  --json                   print the summary as JSON instead of text
  --csv FILE               one row per step: mode, connections, rate, requests, req/s,
                           p50/p90/p99/p99.9/mean/max in us, errors by kind, status classes
  --plot FILE.png          after the run, draw p50 and p99 latency against achieved req/s per
                           step with scripts/plot_bench.py (matplotlib; the project venv from
                           scripts/venv.sh has it; the script is found through ACTORSERVE_ROOT
                           or next to the binary's source tree)
  -q, --quiet              no progress line
  -h, --help               this help

Counted per step: replies completed in the measured window (any status), requests/s, offered
and sent rate (open loop), latency percentiles, replies per HTTP status, errors by kind
(HTTP >= 400; connect, timeout, read, write), bytes read and written.

Exit status: 0 when the run completed (HTTP errors are reported, not fatal), 1 when the target
cannot be reached at start (or its v2 metadata cannot be read), 2 on bad arguments.

Examples:
  actorserve bench http://127.0.0.1:8000/noop -c 32 -d 10
  actorserve bench http://127.0.0.1:8000/greet --body-text '{"name": "Ada"}' --rate 500 --poisson
  actorserve bench http://127.0.0.1:8000/noop --connections-list 1,8,32 --csv noop.csv \
      --plot noop.png
  # v2 (the iris example, apps/examples/configs/iris.json: model BoostingModel)
  actorserve bench http://127.0.0.1:8000 --v2-model BoostingModel --rates 500,1000,2000 --json
  actorserve bench http://127.0.0.1:8000 --v2-model BoostingModel --binary \
      --shape float_input=8,4 -c 8
  actorserve bench http://127.0.0.1:8000 --v2-model BoostingModel --body request.json --rate 200
)";

constexpr int exit_ok = 0;
constexpr int exit_unreachable = 1;
constexpr int exit_usage = 2;

/// Everything the flags say. Sweeps hold one entry per step.
struct bench_options {
  std::string url;
  std::string method; // empty: GET, or POST with a body
  std::optional<std::string> body;
  std::string content_type = "application/json";
  std::vector<std::string> headers;
  std::string v2_model;
  std::string v2_version;
  std::map<std::string, std::vector<int64_t>> shapes;
  bool binary = false;
  std::optional<size_t> connections; // -c; becomes the one step of connection_steps
  std::optional<double> rate;        // --rate; becomes the one step of rate_steps
  std::vector<size_t> connection_steps;
  std::vector<double> rate_steps;
  bool poisson = false;
  size_t max_connections = 256;
  size_t threads = 1;
  double warmup_s = 2;
  double duration_s = 10;
  double timeout_s = 10;
  uint64_t seed = 1;
  bool json = false;
  bool quiet = false;
  std::string csv_path;
  std::string plot_path;
};

struct parsed_url {
  std::string host; // without brackets
  uint16_t port = 80;
  std::string path; // starts with '/'
  std::string host_header;
};

/// A flag's value could not be used: the message names the flag and what it expects.
struct usage_error {
  std::string message;
};

int usage_failure(const std::string& message) {
  std::fprintf(stderr, "actorserve bench: %s\n(see actorserve bench --help)\n", message.c_str());
  return exit_usage;
}

// ---- parsing flags -------------------------------------------------------------------------

std::optional<double> parse_number(const std::string& text) {
  if (text.empty())
    return std::nullopt;
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(v))
    return std::nullopt;
  return v;
}

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

/// Returns an exit code for --help; throws usage_error on a bad flag.
std::optional<int> parse_bench_args(const std::vector<std::string>& args, bench_options& o) {
  arg_reader r{args};
  while (!r.done()) {
    auto a = r.next();
    flag_reader f(r, a);
    if (a == "-h" || a == "--help") {
      std::fputs(bench_usage, stdout);
      return exit_ok;
    }
    if (parse_target_flag(a, f, o) || parse_load_flag(a, f, o))
      continue;
    if (a.size() > 1 && a[0] == '-')
      throw usage_error{"unknown option " + a};
    if (!o.url.empty())
      throw usage_error{"unexpected argument '" + a + "' (the URL is '" + o.url + "')"};
    o.url = a;
  }
  check_flag_combinations(o);
  return std::nullopt;
}

// ---- requests ------------------------------------------------------------------------------

bool has_header(const std::vector<std::string>& headers, const std::string& name) {
  for (auto& h : headers) {
    auto given = h.substr(0, h.find(':'));
    if (given.size() == name.size() &&
        std::equal(given.begin(), given.end(), name.begin(),
                   [](char a, char b) { return std::tolower(a) == std::tolower(b); }))
      return true;
  }
  return false;
}

/// One complete HTTP/1.1 request; a Content-Length header whenever there is a body.
std::string http_request(const std::string& method, const parsed_url& url, const std::string& path,
                         const std::vector<std::string>& headers, const std::string& content_type,
                         const std::optional<std::string>& body) {
  std::string out = method + " " + path + " HTTP/1.1\r\n";
  if (!has_header(headers, "Host"))
    out += "Host: " + url.host_header + "\r\n";
  if (!has_header(headers, "User-Agent"))
    out += "User-Agent: actorserve-bench\r\n";
  for (auto& h : headers)
    out += h + "\r\n";
  if (body) {
    if (!has_header(headers, "Content-Type"))
      out += "Content-Type: " + content_type + "\r\n";
    out += "Content-Length: " + std::to_string(body->size()) + "\r\n";
  }
  out += "\r\n";
  if (body)
    out += *body;
  return out;
}

// ---- Open Inference Protocol (v2) payloads -------------------------------------------------

struct v2_input {
  std::string name;
  std::string datatype;
  std::vector<int64_t> shape;
};

struct v2_model {
  std::vector<v2_input> inputs;
  std::vector<std::string> outputs;
};

/// Bytes per element; 0 for BYTES (variable), -1 for a datatype we do not know.
int element_size(const std::string& datatype) {
  static const std::map<std::string, int> sizes = {
      {"BOOL", 1}, {"UINT8", 1}, {"UINT16", 2}, {"UINT32", 4}, {"UINT64", 8},
      {"INT8", 1}, {"INT16", 2}, {"INT32", 4},  {"INT64", 8},  {"FP16", 2},
      {"BF16", 2}, {"FP32", 4},  {"FP64", 8},   {"BYTES", 0}};
  auto it = sizes.find(datatype);
  return it == sizes.end() ? -1 : it->second;
}

/// Parses GET /v2/models/NAME; fills `model` or returns what is wrong.
std::string parse_v2_metadata(const std::string& body, v2_model& model) {
  rapidjson::Document doc;
  if (doc.Parse(body.c_str()).HasParseError() || !doc.IsObject())
    return "the metadata is not a JSON object: " + body.substr(0, 200);
  if (!doc.HasMember("inputs") || !doc["inputs"].IsArray() || doc["inputs"].Empty())
    return "the metadata has no \"inputs\" array: " + body.substr(0, 200);
  for (auto& in : doc["inputs"].GetArray()) {
    if (!in.IsObject() || !in.HasMember("name") || !in["name"].IsString() ||
        !in.HasMember("datatype") || !in["datatype"].IsString() || !in.HasMember("shape") ||
        !in["shape"].IsArray())
      return "an input lacks name, datatype or shape: " + body.substr(0, 200);
    v2_input input{in["name"].GetString(), in["datatype"].GetString(), {}};
    if (element_size(input.datatype) < 0)
      return "input '" + input.name + "' has datatype " + input.datatype + ", which is not a v2 " +
             "datatype";
    for (auto& d : in["shape"].GetArray()) {
      if (!d.IsInt64())
        return "input '" + input.name + "' has a shape that is not a list of integers";
      input.shape.push_back(d.GetInt64() < 0 ? 1 : d.GetInt64()); // variable dims: 1
    }
    model.inputs.push_back(std::move(input));
  }
  if (doc.HasMember("outputs") && doc["outputs"].IsArray())
    for (auto& out : doc["outputs"].GetArray())
      if (out.IsObject() && out.HasMember("name") && out["name"].IsString())
        model.outputs.emplace_back(out["name"].GetString());
  return {};
}

int64_t element_count(const v2_input& in) {
  int64_t n = 1;
  for (auto d : in.shape)
    n *= d;
  return n;
}

uint16_t fp32_to_fp16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000;
  int32_t exponent = static_cast<int32_t>((x >> 23) & 0xff) - 127 + 15;
  uint32_t mantissa = x & 0x7fffff;
  if (exponent <= 0) {
    if (exponent < -10)
      return static_cast<uint16_t>(sign);
    mantissa |= 0x800000;
    return static_cast<uint16_t>(sign | (mantissa >> (14 - exponent)));
  }
  if (exponent >= 31)
    return static_cast<uint16_t>(sign | 0x7c00);
  return static_cast<uint16_t>(sign | (static_cast<uint32_t>(exponent) << 10) | (mantissa >> 13));
}

/// Random tensor data, written both as JSON values and as little-endian bytes.
class tensor_filler {
public:
  explicit tensor_filler(uint64_t seed) : rng_(seed) {}

  template <class Writer> void fill(const v2_input& in, Writer* json, std::string* raw) {
    static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "raw tensors are little-endian");
    int64_t n = element_count(in);
    const auto& t = in.datatype;
    for (int64_t i = 0; i < n; ++i) {
      if (t == "FP32" || t == "FP64" || t == "FP16" || t == "BF16") {
        float v = std::uniform_real_distribution<float>(0.0f, 1.0f)(rng_);
        if (json)
          json->Double(static_cast<double>(v));
        if (raw && t == "FP32")
          append(*raw, v);
        else if (raw && t == "FP64")
          append(*raw, static_cast<double>(v));
        else if (raw && t == "FP16")
          append(*raw, fp32_to_fp16(v));
        else if (raw) {
          uint32_t bits;
          std::memcpy(&bits, &v, 4);
          append(*raw, static_cast<uint16_t>(bits >> 16));
        }
      } else if (t == "BOOL") {
        bool v = rng_() & 1;
        if (json)
          json->Bool(v);
        if (raw)
          raw->push_back(v ? 1 : 0);
      } else if (t == "BYTES") {
        std::string s(8, 'a');
        for (auto& c : s)
          c = static_cast<char>('a' + rng_() % 26);
        if (json)
          json->String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
        if (raw) {
          append(*raw, static_cast<uint32_t>(s.size()));
          *raw += s;
        }
      } else { // integers: small non-negative values fit every width
        auto v = static_cast<int64_t>(rng_() % 100);
        if (json)
          json->Int64(v);
        if (raw)
          append_int(*raw, v, static_cast<size_t>(element_size(t)));
      }
    }
  }

private:
  template <class T> static void append(std::string& out, T v) {
    char bytes[sizeof(T)];
    std::memcpy(bytes, &v, sizeof(T));
    out.append(bytes, sizeof(T));
  }
  static void append_int(std::string& out, int64_t v, size_t width) {
    char bytes[8];
    std::memcpy(bytes, &v, 8);
    out.append(bytes, width); // little-endian: the low bytes come first
  }

  std::mt19937_64 rng_;
};

void write_input_header(rapidjson::Writer<rapidjson::StringBuffer>& w, const v2_input& in) {
  w.Key("name");
  w.String(in.name.c_str());
  w.Key("shape");
  w.StartArray();
  for (auto d : in.shape)
    w.Int64(d);
  w.EndArray();
  w.Key("datatype");
  w.String(in.datatype.c_str());
}

/// {"inputs":[{"name","shape","datatype","data":[...]}]}
std::string v2_json_body(const v2_model& model, tensor_filler& filler) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("inputs");
  w.StartArray();
  for (auto& in : model.inputs) {
    w.StartObject();
    write_input_header(w, in);
    w.Key("data");
    w.StartArray();
    filler.fill(in, &w, nullptr);
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

/// Triton's binary tensor extension: the JSON header, then each input's raw bytes.
/// `header_length` receives the JSON header's size (Inference-Header-Content-Length).
std::string v2_binary_body(const v2_model& model, tensor_filler& filler, size_t& header_length) {
  std::vector<std::string> raws;
  for (auto& in : model.inputs) {
    raws.emplace_back();
    filler.fill<rapidjson::Writer<rapidjson::StringBuffer>>(in, nullptr, &raws.back());
  }
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("inputs");
  w.StartArray();
  for (size_t i = 0; i < model.inputs.size(); ++i) {
    w.StartObject();
    write_input_header(w, model.inputs[i]);
    w.Key("parameters");
    w.StartObject();
    w.Key("binary_data_size");
    w.Uint64(raws[i].size());
    w.EndObject();
    w.EndObject();
  }
  w.EndArray();
  if (!model.outputs.empty()) {
    w.Key("outputs");
    w.StartArray();
    for (auto& name : model.outputs) {
      w.StartObject();
      w.Key("name");
      w.String(name.c_str());
      w.Key("parameters");
      w.StartObject();
      w.Key("binary_data");
      w.Bool(true);
      w.EndObject();
      w.EndObject();
    }
    w.EndArray();
  }
  w.Key("parameters");
  w.StartObject();
  w.Key("binary_data_output");
  w.Bool(true);
  w.EndObject();
  w.EndObject();
  std::string body(buf.GetString(), buf.GetSize());
  header_length = body.size();
  for (auto& raw : raws)
    body += raw;
  return body;
}

std::string v2_model_path(const parsed_url& url, const bench_options& o) {
  std::string base = url.path;
  while (!base.empty() && base.back() == '/')
    base.pop_back();
  std::string path = base + "/v2/models/" + o.v2_model;
  if (!o.v2_version.empty())
    path += "/versions/" + o.v2_version;
  return path;
}

/// Reads the model's metadata and applies --shape. Returns an exit code on failure.
std::optional<int> load_v2_model(const parsed_url& url, const bench_options& o, v2_model& model) {
  httplib::Client client(url.host, url.port);
  client.set_connection_timeout(5);
  client.set_read_timeout(30);
  auto path = v2_model_path(url, o);
  auto res = client.Get(path.c_str());
  if (!res) {
    std::fprintf(stderr, "actorserve bench: cannot reach %s:%u for GET %s (%s)\n", url.host.c_str(),
                 url.port, path.c_str(), httplib::to_string(res.error()).c_str());
    return exit_unreachable;
  }
  if (res->status != 200) {
    std::fprintf(stderr, "actorserve bench: GET %s answered HTTP %d: %s\n", path.c_str(),
                 res->status, res->body.substr(0, 300).c_str());
    return exit_unreachable;
  }
  auto error = parse_v2_metadata(res->body, model);
  if (!error.empty()) {
    std::fprintf(stderr, "actorserve bench: GET %s: %s\n", path.c_str(), error.c_str());
    return exit_unreachable;
  }
  for (auto& [name, dims] : o.shapes) {
    auto it = std::find_if(model.inputs.begin(), model.inputs.end(),
                           [&](const v2_input& in) { return in.name == name; });
    if (it == model.inputs.end()) {
      std::string names;
      for (auto& in : model.inputs)
        names += (names.empty() ? "" : ", ") + in.name;
      return usage_failure("--shape names input '" + name + "', which model '" + o.v2_model +
                           "' does not have (inputs: " + names + ")");
    }
    it->shape = dims;
  }
  for (auto& in : model.inputs)
    if (element_count(in) > (int64_t{1} << 26))
      return usage_failure("input '" + in.name +
                           "' would have more than 2^26 elements; "
                           "give a smaller --shape");
  return std::nullopt;
}

/// The requests one run sends in turn. Returns an exit code on failure.
std::optional<int> build_requests(const parsed_url& url, const bench_options& o,
                                  std::vector<std::string>& requests, std::string& described) {
  std::string method =
      o.method.empty() ? (o.body || !o.v2_model.empty() ? "POST" : "GET") : o.method;
  if (o.v2_model.empty()) {
    requests.push_back(http_request(method, url, url.path, o.headers, o.content_type, o.body));
    described = method + " " + o.url;
    return std::nullopt;
  }
  auto infer_path = v2_model_path(url, o) + "/infer";
  described = method + " http://" + url.host_header + infer_path;
  if (o.body) { // a payload file, posted as it is
    requests.push_back(http_request(method, url, infer_path, o.headers, o.content_type, o.body));
    return std::nullopt;
  }
  v2_model model;
  if (auto code = load_v2_model(url, o, model))
    return code;
  tensor_filler filler(o.seed);
  constexpr int payloads = 16;
  for (int i = 0; i < payloads; ++i) {
    if (!o.binary) {
      requests.push_back(http_request(method, url, infer_path, o.headers, "application/json",
                                      v2_json_body(model, filler)));
      continue;
    }
    size_t header_length = 0;
    auto body = v2_binary_body(model, filler, header_length);
    auto headers = o.headers;
    headers.push_back("Inference-Header-Content-Length: " + std::to_string(header_length));
    requests.push_back(
        http_request(method, url, infer_path, headers, "application/octet-stream", body));
  }
  described += std::string(o.binary ? " (binary tensors" : " (JSON tensors") + ", " +
               std::to_string(model.inputs.size()) + " input(s), " +
               std::to_string(requests.front().size()) + " bytes per request)";
  return std::nullopt;
}

// ---- one step and its report ---------------------------------------------------------------

struct step_report {
  bool open_loop = false;
  size_t connections = 0; // closed loop: the count; open loop: the peak
  size_t max_connections = 0;
  size_t threads = 0;
  double rate = 0;
  bool poisson = false;
  double warmup_s = 0;
  bench::load_result result;

  bool kept_up() const { return !open_loop || result.sent_per_s() >= 0.9 * rate; }
};

std::chrono::nanoseconds to_ns(double seconds) {
  return std::chrono::nanoseconds(static_cast<int64_t>(std::llround(seconds * 1e9)));
}

/// Writes the progress line: in place on a terminal, one line per second otherwise.
class progress_printer {
public:
  explicit progress_printer(bool enabled) : enabled_(enabled), tty_(isatty(STDERR_FILENO)) {}

  void update(const bench::load_progress& p) {
    if (!enabled_)
      return;
    double rps = (p.completed - last_completed_) / std::max(1e-9, p.elapsed_s - last_elapsed_);
    last_completed_ = p.completed;
    last_elapsed_ = p.elapsed_s;
    std::fprintf(stderr, "%s[bench] %4.0f s %-9s completed %-10llu %9.0f req/s  errors %llu%s",
                 tty_ ? "\r" : "", p.elapsed_s, p.warming_up ? "warm-up" : "measuring",
                 static_cast<unsigned long long>(p.completed), rps,
                 static_cast<unsigned long long>(p.errors), tty_ ? "   " : "\n");
    std::fflush(stderr);
    printed_ = true;
  }

  void done() {
    if (enabled_ && tty_ && printed_)
      std::fprintf(stderr, "\r%78s\r", "");
    last_completed_ = 0;
    last_elapsed_ = 0;
    printed_ = false;
  }

private:
  bool enabled_;
  bool tty_;
  bool printed_ = false;
  uint64_t last_completed_ = 0;
  double last_elapsed_ = 0;
};

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

// ---- JSON and CSV --------------------------------------------------------------------------

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

// ---- --plot --------------------------------------------------------------------------------

bool is_file(const std::string& path) {
  return access(path.c_str(), R_OK) == 0;
}

std::string parent_dir(const std::string& path) {
  auto slash = path.find_last_of('/');
  return slash == std::string::npos || slash == 0 ? "/" : path.substr(0, slash);
}

/// scripts/plot_bench.py from ACTORSERVE_ROOT, else above the binary, else above this source.
std::string find_plot_script() {
  const std::string rel = "/scripts/plot_bench.py";
  if (const char* root = std::getenv("ACTORSERVE_ROOT"); root && is_file(root + rel))
    return root + rel;
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n > 0) {
    std::string dir = parent_dir(std::string(exe, static_cast<size_t>(n)));
    for (int up = 0; up < 5 && dir != "/"; ++up, dir = parent_dir(dir))
      if (is_file(dir + rel))
        return dir + rel;
  }
  std::string source_root = parent_dir(parent_dir(parent_dir(__FILE__)));
  return is_file(source_root + rel) ? source_root + rel : "";
}

/// Runs argv (no shell); the exit status, or -1 when it could not start.
int run_process(const std::vector<std::string>& argv, bool silent) {
  std::fflush(stdout); // the child writes to the same stdout after us
  std::fflush(stderr);
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    if (silent) {
      int null = open("/dev/null", O_WRONLY);
      dup2(null, STDOUT_FILENO);
      dup2(null, STDERR_FILENO);
    }
    std::vector<char*> args;
    for (auto& a : argv)
      args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
    return -1;
  return WEXITSTATUS(status);
}

/// The first Python that imports matplotlib: the project venv's, then python3 on PATH.
std::string find_matplotlib_python() {
  std::vector<std::string> candidates;
  if (const char* py = std::getenv("ACTORSERVE_PYTHON"))
    candidates.emplace_back(py);
  if (const char* venv = std::getenv("ACTORSERVE_VENV"))
    candidates.push_back(std::string(venv) + "/bin/python");
  if (const char* home = std::getenv("HOME"))
    candidates.push_back(std::string(home) + "/.cache/actorserve/venv/bin/python");
  candidates.emplace_back("python3");
  for (auto& py : candidates)
    if (run_process({py, "-c", "import matplotlib"}, true) == 0)
      return py;
  return "";
}

/// Draws the plot; false (with a message saying what to do) when it could not.
bool plot(const std::string& csv_path, const std::string& png_path) {
  auto script = find_plot_script();
  if (script.empty()) {
    std::fprintf(stderr,
                 "actorserve bench: --plot: cannot find scripts/plot_bench.py; set "
                 "ACTORSERVE_ROOT to the ActorServe source tree. The CSV is %s\n",
                 csv_path.c_str());
    return false;
  }
  auto python = find_matplotlib_python();
  if (python.empty()) {
    std::fprintf(stderr,
                 "actorserve bench: --plot: no Python with matplotlib. Make the project venv "
                 "(it installs scripts/python-requirements.txt, matplotlib included):\n"
                 "  bash %s/venv.sh\nthen plot with:\n"
                 "  ~/.cache/actorserve/venv/bin/python %s %s %s\n",
                 parent_dir(script).c_str(), script.c_str(), csv_path.c_str(), png_path.c_str());
    return false;
  }
  if (run_process({python, script, csv_path, png_path}, false) != 0) {
    std::fprintf(stderr, "actorserve bench: --plot: %s %s failed; the CSV is %s\n", python.c_str(),
                 script.c_str(), csv_path.c_str());
    return false;
  }
  return true;
}

// ---- the command ---------------------------------------------------------------------------

int run_steps(const bench_options& o, const parsed_url& url,
              const std::vector<std::string>& requests, const std::string& described) {
  bool open_loop = !o.rate_steps.empty();
  size_t count = open_loop ? o.rate_steps.size() : o.connection_steps.size();
  if (!o.json)
    std::printf("actorserve bench: %s\n\n", described.c_str());
  std::fflush(stdout);
  progress_printer progress(!o.quiet);
  std::vector<step_report> steps;
  for (size_t i = 0; i < count; ++i) {
    bench::load_options lo;
    lo.host = url.host;
    lo.port = url.port;
    lo.requests = requests;
    lo.connections = open_loop ? 1 : o.connection_steps[i];
    lo.rate_per_s = open_loop ? o.rate_steps[i] : 0;
    lo.poisson = o.poisson;
    lo.max_connections = o.max_connections;
    lo.threads = o.threads;
    lo.warmup = to_ns(o.warmup_s);
    lo.duration = to_ns(o.duration_s);
    lo.timeout = to_ns(o.timeout_s);
    lo.seed = o.seed + i;
    step_report s;
    std::string error;
    if (!bench::run_load(
            lo, [&](const bench::load_progress& p) { progress.update(p); }, s.result, error)) {
      progress.done();
      std::fprintf(stderr, "actorserve bench: %s\n", error.c_str());
      return exit_unreachable;
    }
    progress.done();
    s.open_loop = open_loop;
    s.rate = lo.rate_per_s;
    s.poisson = o.poisson;
    s.max_connections = o.max_connections;
    s.threads = std::min(o.threads, open_loop ? o.max_connections : lo.connections);
    s.connections = open_loop ? s.result.peak_connections : lo.connections;
    s.warmup_s = o.warmup_s;
    if (!o.json) {
      print_step(s, i, count);
      std::printf("\n");
      std::fflush(stdout);
    }
    steps.push_back(std::move(s));
  }
  if (!o.json && count > 1)
    print_sweep_table(steps);
  if (o.json)
    print_json(o.url, steps);
  std::string csv = o.csv_path;
  bool temporary_csv = csv.empty() && !o.plot_path.empty();
  if (temporary_csv) {
    char name[] = "/tmp/actorserve-bench-XXXXXX.csv";
    int fd = mkstemps(name, 4);
    if (fd >= 0)
      close(fd);
    csv = name;
  }
  if (!csv.empty() && !write_csv(csv, steps))
    return exit_ok; // the run itself completed; the message says what was not written
  bool plotted = !o.plot_path.empty() && plot(csv, o.plot_path);
  if (temporary_csv && plotted) // a failed plot leaves the CSV for a later try
    std::remove(csv.c_str());
  return exit_ok;
}

} // namespace

int bench_command(const std::vector<std::string>& args) {
  bench_options o;
  parsed_url url;
  try {
    if (auto code = parse_bench_args(args, o))
      return *code;
    url = parse_url(o.url);
  } catch (const usage_error& e) {
    return usage_failure(e.message);
  }
  if (auto error = bench::probe_connect(url.host, url.port, std::chrono::seconds(5));
      !error.empty()) {
    std::fprintf(stderr, "actorserve bench: cannot connect to %s:%u (%s)\n", url.host.c_str(),
                 url.port, error.c_str());
    return exit_unreachable;
  }
  std::vector<std::string> requests;
  std::string described;
  if (auto code = build_requests(url, o, requests, described))
    return *code;
  return run_steps(o, url, requests, described);
}

} // namespace serve::cli
