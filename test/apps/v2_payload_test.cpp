// v2 model metadata parsing and the generated JSON and binary inference payloads.
#include <doctest/doctest.h>

#include <cstring>
#include <string>

#include <rapidjson/document.h>

#include "apps/actorserve/v2_payload.hpp"

using namespace serve::bench;

namespace {

v2_model two_input_model() {
  v2_model m;
  m.inputs = {{"x", "FP32", {2, 3}}, {"s", "BYTES", {2}}, {"h", "FP16", {3}}, {"b", "BOOL", {4}}};
  m.outputs = {"y"};
  return m;
}

} // namespace

TEST_CASE("metadata inputs keep their datatype and read variable dimensions as 1") {
  v2_model m;
  auto error = parse_v2_metadata(R"({"name": "m",
      "inputs": [{"name": "a", "datatype": "INT64", "shape": [-1, 4]}],
      "outputs": [{"name": "out", "datatype": "FP32", "shape": [-1]}]})",
                                 m);
  CHECK(error.empty());
  REQUIRE(m.inputs.size() == 1);
  CHECK(m.inputs[0].name == "a");
  CHECK(m.inputs[0].datatype == "INT64");
  CHECK(m.inputs[0].shape == std::vector<int64_t>{1, 4});
  CHECK(m.outputs == std::vector<std::string>{"out"});
}

TEST_CASE("metadata that a payload cannot be made from is rejected saying why") {
  v2_model m;
  CHECK(parse_v2_metadata("not json", m).find("not a JSON object") != std::string::npos);
  CHECK(parse_v2_metadata(R"({"inputs": []})", m).find("no \"inputs\"") != std::string::npos);
  CHECK(parse_v2_metadata(R"({"inputs": [{"name": "a", "datatype": "FP8", "shape": [1]}]})", m)
            .find("input 'a' has datatype FP8") != std::string::npos);
  CHECK(parse_v2_metadata(R"({"inputs": [{"name": "a", "datatype": "FP32"}]})", m)
            .find("lacks name, datatype or shape") != std::string::npos);
}

TEST_CASE("a JSON payload carries one value per element of each input") {
  v2_payload_generator gen(1);
  auto body = gen.json_body(two_input_model());
  rapidjson::Document doc;
  REQUIRE_FALSE(doc.Parse(body.c_str()).HasParseError());
  auto inputs = doc["inputs"].GetArray();
  REQUIRE(inputs.Size() == 4);
  CHECK(std::string(inputs[0]["name"].GetString()) == "x");
  CHECK(inputs[0]["data"].Size() == 6);
  CHECK(inputs[0]["data"][0].IsDouble());
  CHECK(inputs[1]["data"].Size() == 2);
  CHECK(inputs[1]["data"][0].GetStringLength() == 8);
  CHECK(inputs[3]["data"][0].IsBool());
}

TEST_CASE("a binary payload's header length points at raw tensors of the declared sizes") {
  v2_payload_generator gen(1);
  size_t header_length = 0;
  auto body = gen.binary_body(two_input_model(), header_length);
  rapidjson::Document doc;
  REQUIRE_FALSE(doc.Parse(body.substr(0, header_length).c_str()).HasParseError());
  // FP32 2x3, BYTES 2 x (4-byte length + 8 letters), FP16 3, BOOL 4.
  const uint64_t sizes[] = {24, 24, 6, 4};
  uint64_t raw = 0;
  for (size_t i = 0; i < 4; ++i) {
    CHECK(doc["inputs"][i]["parameters"]["binary_data_size"].GetUint64() == sizes[i]);
    raw += sizes[i];
  }
  CHECK(body.size() == header_length + raw);
  CHECK(doc["outputs"][0]["parameters"]["binary_data"].GetBool());
  CHECK(doc["parameters"]["binary_data_output"].GetBool());
  uint32_t first_string_length = 0;
  std::memcpy(&first_string_length, body.data() + header_length + 24, 4);
  CHECK(first_string_length == 8);
}

TEST_CASE("the same seed gives the same payloads and successive payloads differ") {
  v2_payload_generator a(7), b(7);
  auto first = a.json_body(two_input_model());
  CHECK(first == b.json_body(two_input_model()));
  CHECK(a.json_body(two_input_model()) != first);
}

TEST_CASE("element sizes follow the v2 datatypes") {
  CHECK(v2_element_size("BOOL") == 1);
  CHECK(v2_element_size("UINT16") == 2);
  CHECK(v2_element_size("INT64") == 8);
  CHECK(v2_element_size("BF16") == 2);
  CHECK(v2_element_size("BYTES") == 0);
  CHECK(v2_element_size("STRING") == -1);
  CHECK(element_count({"x", "FP32", {2, 3, 4}}) == 24);
}
