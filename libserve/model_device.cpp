#include "libserve/model_device.hpp"

#include <cstdio>

#include "libserve/future.hpp"

namespace serve {

model_device::model_device(const deployment_context& ctx,
                           std::shared_ptr<const onnx_ir::onnx_model> model)
  : model_device(ctx, model,
                 parse_device_request(ctx.device).value_or(device_request{}).type ==
                     device_request::kind::cpu
                   ? kernels::cuda::device_query_result{} // "cpu" never asks the CUDA runtime
                   : kernels::cuda::query_devices()) {}

model_device::model_device(const deployment_context& ctx,
                           std::shared_ptr<const onnx_ir::onnx_model> model,
                           const kernels::cuda::device_query_result& query)
  : model_(std::move(model)), precision_(ctx.precision) {
  auto request = parse_device_request(ctx.device);
  if (!request)
    throw serve_exception(errc::invalid_argument, "device must be " +
                                                    std::string(device_request_syntax) +
                                                    "; was \"" + ctx.device + "\"");
  device_selection_input in;
  in.request = *request;
  in.request_text = ctx.device;
  in.devices = query;
  in.replica_index = ctx.replica_index;
  std::shared_ptr<const onnx_ir::gpu_plan> plan;
  if (request->type != device_request::kind::cpu) {
    auto compiled = onnx_ir::compile_gpu_plan(*model_);
    in.graph_unsupported = compiled.unsupported;
    if (compiled.plan)
      plan = std::make_shared<const onnx_ir::gpu_plan>(std::move(*compiled.plan));
  }
  choice_ = select_device(in);
  if (!choice_.error.empty())
    throw serve_exception(errc::invalid_argument, choice_.error);
  if (choice_.on_gpu()) {
    try {
      gpu_ = onnx_ir::make_gpu_executor(plan, {choice_.cuda_index, precision_});
    } catch (...) {
      auto err = current_exception_info();
      if (request->type != device_request::kind::auto_select)
        throw serve_exception(errc::invalid_argument, "device \"" + ctx.device + "\": setting up "
                                                        + choice_.device + " failed: " + err.message);
      choice_ = device_choice{"cpu", -1,
                              "setting up " + choice_.device + " failed (" + err.message +
                                "): using CPU", ""};
    }
  }
  if (request->type != device_request::kind::cpu)
    std::fprintf(stderr, "[actorserve] replica %s: device %s (%s)\n", ctx.replica_id.c_str(),
                 choice_.device.c_str(), choice_.reason.c_str());
}

std::vector<onnx_ir::value> model_device::run(const std::map<std::string, tensor>& feed) const {
  if (!gpu_)
    return model_->run(feed);
  const std::string& input = gpu_->plan().input_name;
  auto in = feed.find(input);
  if (in == feed.end() || feed.size() != 1)
    throw serve_exception(errc::invalid_argument, "the model takes exactly one input, \"" + input +
                                                    "\"");
  if (in->second.type != dtype::float32)
    throw serve_exception(errc::invalid_argument, "input \"" + input + "\": expected float32, got " +
                                                    dtype_name(in->second.type));
  return gpu_->run(in->second);
}

void model_device::describe(json_writer& w) const {
  w.Key("device");
  w.String(choice_.device.c_str());
  w.Key("device_reason");
  w.String(choice_.reason.c_str());
  if (!gpu_)
    return;
  w.Key("precision");
  w.String(precision_.c_str());
  w.Key("gpu_plan");
  w.String(gpu_->plan().summary().c_str());
}

} // namespace serve
