// JSON <-> tensor conversion for model deployments.
#include <doctest/doctest.h>

#include "libserve/future.hpp"
#include "libserve/payload.hpp"

namespace {

rapidjson::Document parse(const char* text) {
  rapidjson::Document doc;
  doc.Parse(text);
  REQUIRE_FALSE(doc.HasParseError());
  return doc;
}

std::string rows_json(const serve::tensor& t, int64_t first, int64_t rows, bool drop) {
  rapidjson::StringBuffer buf;
  serve::json_writer w(buf);
  serve::write_tensor_rows(w, t, first, rows, drop);
  return buf.GetString();
}

std::string error_of(const char* json, serve::dtype type) {
  try {
    serve::tensor_from_json(parse(json), type, "input \"x\"");
  } catch (const serve::serve_exception& e) {
    CHECK(e.code() == serve::errc::invalid_argument);
    return e.what();
  }
  return "";
}

} // namespace

TEST_CASE("nested lists become tensors whose shape follows the nesting") {
  auto t = serve::tensor_from_json(parse("[[1, 2, 3], [4, 5, 6]]"), serve::dtype::float32, "x");
  CHECK(t.shape == std::vector<int64_t>{2, 3});
  CHECK(t.as<float>()[5] == 6.0f);
  auto scalar = serve::tensor_from_json(parse("7"), serve::dtype::int64, "x");
  CHECK(scalar.shape.empty());
  CHECK(scalar.as<int64_t>()[0] == 7);
  auto empty = serve::tensor_from_json(parse("[]"), serve::dtype::float32, "x");
  CHECK(empty.shape == std::vector<int64_t>{0});
  auto words = serve::tensor_from_json(parse(R"([["a", "b"]])"), serve::dtype::string, "x");
  CHECK(words.strings == std::vector<std::string>{"a", "b"});
  auto flags = serve::tensor_from_json(parse("[true, false, 1]"), serve::dtype::boolean, "x");
  CHECK(flags.as<uint8_t>()[0] == 1);
  CHECK(flags.as<uint8_t>()[1] == 0);
}

TEST_CASE("bad payloads are refused naming the input and the problem") {
  CHECK(error_of("[[1, 2], [3]]", serve::dtype::float32).find("input \"x\": ragged") == 0);
  CHECK(error_of("[[1, 2], 3]", serve::dtype::float32).find("ragged") != std::string::npos);
  CHECK(error_of(R"([1, "a"])", serve::dtype::float32).find("expected float32 values, got a string")
        != std::string::npos);
  CHECK(error_of("[1.5]", serve::dtype::int64).find("fraction") != std::string::npos);
  CHECK(error_of("[300]", serve::dtype::uint8).find("out of range") != std::string::npos);
  // Integral doubles too (found by scripts/fuzz json_payload: 1e300 into uint16 was undefined).
  CHECK(error_of("[1e300]", serve::dtype::uint16).find("1.0000000000000001e+300 is out of range "
                                                       "for uint16") != std::string::npos);
  CHECK(error_of("[-1e3]", serve::dtype::uint8).find("out of range") != std::string::npos);
  CHECK(error_of("[9.3e18]", serve::dtype::int64).find("out of range") != std::string::npos);
  CHECK(error_of("[2e19]", serve::dtype::uint64).find("out of range") != std::string::npos);
  CHECK(error_of("[1]", serve::dtype::string).find("expected strings") != std::string::npos);
}

TEST_CASE("rows are written back as nested lists, float32 in shortest form") {
  auto t = serve::tensor::from<float>(serve::dtype::float32, {3, 2}, {0.1f, 2, 3, 4, 5, 6});
  CHECK(rows_json(t, 0, 3, false) == "[[0.1,2.0],[3.0,4.0],[5.0,6.0]]");
  CHECK(rows_json(t, 1, 2, false) == "[[3.0,4.0],[5.0,6.0]]");
  CHECK(rows_json(t, 2, 1, true) == "[5.0,6.0]");
  auto labels = serve::tensor::from<int64_t>(serve::dtype::int64, {2}, {4, 2});
  CHECK(rows_json(labels, 1, 1, false) == "[2]");
  CHECK(rows_json(labels, 1, 1, true) == "2");
}

TEST_CASE("rows concatenate and slice back along the batch dimension") {
  auto a = serve::tensor::from<float>(serve::dtype::float32, {1, 2}, {1, 2});
  auto b = serve::tensor::from<float>(serve::dtype::float32, {2, 2}, {3, 4, 5, 6});
  auto both = serve::concat_rows({&a, &b});
  CHECK(both.shape == std::vector<int64_t>{3, 2});
  auto back = serve::slice_rows(both, 1, 2);
  CHECK(back.shape == std::vector<int64_t>{2, 2});
  CHECK(back.data == b.data);
}
