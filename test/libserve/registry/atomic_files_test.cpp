// write_file_atomically, copy_tree_synced and staging_dir: what a reader may see at any time.
#include "libserve/registry/atomic_files.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "mlflow_fixture.hpp"

using namespace serve;
using namespace serve::registry;
using namespace serve::registry::testing;

namespace {

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& entry : fs::recursive_directory_iterator(dir))
    out.push_back(entry.path().lexically_relative(dir).string());
  std::sort(out.begin(), out.end());
  return out;
}

} // namespace

TEST_CASE("write_file_atomically replaces a file and leaves no temporary file") {
  temp_dir tmp;
  auto path = tmp.path() / "meta.yaml";
  write_file_atomically(path.string(), "a: 1\n");
  write_file_atomically(path.string(), "a: 2\n");
  CHECK(read_text(path) == "a: 2\n");
  CHECK(names_in(tmp.path()) == std::vector<std::string>{"meta.yaml"});
  CHECK((fs::status(path).permissions() & fs::perms::others_read) != fs::perms::none);
}

TEST_CASE("a file for a folder that readers list whole is staged in another folder") {
  temp_dir tmp;
  fs::create_directories(tmp.path() / "aliases");
  write_file_atomically((tmp.path() / "aliases" / "prod").string(), "3", tmp.path().string());
  CHECK(read_text(tmp.path() / "aliases" / "prod") == "3");
  CHECK(names_in(tmp.path()) == std::vector<std::string>{"aliases", "aliases/prod"});
}

TEST_CASE("a staging folder appears under its final name whole, or not at all") {
  temp_dir tmp;
  write_text(tmp.path() / "src" / "model.onnx", "onnx bytes");
  write_text(tmp.path() / "src" / "sub" / "labels.json", "[]");
  {
    staging_dir stage(tmp.path().string(), "m-1");
    CHECK(fs::path(stage.path()).filename().string().rfind(".m-1.tmp-", 0) == 0);
    CHECK(copy_tree_synced((tmp.path() / "src").string(), stage.path()) == 12);
    CHECK(stage.move_to((tmp.path() / "m-1").string()));
  }
  CHECK(read_text(tmp.path() / "m-1" / "sub" / "labels.json") == "[]");
  {
    staging_dir stage(tmp.path().string(), "m-1");
    CHECK_FALSE(stage.move_to((tmp.path() / "m-1").string())); // taken: nothing replaced
  }
  {
    staging_dir abandoned(tmp.path().string(), "m-2"); // an error before move_to
  }
  CHECK(names_in(tmp.path()) ==
        std::vector<std::string>{"m-1", "m-1/model.onnx", "m-1/sub", "m-1/sub/labels.json", "src",
                                 "src/model.onnx", "src/sub", "src/sub/labels.json"});
}
