#include "libserve/json.hpp"

#include <doctest/doctest.h>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

using namespace serve;

namespace {

std::string nested(size_t depth, char open = '[', char close = ']') {
  return std::string(depth, open) + std::string(depth, close);
}

} // namespace

TEST_CASE("parse_json reads an ordinary document") {
  rapidjson::Document doc;
  REQUIRE_FALSE(parse_json(doc, R"({"a": [1, 2.5, "x", null, true], "b": {}})"));
  REQUIRE(doc.IsObject());
  CHECK(doc["a"].Size() == 5);
  CHECK(doc["a"][1].GetDouble() == 2.5);
}

TEST_CASE("nesting up to the limit is accepted and one level more is refused") {
  rapidjson::Document doc;
  CHECK_FALSE(parse_json(doc, nested(max_json_depth)));
  auto error = parse_json(doc, nested(max_json_depth + 1));
  REQUIRE(error);
  CHECK(*error == "nesting deeper than 128 levels at offset 128");
  CHECK(doc.IsNull());
}

TEST_CASE("a megabyte of open brackets is refused without recursing") {
  rapidjson::Document doc;
  auto error = parse_json(doc, std::string(1 << 20, '['));
  REQUIRE(error);
  CHECK(error->find("nesting deeper than") == 0);
  auto objects = parse_json(doc, std::string(1 << 20, '{'));
  REQUIRE(objects); // '{' needs a key first: refused at offset 1 either way
}

TEST_CASE("objects count towards the depth like arrays") {
  std::string deep;
  for (int i = 0; i < 200; ++i)
    deep += "{\"k\":";
  deep += "1" + std::string(200, '}');
  rapidjson::Document doc;
  auto error = parse_json(doc, deep);
  REQUIRE(error);
  CHECK(error->find("nesting deeper than 128 levels") == 0);
  json_read_options wide;
  wide.max_depth = 300;
  CHECK_FALSE(parse_json(doc, deep, wide));
}

TEST_CASE("strings that are not UTF-8 are refused") {
  rapidjson::Document doc;
  auto error = parse_json(doc, "[\"ok\", \"\xC3\x28\"]");
  REQUIRE(error);
  CHECK(error->find("Invalid encoding in string.") == 0);
  CHECK_FALSE(parse_json(doc, "[\"caf\xC3\xA9\"]"));
}

TEST_CASE("NaN and Infinity only when asked for") {
  rapidjson::Document doc;
  CHECK(parse_json(doc, "[NaN]"));
  json_read_options v2;
  v2.allow_nan_and_infinity = true;
  REQUIRE_FALSE(parse_json(doc, "[NaN, -Infinity]", v2));
  CHECK(doc[1].GetDouble() < 0);
}

TEST_CASE("full precision reads numbers exactly, integers past 64 bits as doubles") {
  // Found by scripts/fuzz v2_request: RapidJSON 1.1's own full-precision path is undefined on
  // 18446744073709551615551615 (clz of 0); numbers are converted with from_chars instead.
  json_read_options exact;
  exact.full_precision = true;
  exact.allow_nan_and_infinity = true;
  rapidjson::Document doc;
  REQUIRE_FALSE(parse_json(doc, "[18446744073709551615551615, -9223372036854775808, "
                                "18446744073709551615, 0.10000000149011612, 1e-400, NaN, "
                                "-Infinity, 7, -0]",
                           exact));
  CHECK(doc[0].IsDouble());
  CHECK(doc[0].GetDouble() == 18446744073709551615551615.0);
  CHECK(doc[1].IsInt64());
  CHECK(doc[1].GetInt64() == INT64_MIN);
  CHECK(doc[2].IsUint64());
  CHECK(doc[2].GetUint64() == UINT64_MAX);
  CHECK(doc[3].GetDouble() == 0.10000000149011612);
  CHECK(static_cast<float>(doc[3].GetDouble()) == 0.1f);
  CHECK(doc[5].GetDouble() != doc[5].GetDouble());
  CHECK(doc[6].GetDouble() < -1e308);
  CHECK(doc[7].IsInt());
  CHECK(doc[7].GetInt() == 7);
  auto too_big = parse_json(doc, "[1e400]", exact);
  REQUIRE(too_big);
  CHECK(too_big->find("Number too big to be stored in double.") == 0);
  // The in-place path validates and bounds like the other one, and keeps strings whole.
  CHECK(parse_json(doc, "[\"\xC3\x28\"]", exact)->find("Invalid encoding") == 0);
  CHECK(parse_json(doc, std::string(200, '['), exact)->find("nesting deeper") == 0);
  CHECK(parse_json(doc, std::string("[1]\0[2]", 7), exact)
        == std::optional<std::string>("a NUL byte is not allowed in JSON at offset 3"));
  CHECK(parse_json(doc, std::string("[1]\0[2]", 7)));
  REQUIRE_FALSE(parse_json(doc, R"({"name": "in\u0000put", "k\"": [1.5]})", exact));
  CHECK(std::string(doc["name"].GetString(), doc["name"].GetStringLength())
        == std::string("in\0put", 6));
  CHECK(doc["k\""][0].GetDouble() == 1.5);
}

TEST_CASE("errors carry RapidJSON's message and the offset") {
  rapidjson::Document doc;
  CHECK(parse_json(doc, "{bad") == std::optional<std::string>(
                                      "Missing a name for object member. at offset 1"));
  CHECK(parse_json(doc, "") == std::optional<std::string>("The document is empty. at offset 0"));
  CHECK(parse_json(doc, "[1] [2]")
        == std::optional<std::string>(
          "The document root must not be followed by other values. at offset 4"));
}

TEST_CASE("a parsed document can be written back (the writer recurses only to the limit)") {
  rapidjson::Document doc;
  REQUIRE_FALSE(parse_json(doc, nested(max_json_depth)));
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  doc.Accept(w);
  CHECK(std::string(buf.GetString()) == nested(max_json_depth));
}

TEST_CASE("is_valid_utf8 follows RFC 3629") {
  CHECK(is_valid_utf8(""));
  CHECK(is_valid_utf8("plain"));
  CHECK(is_valid_utf8("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80")); // é € 😀
  CHECK_FALSE(is_valid_utf8("\xC0\xAF"));                       // overlong '/'
  CHECK_FALSE(is_valid_utf8("\xE0\x80\xAF"));                   // overlong
  CHECK_FALSE(is_valid_utf8("\xED\xA0\x80"));                   // surrogate
  CHECK_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));               // past U+10FFFF
  CHECK_FALSE(is_valid_utf8("\xE2\x82"));                       // truncated
  CHECK_FALSE(is_valid_utf8("\x80"));                           // lone continuation
  CHECK_FALSE(is_valid_utf8("\xFF"));
}

TEST_CASE("printable_utf8 replaces what cannot be echoed") {
  CHECK(printable_utf8("caf\xC3\xA9") == "caf\xC3\xA9");
  CHECK(printable_utf8("a\xFF" "b") == "a\xEF\xBF\xBD" "b");
  CHECK(printable_utf8("a\r\nb\x01\tc") == "a \nb \tc");
  CHECK(printable_utf8("\xE2\x82") == "\xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(is_valid_utf8(printable_utf8("\xC0\xAF\xED\xA0\x80\xF8")));
}
