// The JSON payloads of model deployments: a body goes through the iris model deployment (named
// features and labels) or the PyTorch MLP, at "/" (inputs/instances) or "/invocations"
// (MLflow's dataframe forms), as it would arrive over HTTP; the first byte chooses which. The
// same body is also read as a tensor of every dtype. A reply must be valid UTF-8, and JSON when
// it says so.
#include <cstdlib>
#include <memory>

#include <rapidjson/document.h>

#include "fuzz_support.hpp"
#include "libserve/deployment.hpp"
#include "libserve/json.hpp"
#include "libserve/model_deployment.hpp"
#include "libserve/payload.hpp"

using namespace serve;

namespace {

std::unique_ptr<deployment> load(const std::string& model_json) {
  static std::vector<std::unique_ptr<rapidjson::Document>> configs; // outlive the deployments
  configs.push_back(std::make_unique<rapidjson::Document>());
  if (parse_json(*configs.back(), model_json))
    std::abort();
  deployment_context ctx;
  ctx.application = "fuzz";
  ctx.deployment = "model";
  ctx.replica_id = "fuzz#model#0";
  ctx.model_config = configs.back().get();
  return make_model_deployment(ctx);
}

deployment& model(bool iris) {
  static const std::string root = ACTORSERVE_SOURCE_DIR;
  static auto iris_model = load(
    R"({"uri": ")" + root + R"(/apps/examples/models/iris", "labels": ")" + root
    + R"(/apps/examples/models/iris/labels.json", "features": ["sepal length", "sepal width",
       "petal length", "petal width"]})");
  static auto mlp_model
    = load(R"({"uri": ")" + root + R"(/test/fixtures/models/torch_mlp"})");
  return iris ? *iris_model : *mlp_model;
}

constexpr dtype every_dtype[] = {dtype::float32, dtype::uint8,   dtype::int8,    dtype::uint16,
                                 dtype::int16,   dtype::int32,   dtype::int64,   dtype::string,
                                 dtype::boolean, dtype::float16, dtype::float64, dtype::uint32,
                                 dtype::uint64,  dtype::bfloat16};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0)
    return 0;
  request req;
  req.method = "POST";
  req.path = data[0] & 2 ? "/invocations" : "/";
  req.body.assign(fuzz::as_text(data + 1, size - 1));
  fuzz::refusing([&] {
    model(data[0] & 1).handle(req).subscribe([](response* r, const error_info* e) {
      if (r && r->error) // a request failed within its batch
        return;
      if (r && (!is_valid_utf8(r->body)
                || (r->content_type == "application/json" && [&] {
                     rapidjson::Document reply;
                     return bool(parse_json(reply, r->body));
                   }())))
        std::abort();
      if (e && !is_valid_utf8(printable_utf8(e->message)))
        std::abort();
    });
  });
  rapidjson::Document doc;
  if (!parse_json(doc, req.body))
    fuzz::refusing([&] {
      auto t = tensor_from_json(doc, every_dtype[(data[0] >> 2) % std::size(every_dtype)], "x");
      (void)t;
    });
  return 0;
}
