// yaml_value / to_yaml: the meta.yaml and MLmodel text MLflow's PyYAML writes, read back by
// yaml-cpp to the same values.
#include "libserve/registry/yaml_writer.hpp"

#include <string>

#include <doctest/doctest.h>

using namespace serve::registry;

TEST_CASE("strings stay plain only where YAML reads them back as the same string") {
  CHECK(yaml_scalar_text("iris") == "iris");
  CHECK(yaml_scalar_text("models:/m-8d24") == "models:/m-8d24");
  CHECK(yaml_scalar_text("file:///tmp/x/mlruns/0") == "file:///tmp/x/mlruns/0");
  CHECK(yaml_scalar_text("None") == "None");
  CHECK(yaml_scalar_text("0") == "'0'");
  CHECK(yaml_scalar_text("1.5") == "'1.5'");
  CHECK(yaml_scalar_text("yes") == "'yes'");
  CHECK(yaml_scalar_text("Null") == "'Null'");
  CHECK(yaml_scalar_text("2026-11-25 03:15:27.945102") == "'2026-11-25 03:15:27.945102'");
  CHECK(yaml_scalar_text("a: b") == "'a: b'");
  CHECK(yaml_scalar_text("it's") == "'it''s'");
  CHECK(yaml_scalar_text("") == "''");
  CHECK(yaml_scalar_text("two\nlines") == "\"two\\nlines\"");
}

TEST_CASE("mappings are written with sorted keys and lists at their key's indentation") {
  auto onnx = yaml_value::map();
  onnx.set("providers", yaml_value::list().push(yaml_value::text("CPUExecutionProvider")));
  onnx.set("data", yaml_value::text("model.onnx"));
  onnx.set("code", yaml_value::null());
  auto doc = yaml_value::map();
  doc.set("flavors", yaml_value::map().set("onnx", std::move(onnx)));
  doc.set("aliases", yaml_value::map());
  doc.set("version", yaml_value::integer(3));
  CHECK(to_yaml(doc) == "aliases: {}\n"
                        "flavors:\n"
                        "  onnx:\n"
                        "    code: null\n"
                        "    data: model.onnx\n"
                        "    providers:\n"
                        "    - CPUExecutionProvider\n"
                        "version: 3\n");
}

TEST_CASE("a file read with yaml-cpp is written back with every value's type kept") {
  const std::string text = "a: 1\nb: '1'\nc: null\nd: text\ne:\n  x: 'yes'\nf:\n- 1\n- two\n"
                           "g: \"it's: \\\"q\\\"\"\n";
  auto node = YAML::Load(text);
  auto again = YAML::Load(to_yaml(yaml_value::from_node(node)));
  CHECK(again["a"].Tag() == "?");
  CHECK(again["a"].as<int>() == 1);
  CHECK(again["b"].Tag() == "!");
  CHECK(again["b"].as<std::string>() == "1");
  CHECK(again["c"].IsNull());
  CHECK(again["d"].as<std::string>() == "text");
  CHECK(again["e"]["x"].as<std::string>() == "yes");
  CHECK(again["e"]["x"].Tag() == "!");
  CHECK(again["f"].size() == 2);
  CHECK(again["f"][1].as<std::string>() == "two");
  CHECK(again["g"].as<std::string>() == "it's: \"q\"");
}
