// Reading JSON that came from the network or a file.
//
// RapidJSON's default parser recurses once per nesting level, so a body of a few hundred
// kilobytes of "[" overflows the stack; and it accepts strings that are not UTF-8, which then
// travel into replies. parse_json parses iteratively (constant stack), validates UTF-8 and
// refuses nesting deeper than a limit before the document is built any deeper, so what it
// returns can be walked recursively (writers, payload readers) without risk.
// Stateless functions; thread-safe.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <rapidjson/document.h>

namespace serve {

/// Deepest nesting of arrays and objects accepted from outside (a v2 tensor of rank 8 nests 8;
/// configs nest about 10). Python's json module stops near 1000, by running out of recursion.
constexpr size_t max_json_depth = 128;

struct json_read_options {
  /// Arrays and objects nested deeper than this are refused. >= 1.
  size_t max_depth = max_json_depth;
  /// Accept NaN, Infinity and -Infinity (Triton's v2 JSON does).
  bool allow_nan_and_infinity = false;
  /// Parse decimals to the closest double (slower; v2 tensors use it).
  bool full_precision = false;
};

/// Parses `text` into `doc`. Returns std::nullopt on success, or why not, with the byte offset:
/// "Missing a name for object member. at offset 1", "nesting deeper than 128 levels at
/// offset 129", "Invalid encoding in string. at offset 7". On failure `doc` is null.
std::optional<std::string> parse_json(rapidjson::Document& doc, std::string_view text,
                                      const json_read_options& opts = {});

/// `text` with every invalid UTF-8 sequence replaced by U+FFFD and every ASCII control byte
/// other than tab and newline by a space: safe to echo in a text or JSON reply.
std::string printable_utf8(std::string_view text);

/// True if `text` is valid UTF-8 (no overlong forms, surrogates or code points past U+10FFFF).
bool is_valid_utf8(std::string_view text);

} // namespace serve
