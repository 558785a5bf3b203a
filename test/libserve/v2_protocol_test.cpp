// The Open Inference Protocol v2 codec: requests as tritonclient[http] sends them (JSON and
// binary tensors), raw binary requests, replies with JSON and binary outputs, and the errors.
#include <doctest/doctest.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "libserve/future.hpp"
#include "libserve/v2_protocol.hpp"

namespace v2 = serve::v2;
using serve::dtype;
using serve::tensor;

namespace {

std::string fixture(const std::string& name) {
  std::ifstream in(std::string(ACTORSERVE_SOURCE_DIR) + "/test/fixtures/v2/" + name,
                   std::ios::binary);
  REQUIRE(in.good());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// The Inference-Header-Content-Length make_fixtures.py recorded for `name` (nullopt: none).
std::optional<size_t> fixture_header_length(const std::string& name) {
  rapidjson::Document manifest;
  manifest.Parse(fixture("manifest.json").c_str());
  const auto& v = manifest[name.c_str()]["header_length"];
  return v.IsNull() ? std::nullopt : std::optional<size_t>(v.GetUint64());
}

template <class T> std::string bytes_of(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

/// BYTES elements serialized as the client does: 4-byte little-endian length, then the bytes.
std::string serialized_strings(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) {
    auto n = static_cast<uint32_t>(s.size());
    char prefix[4] = {char(n), char(n >> 8), char(n >> 16), char(n >> 24)};
    out.append(prefix, 4).append(s);
  }
  return out;
}

v2::infer_request parse_json(const std::string& body) {
  return v2::parse_infer_request(body, std::nullopt, {});
}

/// The message of the invalid_argument that parsing `body` throws ("" when it does not throw).
std::string parse_error(const std::string& body, std::optional<size_t> header_length = std::nullopt,
                        const std::vector<v2::tensor_signature>& model = {}) {
  try {
    v2::parse_infer_request(body, header_length, model);
  } catch (const serve::serve_exception& e) {
    CHECK(e.code() == serve::errc::invalid_argument);
    return e.what();
  }
  return "";
}

/// A request with one JSON input.
std::string one_input(const std::string& datatype, const std::string& shape,
                      const std::string& data) {
  return R"({"inputs":[{"name":"x","datatype":")" + datatype + R"(","shape":)" + shape +
         R"(,"data":)" + data + "}]}";
}

template <class T> std::vector<T> values_of(const tensor& t) {
  return std::vector<T>(t.as<T>(), t.as<T>() + t.numel());
}

const v2::input& input_named(const v2::infer_request& req, const std::string& name) {
  for (const auto& in : req.inputs)
    if (in.name == name)
      return in;
  FAIL("no input " << name);
  throw;
}

rapidjson::Document json_part(const v2::encoded_response& r) {
  rapidjson::Document doc;
  doc.Parse(r.body.data(), r.header_length.value_or(r.body.size()));
  REQUIRE_FALSE(doc.HasParseError());
  return doc;
}

} // namespace

TEST_CASE("v2 datatype names map to dtypes and back") {
  for (const char* name : {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32",
                           "INT64", "FP16", "FP32", "FP64", "BYTES", "BF16"}) {
    auto type = v2::dtype_from_v2(name);
    REQUIRE(type);
    CHECK(std::string(serve::dtype_v2_name(*type)) == name);
  }
  CHECK(v2::dtype_from_v2("FP33") == std::nullopt);
  CHECK(v2::dtype_from_v2("fp32") == std::nullopt);
  CHECK(v2::dtype_from_v2("STRING") == std::nullopt);
}

TEST_CASE("v2 JSON data may be flat or nested for every datatype") {
  struct sample {
    const char* datatype;
    const char* flat;
    const char* nested;
  };
  for (auto s :
       {sample{"BOOL", "[true,false,true,true]", "[[true,false],[true,true]]"},
        sample{"UINT8", "[0,1,2,255]", "[[0,1],[2,255]]"},
        sample{"UINT16", "[0,1,2,65535]", "[[0,1],[2,65535]]"},
        sample{"UINT32", "[0,1,2,4294967295]", "[[0,1],[2,4294967295]]"},
        sample{"UINT64", "[0,1,2,18446744073709551615]", "[[0,1],[2,18446744073709551615]]"},
        sample{"INT8", "[-128,1,2,127]", "[[-128,1],[2,127]]"},
        sample{"INT16", "[-32768,1,2,32767]", "[[-32768,1],[2,32767]]"},
        sample{"INT32", "[-2147483648,1,2,3]", "[[-2147483648,1],[2,3]]"},
        sample{"INT64", "[-9223372036854775808,1,2,3]", "[[-9223372036854775808,1],[2,3]]"},
        sample{"FP16", "[0.5,-2,65504,0.1]", "[[0.5,-2],[65504,0.1]]"},
        sample{"BF16", "[0.5,-2,1e30,3]", "[[0.5,-2],[1e30,3]]"},
        sample{"FP32", "[0.1,-2,3.5,1e-3]", "[[0.1,-2],[3.5,1e-3]]"},
        sample{"FP64", "[0.1,-2,3.5,1e300]", "[[0.1,-2],[3.5,1e300]]"},
        sample{"BYTES", R"(["a","","c\u0000d","é"])", R"([["a",""],["c\u0000d","é"]])"}}) {
    CAPTURE(s.datatype);
    auto flat = parse_json(one_input(s.datatype, "[2,2]", s.flat));
    auto nested = parse_json(one_input(s.datatype, "[2,2]", s.nested));
    const tensor& t = flat.inputs.at(0).value;
    CHECK(t.type == *v2::dtype_from_v2(s.datatype));
    CHECK(t.shape == std::vector<int64_t>{2, 2});
    CHECK(t.data == nested.inputs.at(0).value.data);
    CHECK(t.strings == nested.inputs.at(0).value.strings);
  }
  auto bytes = parse_json(one_input("BYTES", "[4]", R"(["a","","c\u0000d","é"])")).inputs[0].value;
  CHECK(bytes.strings == std::vector<std::string>{"a", "", std::string("c\0d", 3), "\xc3\xa9"});
  auto halves = parse_json(one_input("FP16", "[3]", "[0.5,-2,0.1]")).inputs[0].value;
  CHECK(values_of<uint16_t>(halves) == std::vector<uint16_t>{0x3800, 0xc000, 0x2e66});
  auto bf = parse_json(one_input("BF16", "[2]", "[1,-2.5]")).inputs[0].value;
  CHECK(values_of<uint16_t>(bf) == std::vector<uint16_t>{0x3f80, 0xc020});
  auto flags = parse_json(one_input("BOOL", "[2]", "[false,true]")).inputs[0].value;
  CHECK(values_of<uint8_t>(flags) == std::vector<uint8_t>{0, 1});
  auto big = parse_json(one_input("UINT64", "[1]", "[18446744073709551615]")).inputs[0].value;
  CHECK(values_of<uint64_t>(big)[0] == 18446744073709551615ull);
  auto scalar = parse_json(one_input("INT32", "[]", "[7]")).inputs[0].value;
  CHECK(scalar.shape.empty());
  CHECK(values_of<int32_t>(scalar) == std::vector<int32_t>{7});
  auto empty = parse_json(one_input("FP32", "[0,3]", "[]")).inputs[0].value;
  CHECK(empty.shape == std::vector<int64_t>{0, 3});
}

TEST_CASE("v2 all-JSON request from tritonclient parses every datatype") {
  auto body = fixture("all_json_request.json");
  auto req = v2::parse_infer_request(body, fixture_header_length("all_json_request.json"), {});
  CHECK_FALSE(req.has_id);
  CHECK(req.outputs.empty());
  CHECK(req.binary_output_default); // the client asks for all outputs in binary
  CHECK(req.inputs.size() == 13);
  CHECK(values_of<uint8_t>(input_named(req, "bool").value) == std::vector<uint8_t>{1, 0});
  CHECK(input_named(req, "bool").value.shape == std::vector<int64_t>{1, 2});
  CHECK(values_of<uint8_t>(input_named(req, "u8").value) == std::vector<uint8_t>{0, 255});
  CHECK(values_of<uint32_t>(input_named(req, "u32").value)[1] == 4294967295u);
  CHECK(values_of<uint64_t>(input_named(req, "u64").value)[1] == 18446744073709551615ull);
  CHECK(values_of<int8_t>(input_named(req, "i8").value) == std::vector<int8_t>{-128, 127});
  CHECK(values_of<int64_t>(input_named(req, "i64").value)[0] == INT64_MIN);
  CHECK(values_of<uint16_t>(input_named(req, "f16").value) ==
        std::vector<uint16_t>{0x3800, 0xc000});
  CHECK(values_of<float>(input_named(req, "f32").value) == std::vector<float>{0.1f, -3.5f});
  CHECK(values_of<double>(input_named(req, "f64").value) == std::vector<double>{0.1, 1e300});
  CHECK(input_named(req, "s").value.strings ==
        std::vector<std::string>{"ab", "cd", "", "\xc3\xa9"});
  CHECK(input_named(req, "s").value.shape == std::vector<int64_t>{2, 2});
}

TEST_CASE("a JSON request re-encoded in the binary form parses back to the same request") {
  // What the ingress does with JSON infer requests on its io threads.
  for (std::string body :
       {fixture("all_json_request.json"),
        std::string(R"({"id": "r7", "inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32",
           "data": [[1, 2], [3, 4.5]]}], "outputs": [{"name": "y"},
           {"name": "z", "parameters": {"binary_data": true}}]})"),
        std::string(R"({"id": "", "inputs": [{"name": "s", "shape": [0], "datatype": "BYTES",
           "data": []}]})")}) {
    auto req = v2::parse_infer_request(body, std::nullopt, {});
    auto encoded = v2::encode_binary_request(req);
    auto back = v2::parse_infer_request(encoded.body, encoded.header_length, {});
    CHECK(back.id == req.id);
    CHECK(back.has_id == req.has_id);
    CHECK(back.binary_output_default == req.binary_output_default);
    REQUIRE(back.outputs.size() == req.outputs.size());
    for (size_t i = 0; i < req.outputs.size(); ++i) {
      CHECK(back.outputs[i].name == req.outputs[i].name);
      CHECK(back.outputs[i].binary == req.outputs[i].binary);
    }
    REQUIRE(back.inputs.size() == req.inputs.size());
    for (size_t i = 0; i < req.inputs.size(); ++i) {
      CHECK(back.inputs[i].name == req.inputs[i].name);
      CHECK(back.inputs[i].value.type == req.inputs[i].value.type);
      CHECK(back.inputs[i].value.shape == req.inputs[i].value.shape);
      CHECK(back.inputs[i].value.data == req.inputs[i].value.data);
      CHECK(back.inputs[i].value.strings == req.inputs[i].value.strings);
    }
  }
}

TEST_CASE("v2 binary request from tritonclient mixes binary and JSON inputs") {
  auto body = fixture("mixed_binary_request.bin");
  auto header_length = fixture_header_length("mixed_binary_request.bin");
  REQUIRE(header_length);
  auto req = v2::parse_infer_request(body, header_length, {});
  CHECK(req.has_id);
  CHECK(req.id == "req-7");
  CHECK_FALSE(req.binary_output_default);
  REQUIRE(req.outputs.size() == 2);
  CHECK(req.outputs[0].name == "y");
  CHECK(req.outputs[0].binary);
  CHECK(req.outputs[1].name == "z");
  CHECK_FALSE(req.outputs[1].binary);
  REQUIRE(req.inputs.size() == 7);
  const auto& x = input_named(req, "x").value;
  CHECK(x.type == dtype::float32);
  CHECK(x.shape == std::vector<int64_t>{2, 3});
  CHECK(values_of<float>(x) == std::vector<float>{1.5f, -2, 3, 4, 5, 6.25f});
  CHECK(values_of<int64_t>(input_named(req, "ids").value) == std::vector<int64_t>{7, -9});
  CHECK(input_named(req, "words").value.strings ==
        std::vector<std::string>{"hello", "", std::string("w\0rld", 5)});
  CHECK(values_of<uint8_t>(input_named(req, "flags").value) == std::vector<uint8_t>{1, 0, 1});
  CHECK(values_of<uint16_t>(input_named(req, "h").value) == std::vector<uint16_t>{0x3800, 0xbd00});
  CHECK(values_of<uint16_t>(input_named(req, "b").value) == std::vector<uint16_t>{0x3f80, 0xc020});
  CHECK(input_named(req, "u").value.shape == std::vector<int64_t>{2, 2});
  CHECK(values_of<uint16_t>(input_named(req, "u").value) == std::vector<uint16_t>{1, 2, 3, 65535});
}

TEST_CASE("v2 binary inputs follow the JSON header in input order, mixed with JSON inputs") {
  auto a = bytes_of(std::vector<float>{1, 2, 3, 4, 5, 6});
  auto c = bytes_of(std::vector<int32_t>{-1, 7});
  std::string header =
      R"({"inputs":[)"
      R"({"name":"a","datatype":"FP32","shape":[2,3],"parameters":{"binary_data_size":24}},)"
      R"({"name":"b","datatype":"INT64","shape":[1],"data":[5]},)"
      R"({"name":"c","datatype":"INT32","shape":[2],"parameters":{"binary_data_size":8}},)"
      R"({"name":"e","datatype":"UINT8","shape":[0],"parameters":{"binary_data_size":0}}]})";
  auto req = v2::parse_infer_request(header + a + c, header.size(), {});
  REQUIRE(req.inputs.size() == 4);
  CHECK(values_of<float>(req.inputs[0].value) == std::vector<float>{1, 2, 3, 4, 5, 6});
  CHECK(values_of<int64_t>(req.inputs[1].value) == std::vector<int64_t>{5});
  CHECK(values_of<int32_t>(req.inputs[2].value) == std::vector<int32_t>{-1, 7});
  CHECK(req.inputs[3].value.data.empty());
  CHECK(req.inputs[3].value.shape == std::vector<int64_t>{0});
}

TEST_CASE("v2 BYTES binary inputs carry a 4-byte little-endian length per element") {
  std::vector<std::string> items{"", "abc", std::string("\0\xff", 2), std::string(300, 'z')};
  auto tail = serialized_strings(items);
  std::string header = R"({"inputs":[{"name":"s","datatype":"BYTES","shape":[2,2],)"
                       R"("parameters":{"binary_data_size":)" +
                       std::to_string(tail.size()) + "}}]}";
  auto req = v2::parse_infer_request(header + tail, header.size(), {});
  CHECK(req.inputs[0].value.type == dtype::string);
  CHECK(req.inputs[0].value.strings == items);

  auto wrong_count = header;
  wrong_count.replace(wrong_count.find("[2,2]"), 5, "[5]  ");
  CHECK(parse_error(wrong_count + tail, wrong_count.size()) ==
        "binary data of input 's': 4 elements but shape [5] needs 5");
  auto cut = tail.substr(0, tail.size() - 1);
  auto cut_header = header;
  cut_header.replace(cut_header.find(std::to_string(tail.size())), 3, std::to_string(cut.size()));
  CHECK(parse_error(cut_header + cut, cut_header.size()) ==
        "binary data of input 's': element 3 is 300 bytes long but only 299 bytes are left");
}

TEST_CASE("v2 raw binary requests fill the single model input and derive its shape") {
  auto floats = bytes_of(std::vector<float>{1, 2, 3, 4, 5, 6});
  auto rows = v2::parse_infer_request(floats, 0, {{"x", dtype::float32, {-1, 3}}});
  CHECK(rows.raw_binary);
  CHECK(rows.binary_output_default);
  CHECK(rows.outputs.empty());
  REQUIRE(rows.inputs.size() == 1);
  CHECK(rows.inputs[0].name == "x");
  CHECK(rows.inputs[0].value.shape == std::vector<int64_t>{2, 3});
  CHECK(values_of<float>(rows.inputs[0].value) == std::vector<float>{1, 2, 3, 4, 5, 6});

  // Batch dim and one more variable dim: a batch of one, the other dim from the byte count.
  auto sequence = v2::parse_infer_request(floats, 0, {{"x", dtype::float32, {-1, -1}}});
  CHECK(sequence.inputs[0].value.shape == std::vector<int64_t>{1, 6});
  auto fixed = v2::parse_infer_request(floats, 0, {{"x", dtype::float32, {2, 3}}});
  CHECK(fixed.inputs[0].value.shape == std::vector<int64_t>{2, 3});
  auto empty = v2::parse_infer_request("", 0, {{"x", dtype::float32, {-1, 3}}});
  CHECK(empty.inputs[0].value.shape == std::vector<int64_t>{0, 3});

  // BYTES: the whole body is the one element.
  std::string text("any \0 bytes", 11);
  auto bytes = v2::parse_infer_request(text, 0, {{"s", dtype::string, {-1}}});
  CHECK(bytes.inputs[0].value.shape == std::vector<int64_t>{1});
  CHECK(bytes.inputs[0].value.strings == std::vector<std::string>{text});
  auto bytes_2d = v2::parse_infer_request(text, 0, {{"s", dtype::string, {-1, 1}}});
  CHECK(bytes_2d.inputs[0].value.shape == std::vector<int64_t>{1, 1});

  CHECK(parse_error(floats, 0, {{"a", dtype::float32, {-1}}, {"b", dtype::float32, {-1}}}) ==
        "a raw binary request (Inference-Header-Content-Length: 0) needs a model with "
        "exactly one input; this one has 2");
  CHECK(parse_error(floats, 0, {{"x", dtype::float32, {-1, 5}}}) ==
        "raw binary input 'x': 24 bytes do not make a FP32 tensor of dims [-1, 5] (a "
        "multiple of 20 bytes expected)");
  CHECK(parse_error(floats, 0, {{"x", dtype::float32, {4}}}) ==
        "raw binary input 'x': 24 bytes do not make a FP32 tensor of dims [4] (16 bytes "
        "expected)");
  CHECK(parse_error(floats, 0, {{"x", dtype::float32, {3, -1, -1}}}) ==
        "raw binary input 'x': cannot derive the shape from dims [3, -1, -1] (more than one "
        "variable dim)");
  CHECK(parse_error(text, 0, {{"s", dtype::string, {-1, 2}}}) ==
        "raw binary input 's': a BYTES raw input needs dims of one element (like [1] or "
        "[-1]); the model declares [-1, 2]");
}

TEST_CASE("v2 request ids are echoed only when the request has one") {
  tensor y = tensor::from<float>(dtype::float32, {1}, {2.5f});
  std::vector<v2::output> outs{{"y", &y, false}};
  auto with_id = parse_json(R"({"id":"abc \"7\"","inputs":[]})");
  CHECK(with_id.has_id);
  CHECK(with_id.id == "abc \"7\"");
  CHECK(v2::encode_infer_response("m", "1", with_id, outs).body ==
        R"({"id":"abc \"7\"","model_name":"m","model_version":"1","outputs":[)"
        R"({"name":"y","datatype":"FP32","shape":[1],"data":[2.5]}]})");
  auto without = parse_json(R"({"inputs":[]})");
  CHECK_FALSE(without.has_id);
  auto body = v2::encode_infer_response("m", "1", without, outs).body;
  CHECK(body.find("\"id\"") == std::string::npos);
  auto empty_id = parse_json(R"({"id":"","inputs":[]})");
  CHECK(empty_id.has_id);
  CHECK(v2::encode_infer_response("m", "1", empty_id, outs).body.find("\"id\"") ==
        std::string::npos); // Triton drops an empty id too
}

TEST_CASE("v2 outputs are filtered and made binary as the request asks") {
  tensor a = tensor::from<int64_t>(dtype::int64, {2}, {1, 2});
  tensor b = tensor::from<float>(dtype::float32, {1}, {0.5f});
  std::vector<std::pair<std::string, const tensor*>> model{{"a", &a}, {"b", &b}};

  auto all_json = v2::select_outputs(parse_json(R"({"inputs":[]})"), model);
  REQUIRE(all_json.size() == 2);
  CHECK(all_json[0].name == "a");
  CHECK_FALSE(all_json[0].binary);
  CHECK_FALSE(all_json[1].binary);

  auto all_binary = v2::select_outputs(
      parse_json(R"({"inputs":[],"parameters":{"binary_data_output":true}})"), model);
  CHECK(all_binary[0].binary);
  CHECK(all_binary[1].binary);

  // Named outputs take their own binary_data; binary_data_output covers only unnamed ones.
  auto named = v2::select_outputs(
      parse_json(R"({"inputs":[],"parameters":{"binary_data_output":true},)"
                 R"("outputs":[{"name":"b","parameters":{"binary_data":true}},{"name":"a"}]})"),
      model);
  REQUIRE(named.size() == 2);
  CHECK(named[0].name == "b");
  CHECK(named[0].value == &b);
  CHECK(named[0].binary);
  CHECK(named[1].name == "a");
  CHECK_FALSE(named[1].binary);

  try {
    v2::select_outputs(parse_json(R"({"inputs":[],"outputs":[{"name":"a"},{"name":"q"}]})"), model);
    FAIL("no exception");
  } catch (const serve::serve_exception& e) {
    CHECK(e.code() == serve::errc::invalid_argument);
    CHECK(std::string(e.what()) == "outputs[1].name: unknown output 'q'; the model has a, b");
  }
}

TEST_CASE("v2 replies with binary outputs give the JSON length and append the bytes in order") {
  tensor a = tensor::from<float>(dtype::float32, {2, 2}, {1, 2, 3, 4});
  tensor j = tensor::from<int32_t>(dtype::int32, {2}, {-5, 6});
  tensor s = tensor::zeros(dtype::string, {2});
  s.strings = {"hi", std::string("\0x", 2)};
  tensor none = tensor::zeros(dtype::float32, {0});
  auto req = parse_json(R"({"id":"r","inputs":[]})");
  auto r = v2::encode_infer_response(
      "m", "3", req, {{"a", &a, true}, {"j", &j, false}, {"s", &s, true}, {"none", &none, true}});
  REQUIRE(r.header_length);
  auto doc = json_part(r);
  CHECK(std::string(doc["id"].GetString()) == "r");
  CHECK(std::string(doc["model_version"].GetString()) == "3");
  const auto& outs = doc["outputs"];
  CHECK(outs[0]["parameters"]["binary_data_size"].GetUint64() == 16);
  CHECK_FALSE(outs[0].HasMember("data"));
  CHECK(outs[1]["data"][0].GetInt() == -5);
  CHECK_FALSE(outs[1].HasMember("parameters"));
  CHECK(std::string(outs[2]["datatype"].GetString()) == "BYTES");
  CHECK(outs[2]["parameters"]["binary_data_size"].GetUint64() == 4 + 2 + 4 + 2);
  CHECK(outs[3]["parameters"]["binary_data_size"].GetUint64() == 0);
  CHECK(outs[3]["shape"][0].GetInt() == 0);
  std::string tail = r.body.substr(*r.header_length);
  CHECK(tail == bytes_of(std::vector<float>{1, 2, 3, 4}) + serialized_strings(s.strings));

  // Only JSON, or binary outputs without bytes: the body is plain JSON, as Triton sends it.
  auto json_only = v2::encode_infer_response("m", "1", req, {{"j", &j, false}});
  CHECK_FALSE(json_only.header_length);
  auto empty_binary = v2::encode_infer_response("m", "1", req, {{"none", &none, true}});
  CHECK_FALSE(empty_binary.header_length);
  CHECK(json_part(empty_binary)["outputs"][0]["parameters"]["binary_data_size"].GetUint64() == 0);
}

TEST_CASE("v2 JSON replies write flat data for every datatype") {
  auto req = parse_json(R"({"inputs":[]})");
  auto reply = [&](const tensor& t) {
    auto r = v2::encode_infer_response("m", "1", req, {{"o", &t, false}});
    auto doc = json_part(r);
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    doc["outputs"][0]["data"].Accept(w);
    return std::string(buf.GetString());
  };
  CHECK(reply(tensor::from<float>(dtype::float32, {2, 2}, {0.1f, -2, 1e-7f, 3})) ==
        "[0.1,-2.0,1e-7,3.0]");
  CHECK(reply(tensor::from<double>(dtype::float64, {1}, {0.1})) == "[0.1]");
  CHECK(reply(tensor::from<uint16_t>(dtype::float16, {2}, {0x3800, 0xc000})) == "[0.5,-2.0]");
  CHECK(reply(tensor::from<uint16_t>(dtype::bfloat16, {1}, {0x3f80})) == "[1.0]");
  CHECK(reply(tensor::from<uint8_t>(dtype::boolean, {2}, {1, 0})) == "[true,false]");
  CHECK(reply(tensor::from<uint64_t>(dtype::uint64, {1}, {18446744073709551615ull})) ==
        "[18446744073709551615]");
  CHECK(reply(tensor::from<int8_t>(dtype::int8, {2}, {-128, 127})) == "[-128,127]");
  tensor s = tensor::zeros(dtype::string, {1, 1});
  s.strings = {"q\"uote"};
  CHECK(reply(s) == R"(["q\"uote"])");
}

TEST_CASE("v2 malformed requests are refused naming the field and what was expected") {
  CHECK(parse_error(one_input("FP32", "[2,3]", "[1,2,3,4,5]")) ==
        "inputs[0] ('x'): data has 5 elements but shape [2, 3] needs 6");
  CHECK(parse_error(R"({"inputs":[{"name":"a","datatype":"FP32","shape":[1],"data":[1]},)"
                    R"({"name":"x","datatype":"FP32","shape":[2,3],"data":[[1,2],[3,4,5]]}]})") ==
        "inputs[1] ('x'): data has 5 elements but shape [2, 3] needs 6");
  CHECK(parse_error(one_input("FP33", "[1]", "[1]")) ==
        "inputs[0].datatype: unknown datatype 'FP33'; expected one of BOOL, UINT8, UINT16, "
        "UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, FP32, FP64, BYTES, BF16");
  CHECK(parse_error(one_input("UINT8", "[2]", "[1,256]")) ==
        "inputs[0] ('x'): data[1] is 256; UINT8 needs integers in [0, 255]");
  CHECK(parse_error(one_input("INT8", "[1]", "[-129]")) ==
        "inputs[0] ('x'): data[0] is -129; INT8 needs integers in [-128, 127]");
  CHECK(parse_error(one_input("UINT32", "[1]", "[-1]")) ==
        "inputs[0] ('x'): data[0] is -1; UINT32 needs integers in [0, 4294967295]");
  CHECK(parse_error(one_input("INT64", "[1]", "[1.5]")) ==
        "inputs[0] ('x'): data[0] is 1.5; INT64 needs integers in [-9223372036854775808, "
        "9223372036854775807]");
  CHECK(parse_error(one_input("BOOL", "[2]", "[true,1]")) ==
        "inputs[0] ('x'): data[1] is 1; BOOL needs true or false");
  CHECK(parse_error(one_input("BYTES", "[1]", "[3]")) ==
        "inputs[0] ('x'): data[0] is 3; BYTES needs strings");
  CHECK(parse_error(one_input("FP32", "[1]", R"(["1"])")) ==
        "inputs[0] ('x'): data[0] is a string; FP32 needs numbers");
  CHECK(parse_error(one_input("FP16", "[1]", "[null]")) ==
        "inputs[0] ('x'): data[0] is null; FP16 needs numbers");
  CHECK(parse_error(one_input("FP32", "[1]", "1")) ==
        "inputs[0] ('x'): data must be an array (flat or nested), got 1");
  CHECK(parse_error(one_input("FP32", "[2,-1]", "[1]")) ==
        "inputs[0].shape: expected an array of non-negative integers, got -1");
  CHECK(parse_error(one_input("FP32", "\"2\"", "[1]")) ==
        "inputs[0].shape: expected an array of non-negative integers, got a string");

  CHECK(parse_error(R"({"inputs":[{"name":"x","shape":[1],"data":[1]}]})") ==
        "inputs[0].datatype is missing");
  CHECK(parse_error(R"({"inputs":[{"name":7,"datatype":"FP32","shape":[1],"data":[1]}]})") ==
        "inputs[0].name: expected a string, got 7");
  CHECK(parse_error(R"({"inputs":[{"name":"x","datatype":"FP32","data":[1]}]})") ==
        "inputs[0].shape is missing");
  CHECK(parse_error(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1]}]})") ==
        "inputs[0] ('x'): needs exactly one of \"data\" and parameters.binary_data_size; "
        "neither is set");
  CHECK(parse_error(R"({"inputs":{}})") == "inputs: expected an array");
  CHECK(parse_error(R"({"id":"a"})") == "inputs is missing");
  CHECK(parse_error(R"({"id":5,"inputs":[]})") == "id: expected a string, got 5");
  CHECK(parse_error(R"({"inputs":[],"parameters":[]})") == "parameters: expected an object");
  CHECK(parse_error(R"({"inputs":[],"parameters":{"binary_data_output":1}})") ==
        "parameters.binary_data_output: expected true or false, got 1");
  CHECK(
      parse_error(R"({"inputs":[],"outputs":[{"name":"y","parameters":{"binary_data":"yes"}}]})") ==
      "outputs[0].parameters.binary_data: expected true or false, got a string");
  CHECK(parse_error(R"({"inputs":[],"outputs":[{"parameters":{}}]})") ==
        "outputs[0].name is missing");
  CHECK(
      parse_error(R"({"inputs":[],"outputs":[{"name":"y","parameters":{"classification":2}}]})") ==
      "outputs[0].parameters.classification is not supported");
  CHECK(parse_error(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1],)"
                    R"("parameters":{"shared_memory_region":"r"}}]})") ==
        "inputs[0].parameters.shared_memory_region is not supported");
  CHECK(parse_error("[1]") == "request JSON: expected an object");
  CHECK(parse_error(R"({"inputs":[)").find("request JSON: ") == 0);
  // Unknown fields and parameters are fine.
  CHECK(parse_error(R"({"inputs":[],"parameters":{"priority":1,"custom":{"a":1}},"extra":[]})") ==
        "");
}

TEST_CASE("v2 binary data errors name the input and the byte counts") {
  std::string x =
      R"({"name":"x","datatype":"FP32","shape":[2,3],"parameters":{"binary_data_size":20}})";
  std::string header = R"({"inputs":[)" + x + "]}";
  CHECK(parse_error(header + std::string(20, '\0'), header.size()) ==
        "binary data of input 'x': binary_data_size 20 but FP32 [2, 3] needs 24 bytes");

  std::string two =
      R"({"inputs":[{"name":"x","datatype":"FP32","shape":[2],"parameters":{"binary_data_size":8}},)"
      R"({"name":"y","datatype":"FP32","shape":[2,3],"parameters":{"binary_data_size":24}}]})";
  CHECK(parse_error(two + std::string(16, '\0'), two.size()) ==
        "binary data ends before input 'y' (needs 24 bytes, 8 left)");
  CHECK(parse_error(two + std::string(40, '\0'), two.size()) ==
        "8 bytes of binary data follow the last binary input");
  CHECK(parse_error(two, std::nullopt) ==
        "binary data ends before input 'x' (needs 8 bytes, 0 left); the "
        "Inference-Header-Content-Length header was not sent");
  CHECK(parse_error(std::string(120, ' '), 500) ==
        "Inference-Header-Content-Length 500 is larger than the body (120 bytes)");
  CHECK(parse_error(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1],)"
                    R"("parameters":{"binary_data_size":4}}]})") ==
        "inputs[0] ('x'): needs exactly one of \"data\" and parameters.binary_data_size; "
        "both are set");
  CHECK(parse_error(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1],)"
                    R"("parameters":{"binary_data_size":-4}}]})") ==
        "inputs[0].parameters.binary_data_size: expected a non-negative integer, got -4");
}

TEST_CASE("v2 shapes too large for memory are refused before anything is allocated") {
  std::string fp64 = R"({"inputs":[{"name":"x","datatype":"FP64","shape":[2305843009213693952],)"
                     R"("parameters":{"binary_data_size":0}}]})";
  CHECK(parse_error(fp64, fp64.size()) ==
        "inputs[0] ('x'): shape [2305843009213693952] is too large for FP64");
  std::string bytes = R"({"inputs":[{"name":"s","datatype":"BYTES","shape":[2305843009213693952],)"
                      R"("parameters":{"binary_data_size":0}}]})";
  CHECK(parse_error(bytes, bytes.size()) ==
        "binary data of input 's': 0 elements but shape [2305843009213693952] needs "
        "2305843009213693952");
  CHECK(parse_error(one_input("INT8", "[4611686018427387904,4]", "[]")) ==
        "inputs[0].shape: [4611686018427387904, 4] has too many elements");
}

TEST_CASE("v2 error bodies are JSON with the message escaped") {
  CHECK(v2::error_body("bad \"x\"\n") == R"({"error":"bad \"x\"\n"})");
}

TEST_CASE("v2 model metadata lists tensors with variable dims as -1") {
  CHECK(v2::model_metadata_json("iris", {"1"}, "onnxruntime_onnx", {{"x", dtype::float32, {-1, 4}}},
                                {{"label", dtype::int64, {-1}}, {"p", dtype::string, {-1, 3}}}) ==
        R"({"name":"iris","versions":["1"],"platform":"onnxruntime_onnx",)"
        R"("inputs":[{"name":"x","datatype":"FP32","shape":[-1,4]}],)"
        R"("outputs":[{"name":"label","datatype":"INT64","shape":[-1]},)"
        R"({"name":"p","datatype":"BYTES","shape":[-1,3]}]})");
}

TEST_CASE("v2 binary inputs can be borrowed: type and shape parsed, the bytes left in the body") {
  auto a = bytes_of(std::vector<float>{1, 2, 3, 4, 5, 6});
  auto s = serialized_strings({"x"});
  std::string header =
      R"({"inputs":[)"
      R"({"name":"a","datatype":"FP32","shape":[2,3],"parameters":{"binary_data_size":24}},)"
      R"({"name":"b","datatype":"INT64","shape":[1],"data":[5]},)"
      R"({"name":"s","datatype":"BYTES","shape":[1],"parameters":{"binary_data_size":5}}]})";
  std::string body = header + a + s;
  auto req = v2::parse_infer_request(body, header.size(), {}, /*borrow_binary=*/true);
  REQUIRE(req.inputs.size() == 3);
  const auto& borrowed = req.inputs[0];
  CHECK(borrowed.value.type == dtype::float32);
  CHECK(borrowed.value.shape == std::vector<int64_t>{2, 3});
  CHECK(borrowed.value.data.empty());
  CHECK(borrowed.bytes.data() == body.data() + header.size()); // a view into the body
  CHECK(borrowed.bytes.size() == 24);
  // JSON data and BYTES elements are parsed as before.
  CHECK(req.inputs[1].bytes.empty());
  CHECK(values_of<int64_t>(req.inputs[1].value) == std::vector<int64_t>{5});
  CHECK(req.inputs[2].bytes.empty());
  CHECK(req.inputs[2].value.strings == std::vector<std::string>{"x"});
  // The same checks apply: a wrong size is refused.
  auto bad = header;
  bad.replace(bad.find("24"), 2, "20");
  CHECK_THROWS(v2::parse_infer_request(bad + a.substr(0, 20) + s, bad.size(), {}, true));
}
