// artifact_locator: recorded artifact locations to local paths, and stores moved after MLflow
// wrote them (a recorded path that exists always wins over a relocation).
#include "libserve/registry/artifact_locator.hpp"

#include <string>

#include <doctest/doctest.h>

#include "mlflow_fixture.hpp"

using namespace serve;
using namespace serve::registry;
using namespace serve::registry::testing;

TEST_CASE("mlflow registry: a recorded location that exists is used as it is") {
  temp_dir tmp;
  auto old_root = tmp.path() / "old" / "mlruns";
  auto new_root = tmp.path() / "new" / "mlruns";
  fs::create_directories(old_root / "1" / "run" / "artifacts");
  fs::create_directories(new_root / "1" / "run" / "artifacts");
  artifact_locator locator(tmp.path().string(), {{old_root.string(), new_root.string()}});
  auto location = "file://" + (old_root / "1" / "run" / "artifacts").string();
  CHECK(locator.find(location, "", "t") == (old_root / "1" / "run" / "artifacts").string());
}

TEST_CASE("mlflow registry: a missing recorded location is found under the moved root") {
  temp_dir tmp;
  auto new_root = tmp.path() / "mlruns";
  fs::create_directories(new_root / "1" / "models" / "m-1" / "artifacts");
  artifact_locator locator(tmp.path().string(), {{"/gone/mlruns", new_root.string()}});
  CHECK(locator.find("file:///gone/mlruns/1/models/m-1/artifacts", "", "t") ==
        (new_root / "1" / "models" / "m-1" / "artifacts").string());
  // Plain absolute paths too (SQL stores), and a relative part inside.
  CHECK(locator.find("/gone/mlruns/1/models", "m-1/artifacts", "t") ==
        (new_root / "1" / "models" / "m-1" / "artifacts").string());
  // A path that only shares a prefix string with the old root is not under it.
  CHECK_FALSE(locator.find("/gone/mlruns2/1/models", "", "t").has_value());
  auto message = error_of([&] { locator.require("/gone/mlruns/1/models/m-2", "", "models:/x/1"); },
                          errc::not_found);
  CHECK(message == "models:/x/1: artifacts not found at /gone/mlruns/1/models/m-2 nor at " +
                       (new_root / "1" / "models" / "m-2").string() + " (where the store is now)");
}

TEST_CASE("mlflow registry: relative and %-escaped recorded locations are local paths") {
  temp_dir tmp;
  fs::create_directories(tmp.path() / "my models" / "a");
  artifact_locator locator(tmp.path().string(), {});
  CHECK(locator.find("my models/a", "", "t") == (tmp.path() / "my models" / "a").string());
  CHECK(locator.find("file://" + tmp.path().string() + "/my%20models/a", "", "t") ==
        (tmp.path() / "my models" / "a").string());
  CHECK(locator.recorded_path("./x/../y/", "t") == (tmp.path() / "y").string());
}

TEST_CASE("mlflow registry: artifact locations that are not local are refused") {
  artifact_locator locator("/", {});
  CHECK(error_of([&] { locator.find("mlflow-artifacts:/1/x", "", "models:/a/1"); },
                 errc::invalid_argument) ==
        "models:/a/1: the artifacts are on a tracking server (mlflow-artifacts:/1/x); open the "
        "registry through the server's http(s):// URI");
  CHECK(
      error_of([&] { locator.find("s3://bucket/x", "", "models:/a/1"); }, errc::invalid_argument) ==
      "models:/a/1: the artifacts at s3://bucket/x are not local; only local paths and file: "
      "URIs are read");
  error_of([&] { locator.find("", "", "models:/a/1"); }, errc::invalid_argument);
}

TEST_CASE("mlflow registry: an experiment's default location shows the store's artifact root") {
  CHECK(artifact_locator::recorded_root("file:///home/ann/mlruns/5", "5") == "/home/ann/mlruns");
  CHECK(artifact_locator::recorded_root("/srv/mlruns/12/", "12") == "/srv/mlruns");
  CHECK_FALSE(artifact_locator::recorded_root("/srv/custom-place", "12").has_value());
  CHECK_FALSE(artifact_locator::recorded_root("/srv/112", "12").has_value());
  CHECK_FALSE(artifact_locator::recorded_root("s3://bucket/12", "12").has_value());
  CHECK_FALSE(artifact_locator::recorded_root("mlruns/12", "12").has_value());
  CHECK(join_path("/a/b/", "c/./d") == "/a/b/c/d");
}
