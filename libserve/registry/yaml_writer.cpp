#include "libserve/registry/yaml_writer.hpp"

#include <cctype>
#include <cstdio>

#include "libserve/future.hpp"

namespace serve::registry {
namespace {

std::string lower(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Words YAML 1.1 (PyYAML) reads as booleans or null when plain.
bool is_special_word(const std::string& s) {
  static const char* words[] = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"};
  auto l = lower(s);
  for (const char* w : words)
    if (l == w)
      return true;
  return false;
}

// Plain only for a conservative set: starts with a letter, '_' or '/', then letters, digits and
// _ . / : @ + -, no ": " and no trailing ':'. Everything that YAML could read as a number, date,
// boolean, null, alias, tag or comment is quoted instead.
bool is_safe_plain(const std::string& s) {
  if (s.empty() || is_special_word(s))
    return false;
  unsigned char first = s[0];
  if (!(std::isalpha(first) || first == '_' || first == '/'))
    return false;
  for (unsigned char c : s)
    if (!(std::isalnum(c) || c == '_' || c == '.' || c == '/' || c == ':' || c == '@' || c == '+' ||
          c == '-'))
      return false;
  return s.back() != ':';
}

bool needs_double_quotes(const std::string& s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f)
      return true;
  return false;
}

std::string double_quoted(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
    case '"':
      out += "\\\"";
      break;
    case '\\':
      out += "\\\\";
      break;
    case '\n':
      out += "\\n";
      break;
    case '\t':
      out += "\\t";
      break;
    case '\r':
      out += "\\r";
      break;
    default:
      if (c < 0x20 || c == 0x7f) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\x%02x", c);
        out += buf;
      } else {
        out += static_cast<char>(c);
      }
    }
  }
  return out + "\"";
}

} // namespace

std::string yaml_scalar_text(const std::string& value) {
  if (is_safe_plain(value))
    return value;
  if (needs_double_quotes(value))
    return double_quoted(value);
  std::string out = "'";
  for (char c : value)
    out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

yaml_value yaml_value::plain(std::string scalar) {
  yaml_value v(kind::plain);
  v.scalar_ = std::move(scalar);
  return v;
}

yaml_value yaml_value::text(std::string value) {
  yaml_value v(kind::text);
  v.scalar_ = std::move(value);
  return v;
}

yaml_value yaml_value::from_node(const YAML::Node& node) {
  switch (node.Type()) {
  case YAML::NodeType::Map: {
    auto out = map();
    for (const auto& entry : node)
      out.set(entry.first.as<std::string>(), from_node(entry.second));
    return out;
  }
  case YAML::NodeType::Sequence: {
    auto out = list();
    for (const auto& item : node)
      out.push(from_node(item));
    return out;
  }
  case YAML::NodeType::Scalar:
    // yaml-cpp tags a plain scalar "?" and a quoted one "!".
    return node.Tag() == "?" ? plain(node.Scalar()) : text(node.Scalar());
  default:
    return null();
  }
}

yaml_value& yaml_value::set(const std::string& key, yaml_value value) {
  if (kind_ != kind::map)
    throw serve_exception(errc::internal, "yaml_value::set on a value that is not a mapping");
  entries_.insert_or_assign(key, std::move(value));
  return *this;
}

yaml_value& yaml_value::push(yaml_value value) {
  if (kind_ != kind::list)
    throw serve_exception(errc::internal, "yaml_value::push on a value that is not a list");
  items_.push_back(std::move(value));
  return *this;
}

// Appends `value` to `out`: a scalar or an empty collection on the current line, a collection
// on the following lines at `indent` (mappings' keys; list items' dashes).
void emit_value(std::string& out, const yaml_value& value, int indent) {
  const std::string pad(static_cast<size_t>(indent), ' ');
  switch (value.kind_) {
  case yaml_value::kind::null:
    out += " null\n";
    return;
  case yaml_value::kind::plain:
    out += " " + value.scalar_ + "\n";
    return;
  case yaml_value::kind::text:
    out += " " + yaml_scalar_text(value.scalar_) + "\n";
    return;
  case yaml_value::kind::map:
    if (value.entries_.empty()) {
      out += " {}\n";
      return;
    }
    out += "\n";
    for (const auto& [key, entry] : value.entries_) {
      out += pad + yaml_scalar_text(key) + ":";
      emit_value(out, entry, indent + 2);
    }
    return;
  case yaml_value::kind::list:
    if (value.items_.empty()) {
      out += " []\n";
      return;
    }
    out += "\n";
    // PyYAML writes a mapping's list at the key's indentation: the caller passed indent + 2.
    for (const auto& item : value.items_) {
      const std::string dash(static_cast<size_t>(indent - 2), ' ');
      if (item.kind_ == yaml_value::kind::map && !item.entries_.empty()) {
        std::string nested;
        emit_value(nested, item, indent);
        // "\n<pad>key: v\n<pad>k2: v2\n" -> "- key: v\n<pad>k2: v2\n"
        out += dash + "- " + nested.substr(1 + static_cast<size_t>(indent));
      } else if (item.kind_ == yaml_value::kind::list && !item.items_.empty()) {
        throw serve_exception(errc::internal, "yaml_value: nested lists are not written");
      } else {
        out += dash + "-";
        emit_value(out, item, indent);
      }
    }
    return;
  }
}

std::string to_yaml(const yaml_value& document) {
  if (document.type() != yaml_value::kind::map)
    throw serve_exception(errc::internal, "to_yaml: the document must be a mapping");
  std::string out;
  emit_value(out, document, 0);
  if (out == " {}\n")
    return "{}\n";
  return out.substr(1); // the leading "\n" of a mapping
}

} // namespace serve::registry
