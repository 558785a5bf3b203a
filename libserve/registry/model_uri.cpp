#include "libserve/registry/model_uri.hpp"

#include <cctype>
#include <vector>

#include "libserve/future.hpp"

namespace serve::registry {
namespace {

constexpr const char* forms =
    "expected models:/NAME/VERSION, models:/NAME/latest, models:/NAME/STAGE (None, Staging, "
    "Production, Archived), models:/NAME@ALIAS, models:/m-<id>, runs:/RUN_ID/PATH or a local path";

[[noreturn]] void refuse(const std::string& uri, const std::string& problem) {
  throw serve_exception(errc::invalid_argument, uri + ": " + problem);
}


bool all_digits(const std::string& s) {
  if (s.empty())
    return false;
  for (unsigned char c : s)
    if (!std::isdigit(c))
      return false;
  return true;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    size_t end = s.find(sep, start);
    parts.push_back(s.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos)
      return parts;
    start = end + 1;
  }
}

void check_name(const std::string& uri, const std::string& name) {
  bool blank = true;
  for (unsigned char c : name)
    blank &= std::isspace(c) != 0;
  if (blank)
    refuse(uri, "the registered model name is empty; " + std::string(forms));
  if (name == "." || name == "..")
    refuse(uri, "'" + name + "' is not a registered model name (it would leave the registry)");
  if (name.find(':') != std::string::npos)
    refuse(uri, "registered model names cannot contain ':'");
  if (has_control_char(name))
    refuse(uri, "the registered model name contains a control character");
}

// MLflow's alias names: letters, digits, '_' and '-' (Python's \w also takes non-ASCII letters).
void check_alias(const std::string& uri, const std::string& alias) {
  if (alias.empty())
    refuse(uri, "the alias after '@' is empty");
  for (unsigned char c : alias)
    if (!(std::isalnum(c) || c == '_' || c == '-' || c >= 0x80))
      refuse(uri, "alias '" + alias +
                      "' is not an MLflow alias name (letters, digits, '_' and '-' only)");
}

bool is_model_id(const std::string& s) {
  if (s.size() < 3 || s.compare(0, 2, "m-") != 0)
    return false;
  for (size_t i = 2; i < s.size(); ++i)
    if (!std::isxdigit(static_cast<unsigned char>(s[i])))
      return false;
  return true;
}

// MLflow's run ids: ^[a-zA-Z0-9][\w\-]{0,255}$
bool is_run_id(const std::string& s) {
  if (s.empty() || s.size() > 256 || !std::isalnum(static_cast<unsigned char>(s[0])))
    return false;
  for (unsigned char c : s)
    if (!(std::isalnum(c) || c == '_' || c == '-'))
      return false;
  return true;
}

model_uri parse_models(const std::string& text, const std::string& rest) {
  model_uri uri;
  uri.text = text;
  if (rest.empty() || rest[0] == '/')
    refuse(text, std::string(rest.empty() ? "nothing after models:/; "
                                          : "a host after "
                                            "models:// is not "
                                            "supported; ") +
                     forms);
  auto parts = split(rest, '/');
  if (parts.size() > 2)
    refuse(text, "too many '/' parts; " + std::string(forms));
  if (parts.size() == 2) {
    uri.name = parts[0];
    check_name(text, uri.name);
    const auto& suffix = parts[1];
    if (suffix.empty())
      refuse(text, "nothing after '" + uri.name + "/'; " + forms);
    if (all_digits(suffix)) {
      if (suffix.size() > 18)
        refuse(text, "version " + suffix + " is out of range");
      uri.kind = model_uri_kind::version;
      uri.version = std::stoll(suffix);
    } else if (ascii_lower(suffix) == "latest") {
      uri.kind = model_uri_kind::latest;
    } else {
      uri.stage = canonical_stage(suffix);
      if (uri.stage.empty())
        refuse(text, "'" + suffix +
                         "' is neither a version number, 'latest' nor a stage (None, "
                         "Staging, Production, Archived)");
      uri.kind = model_uri_kind::stage;
    }
    return uri;
  }
  const auto& part = parts[0];
  if (auto at = part.rfind('@'); at != std::string::npos) {
    uri.name = part.substr(0, at);
    uri.alias = part.substr(at + 1);
    check_name(text, uri.name);
    check_alias(text, uri.alias);
    uri.kind = ascii_lower(uri.alias) == "latest" ? model_uri_kind::latest : model_uri_kind::alias;
    return uri;
  }
  if (!is_model_id(part))
    refuse(text, "'" + part + "' alone names no version and is not a logged model id (m-<hex>); " +
                     forms);
  uri.kind = model_uri_kind::logged_model;
  uri.model_id = part;
  return uri;
}

model_uri parse_runs(const std::string& text, const std::string& rest) {
  model_uri uri;
  uri.text = text;
  uri.kind = model_uri_kind::run;
  if (rest.empty() || rest[0] == '/')
    refuse(text, "expected runs:/RUN_ID/PATH (a run id right after runs:/)");
  auto slash = rest.find('/');
  uri.run_id = rest.substr(0, slash);
  if (!is_run_id(uri.run_id))
    refuse(text, "'" + uri.run_id + "' is not an MLflow run id (letters, digits, '_', '-')");
  std::string path = slash == std::string::npos ? "" : rest.substr(slash + 1);
  if (!path.empty() && path.back() == '/')
    path.pop_back();
  if (!path.empty()) {
    for (const auto& segment : split(path, '/')) {
      if (segment.empty())
        refuse(text, "the artifact path '" + path +
                         "' has an empty segment (absolute paths are refused)");
      if (segment == "." || segment == "..")
        refuse(text, "the artifact path '" + path + "' has a '" + segment +
                         "' segment (paths must stay inside the run's artifacts)");
    }
    if (has_control_char(path))
      refuse(text, "the artifact path contains a control character");
  }
  uri.artifact_path = path;
  return uri;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

} // namespace

std::string ascii_lower(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool has_control_char(const std::string& s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f)
      return true;
  return false;
}


const char* to_string(model_uri_kind kind) {
  switch (kind) {
  case model_uri_kind::local_path:
    return "local path";
  case model_uri_kind::version:
    return "version";
  case model_uri_kind::latest:
    return "latest";
  case model_uri_kind::stage:
    return "stage";
  case model_uri_kind::alias:
    return "alias";
  case model_uri_kind::logged_model:
    return "logged model";
  case model_uri_kind::run:
    return "run";
  }
  return "?";
}

void check_model_name(const std::string& name) {
  if (name.find('/') != std::string::npos)
    refuse("registered model '" + name + "'", "registered model names cannot contain '/'");
  check_name("registered model '" + name + "'", name);
}

std::string canonical_stage(const std::string& stage) {
  for (const char* canonical : {"None", "Staging", "Production", "Archived"})
    if (ascii_lower(stage) == ascii_lower(canonical))
      return canonical;
  return "";
}

std::string uri_scheme(const std::string& text) {
  if (text.empty() || !std::isalpha(static_cast<unsigned char>(text[0])))
    return "";
  for (size_t i = 1; i < text.size(); ++i) {
    unsigned char c = text[i];
    if (c == ':')
      return ascii_lower(text.substr(0, i));
    if (!(std::isalnum(c) || c == '+' || c == '.' || c == '-'))
      return "";
  }
  return "";
}

std::string file_uri_to_path(const std::string& uri) {
  if (uri_scheme(uri) != "file")
    refuse(uri, "not a file: URI");
  std::string rest = uri.substr(5);
  if (rest.compare(0, 2, "//") == 0) {
    auto slash = rest.find('/', 2);
    std::string host = rest.substr(2, slash == std::string::npos ? std::string::npos : slash - 2);
    if (!host.empty() && ascii_lower(host) != "localhost")
      refuse(uri, "file URI on host '" + host + "': only local files can be read");
    rest = slash == std::string::npos ? "" : rest.substr(slash);
  }
  std::string path;
  for (size_t i = 0; i < rest.size(); ++i) {
    if (rest[i] != '%') {
      path += rest[i];
      continue;
    }
    int hi = i + 2 < rest.size() ? hex_value(rest[i + 1]) : -1;
    int lo = i + 2 < rest.size() ? hex_value(rest[i + 2]) : -1;
    if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
      refuse(uri, "malformed %-escape in file URI");
    path += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  if (path.empty())
    refuse(uri, "file URI without a path");
  return path;
}

model_uri model_uri::parse(const std::string& text) {
  if (text.empty())
    throw serve_exception(errc::invalid_argument, "model uri is empty; " + std::string(forms));
  if (text.find('\0') != std::string::npos)
    refuse(text, "contains a NUL character");
  auto scheme = uri_scheme(text);
  auto rest = text.substr(scheme.empty() ? 0 : scheme.size() + 1);
  if (scheme == "models" || scheme == "runs") {
    if (rest.empty() || rest[0] != '/')
      refuse(text, "expected '" + scheme + ":/' followed by a path; " + forms);
    rest.erase(0, 1);
    return scheme == "models" ? parse_models(text, rest) : parse_runs(text, rest);
  }
  model_uri uri;
  uri.text = text;
  uri.kind = model_uri_kind::local_path;
  if (scheme.empty()) {
    uri.path = text;
  } else if (scheme == "file") {
    uri.path = file_uri_to_path(text);
  } else if (scheme == "mlflow-artifacts") {
    refuse(text, "an artifact URI on a tracking server; give the models:/ or runs:/ URI and the "
                 "server as registry_uri");
  } else {
    refuse(text, "scheme '" + scheme + ":' is not supported; " + forms);
  }
  return uri;
}

} // namespace serve::registry
