#include "libserve/json.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>

#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/stream.h>
#include <rapidjson/reader.h>

namespace serve {

namespace {

/// Forwards SAX events to the document that is being built, counting the nesting; stops the
/// parse (returns false) one level past the limit. With `exact_numbers`, numbers arrive as text
/// (kParseNumbersAsStringsFlag) and are converted here with std::from_chars, correctly rounded:
/// RapidJSON 1.1's own full-precision path (StrtodDiyFp) calls __builtin_clzll(0) on some
/// inputs, which is undefined (found by scripts/fuzz v2_request).
class depth_limited_builder {
public:
  depth_limited_builder(rapidjson::Document& doc, size_t max_depth, bool exact_numbers)
    : doc_(doc), max_depth_(max_depth), exact_numbers_(exact_numbers) {}

  bool too_deep() const { return too_deep_; }
  const std::string& number_error() const { return number_error_; }

  bool Null() { return doc_.Null(); }
  bool Bool(bool b) { return doc_.Bool(b); }
  bool Int(int i) { return doc_.Int(i); }
  bool Uint(unsigned i) { return doc_.Uint(i); }
  bool Int64(int64_t i) { return doc_.Int64(i); }
  bool Uint64(uint64_t i) { return doc_.Uint64(i); }
  bool Double(double d) { return doc_.Double(d); }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool copy) {
    if (!exact_numbers_)
      return doc_.RawNumber(s, n, copy);
    std::string_view text(s, n);
    bool integer = true;
    for (char c : text)
      integer &= (c >= '0' && c <= '9') || c == '-';
    if (integer) {
      if (text.front() == '-') {
        int64_t i = 0;
        auto [end, ec] = std::from_chars(s, s + n, i);
        if (ec == std::errc() && end == s + n)
          return doc_.Int64(i);
      } else {
        uint64_t u = 0;
        auto [end, ec] = std::from_chars(s, s + n, u);
        if (ec == std::errc() && end == s + n)
          return doc_.Uint64(u);
      }
      // Too large for 64 bits: a double, as RapidJSON itself reads it.
    }
    double d = 0;
    auto [end, ec] = std::from_chars(s, s + n, d);
    if (ec == std::errc::result_out_of_range) {
      // Underflow reads as 0 (or a denormal), as RapidJSON reads it; overflow is an error.
      d = std::strtod(std::string(text).c_str(), nullptr);
      if (std::isinf(d)) {
        number_error_ = "Number too big to be stored in double.";
        return false;
      }
      return doc_.Double(d);
    }
    if (ec != std::errc() || end != s + n) {
      number_error_ = "Number too big to be stored in double.";
      return false;
    }
    return doc_.Double(d);
  }
  // In exact mode the text is parsed in place in a buffer that goes away afterwards: strings
  // are copied into the document.
  bool String(const char* s, rapidjson::SizeType n, bool copy) {
    return doc_.String(s, n, copy || exact_numbers_);
  }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) {
    return doc_.Key(s, n, copy || exact_numbers_);
  }
  bool StartObject() { return enter() && doc_.StartObject(); }
  bool EndObject(rapidjson::SizeType members) {
    --depth_;
    return doc_.EndObject(members);
  }
  bool StartArray() { return enter() && doc_.StartArray(); }
  bool EndArray(rapidjson::SizeType elements) {
    --depth_;
    return doc_.EndArray(elements);
  }

private:
  bool enter() {
    if (++depth_ <= max_depth_)
      return true;
    too_deep_ = true;
    return false;
  }

  rapidjson::Document& doc_;
  size_t max_depth_;
  bool exact_numbers_;
  size_t depth_ = 0;
  bool too_deep_ = false;
  std::string number_error_;
};

template <unsigned Flags>
std::optional<std::string> parse_with(rapidjson::Document& doc, std::string_view text,
                                      size_t max_depth) {
  constexpr unsigned flags = Flags | rapidjson::kParseIterativeFlag
                             | rapidjson::kParseValidateEncodingFlag;
  constexpr bool exact_numbers = (Flags & rapidjson::kParseNumbersAsStringsFlag) != 0;
  std::optional<std::string> error;
  // RapidJSON's streams read a NUL byte as the end of the text: what follows one would be
  // ignored. Raw NUL is never valid JSON.
  if (auto nul = text.find('\0'); nul != std::string_view::npos) {
    doc.SetNull();
    return "a NUL byte is not allowed in JSON at offset " + std::to_string(nul);
  }
  auto generate = [&](rapidjson::Document& handler) {
    depth_limited_builder builder(handler, max_depth, exact_numbers);
    rapidjson::Reader reader;
    rapidjson::ParseResult result;
    if (exact_numbers) {
      // Numbers as text, in place: no per-character copy of each number.
      std::string buffer(text);
      rapidjson::InsituStringStream stream(buffer.data());
      result = reader.Parse<flags | rapidjson::kParseInsituFlag>(stream, builder);
    } else {
      rapidjson::MemoryStream stream(text.data(), text.size());
      result = reader.Parse<flags>(stream, builder);
    }
    if (result)
      return true;
    if (builder.too_deep())
      error = "nesting deeper than " + std::to_string(max_depth) + " levels";
    else if (!builder.number_error().empty())
      error = builder.number_error();
    else
      error = rapidjson::GetParseError_En(result.Code());
    *error += " at offset " + std::to_string(result.Offset());
    return false;
  };
  doc.SetNull();
  doc.Populate(generate);
  if (error)
    doc.SetNull();
  return error;
}

/// Length of the valid UTF-8 sequence starting at s[i], or 0 if it is not one.
size_t utf8_sequence_length(std::string_view s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  auto continuation = [&](size_t k) { return k < s.size() && (byte(k) & 0xC0) == 0x80; };
  unsigned char c = byte(i);
  if (c < 0x80)
    return 1;
  if (c >= 0xC2 && c <= 0xDF)
    return continuation(i + 1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!continuation(i + 1) || !continuation(i + 2))
      return 0;
    unsigned char c1 = byte(i + 1);
    if (c == 0xE0 && c1 < 0xA0)
      return 0; // overlong
    if (c == 0xED && c1 >= 0xA0)
      return 0; // UTF-16 surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!continuation(i + 1) || !continuation(i + 2) || !continuation(i + 3))
      return 0;
    unsigned char c1 = byte(i + 1);
    if (c == 0xF0 && c1 < 0x90)
      return 0; // overlong
    if (c == 0xF4 && c1 >= 0x90)
      return 0; // past U+10FFFF
    return 4;
  }
  return 0;
}

} // namespace

std::optional<std::string> parse_json(rapidjson::Document& doc, std::string_view text,
                                      const json_read_options& opts) {
  size_t depth = opts.max_depth == 0 ? 1 : opts.max_depth;
  // Full precision: numbers as text, converted by the builder (see depth_limited_builder).
  constexpr unsigned exact = rapidjson::kParseNumbersAsStringsFlag;
  if (opts.allow_nan_and_infinity && opts.full_precision)
    return parse_with<rapidjson::kParseNanAndInfFlag | exact>(doc, text, depth);
  if (opts.allow_nan_and_infinity)
    return parse_with<rapidjson::kParseNanAndInfFlag>(doc, text, depth);
  if (opts.full_precision)
    return parse_with<exact>(doc, text, depth);
  return parse_with<rapidjson::kParseDefaultFlags>(doc, text, depth);
}

bool is_valid_utf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    size_t n = utf8_sequence_length(text, i);
    if (n == 0)
      return false;
    i += n;
  }
  return true;
}

std::string printable_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    size_t n = utf8_sequence_length(text, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD"; // U+FFFD
      ++i;
      continue;
    }
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (n == 1 && (c < 0x20 || c == 0x7F) && c != '\t' && c != '\n')
      out += ' ';
    else
      out.append(text.data() + i, n);
    i += n;
  }
  return out;
}

} // namespace serve
