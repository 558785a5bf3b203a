// model_uri::parse: every form MLflow accepts, and the refusals (names or paths that would
// leave a store, empty parts, unsupported schemes), each naming the URI.
#include "libserve/registry/model_uri.hpp"

#include <string>

#include <doctest/doctest.h>

#include "mlflow_fixture.hpp"

using namespace serve;
using namespace serve::registry;
using serve::registry::testing::error_of;

namespace {

std::string refusal(const std::string& text) {
  return error_of([&] { model_uri::parse(text); }, errc::invalid_argument);
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("model uri: models:/NAME/N names a version") {
  auto uri = model_uri::parse("models:/iris/3");
  CHECK(uri.kind == model_uri_kind::version);
  CHECK(uri.name == "iris");
  CHECK(uri.version == 3);
  CHECK(uri.text == "models:/iris/3");
  CHECK(uri.needs_registry());
  CHECK(model_uri::parse("Models:/my model.v2/12").name == "my model.v2");
}

TEST_CASE("model uri: latest in any case, and @latest, name the highest version") {
  for (const char* text : {"models:/iris/latest", "models:/iris/Latest", "models:/iris@latest"}) {
    INFO(text);
    auto uri = model_uri::parse(text);
    CHECK(uri.kind == model_uri_kind::latest);
    CHECK(uri.name == "iris");
  }
}

TEST_CASE("model uri: stages are matched case-insensitively and spelled canonically") {
  auto uri = model_uri::parse("models:/iris/production");
  CHECK(uri.kind == model_uri_kind::stage);
  CHECK(uri.stage == "Production");
  CHECK(model_uri::parse("models:/iris/STAGING").stage == "Staging");
  CHECK(model_uri::parse("models:/iris/None").stage == "None");
  CHECK(model_uri::parse("models:/iris/archived").stage == "Archived");
  CHECK(contains(refusal("models:/iris/Prod"),
                 "'Prod' is neither a version number, 'latest' nor a stage"));
}

TEST_CASE("model uri: models:/NAME@ALIAS names an alias") {
  auto uri = model_uri::parse("models:/iris@production");
  CHECK(uri.kind == model_uri_kind::alias);
  CHECK(uri.name == "iris");
  CHECK(uri.alias == "production");
  // The last '@' separates the alias, as in MLflow.
  CHECK(model_uri::parse("models:/team@iris@champion-2").name == "team@iris");
  CHECK(contains(refusal("models:/iris@"), "the alias after '@' is empty"));
  CHECK(contains(refusal("models:/iris@pro.d"), "not an MLflow alias name"));
}

TEST_CASE("model uri: models:/m-<hex> names an MLflow 3 logged model") {
  auto uri = model_uri::parse("models:/m-58adfe174ef44694a8a355baa93a8b9e");
  CHECK(uri.kind == model_uri_kind::logged_model);
  CHECK(uri.model_id == "m-58adfe174ef44694a8a355baa93a8b9e");
  // A bare name is neither a version nor a logged model.
  CHECK(contains(refusal("models:/iris"), "'iris' alone names no version"));
}

TEST_CASE("model uri: runs:/RUN_ID/PATH names a path in a run's artifacts") {
  auto uri = model_uri::parse("runs:/d7af82806f88449b8045eafadfa371ee/model/MLmodel");
  CHECK(uri.kind == model_uri_kind::run);
  CHECK(uri.run_id == "d7af82806f88449b8045eafadfa371ee");
  CHECK(uri.artifact_path == "model/MLmodel");
  CHECK(model_uri::parse("runs:/abc123/model/").artifact_path == "model");
  CHECK(model_uri::parse("runs:/abc123").artifact_path.empty());
}

TEST_CASE("model uri: local paths and file: URIs are local paths") {
  auto uri = model_uri::parse("models/iris");
  CHECK(uri.kind == model_uri_kind::local_path);
  CHECK(uri.path == "models/iris");
  CHECK_FALSE(uri.needs_registry());
  CHECK(model_uri::parse("/srv/models/iris/model.onnx").path == "/srv/models/iris/model.onnx");
  CHECK(model_uri::parse("file:///srv/my%20models/iris").path == "/srv/my models/iris");
  CHECK(model_uri::parse("file://localhost/srv/iris").path == "/srv/iris");
  CHECK(model_uri::parse("file:/srv/iris").path == "/srv/iris");
  CHECK(contains(refusal("file://otherhost/srv/iris"), "only local files"));
  CHECK(contains(refusal("file:///srv/%zz"), "malformed %-escape"));
}

TEST_CASE("model uri: names and artifact paths that would leave the store are refused") {
  CHECK(refusal("models:/../1") ==
        "models:/../1: '..' is not a registered model name (it would leave the registry)");
  CHECK(contains(refusal("models:/./latest"), "'.' is not a registered model name"));
  CHECK(contains(refusal("models:/..@production"), "'..' is not a registered model name"));
  CHECK(contains(refusal("models:/iris/../../1"), "too many '/' parts"));
  CHECK(refusal("runs:/abc123/../../../etc/passwd") ==
        "runs:/abc123/../../../etc/passwd: the artifact path '../../../etc/passwd' has a '..' "
        "segment (paths must stay inside the run's artifacts)");
  CHECK(contains(refusal("runs:/abc123/model/../../x"), "has a '..' segment"));
  CHECK(contains(refusal("runs:/abc123/./model"), "has a '.' segment"));
  CHECK(contains(refusal("runs:/abc123//etc/passwd"),
                 "has an empty segment (absolute paths are refused)"));
  CHECK(contains(refusal("runs://etc/passwd"), "a run id right after runs:/"));
  CHECK(contains(refusal("runs:/../model"), "'..' is not an MLflow run id"));
}

TEST_CASE("model uri: empty parts and malformed registry URIs are refused with the forms") {
  CHECK(contains(refusal(""), "model uri is empty"));
  CHECK(contains(refusal("models:/"), "nothing after models:/"));
  CHECK(contains(refusal("models:/iris/"), "nothing after 'iris/'"));
  CHECK(contains(refusal("models:/ /1"), "the registered model name is empty"));
  CHECK(contains(refusal("models:iris/1"), "expected 'models:/'"));
  CHECK(contains(refusal("models://host/iris/1"), "a host after models:// is not supported"));
  CHECK(contains(refusal("models:/a:b/1"), "cannot contain ':'"));
  CHECK(contains(refusal("models:/iris/99999999999999999999"), "out of range"));
  auto forms = refusal("models:/a/b/c");
  CHECK(contains(forms, "models:/NAME@ALIAS"));
  CHECK(contains(forms, "runs:/RUN_ID/PATH"));
}

TEST_CASE("model uri: other schemes are refused, tracking-server artifacts with a hint") {
  CHECK(contains(refusal("s3://bucket/model"), "scheme 's3:' is not supported"));
  CHECK(contains(refusal("http://localhost:5000/model"), "scheme 'http:' is not supported"));
  CHECK(contains(refusal("mlflow-artifacts:/1/models/m-1/artifacts"),
                 "give the models:/ or runs:/ URI and the server as registry_uri"));
}

TEST_CASE("model uri: check_model_name applies the same rules to a name given alone") {
  check_model_name("iris");
  error_of([] { check_model_name(".."); }, errc::invalid_argument);
  error_of([] { check_model_name("a/b"); }, errc::invalid_argument);
  error_of([] { check_model_name(""); }, errc::invalid_argument);
  CHECK(canonical_stage("pRoDuCtIoN") == "Production");
  CHECK(canonical_stage("Deleted_Internal").empty());
}
