#include "libserve/device_selection.hpp"

namespace serve {

namespace {

constexpr int max_device_index = 9999;

std::string quoted(const std::string& text) {
  return "\"" + text + "\"";
}

std::string devices_text(int count) {
  return std::to_string(count) + (count == 1 ? " CUDA device" : " CUDA devices");
}

device_choice on_cpu(std::string reason) {
  return device_choice{"cpu", -1, std::move(reason), ""};
}

device_choice on_gpu(int index, std::string reason) {
  return device_choice{"cuda:" + std::to_string(index), index, std::move(reason), ""};
}

device_choice refused(std::string error) {
  return device_choice{"", -1, "", std::move(error)};
}

} // namespace

std::optional<device_request> parse_device_request(const std::string& text) {
  if (text == "cpu")
    return device_request{device_request::kind::cpu, -1};
  if (text == "auto")
    return device_request{device_request::kind::auto_select, -1};
  if (text == "cuda")
    return device_request{device_request::kind::cuda_any, -1};
  const std::string prefix = "cuda:";
  if (text.rfind(prefix, 0) != 0 || text.size() == prefix.size() || text.size() > prefix.size() + 4)
    return std::nullopt;
  int index = 0;
  for (size_t i = prefix.size(); i < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9')
      return std::nullopt;
    index = index * 10 + (text[i] - '0');
  }
  if (index > max_device_index)
    return std::nullopt;
  return device_request{device_request::kind::cuda_index, index};
}

bool is_known_precision(const std::string& text) {
  return text == "tf32" || text == "fp32" || text == "fp16" || text == "bf16";
}

device_choice select_device(const device_selection_input& in) {
  using kind = device_request::kind;
  const int count = in.devices.device_count;
  if (in.request.type == kind::cpu)
    return on_cpu("requested");
  if (in.request.type == kind::auto_select) {
    if (count <= 0)
      return on_cpu(in.devices.reason + ": using CPU");
    if (!in.graph_unsupported.empty())
      return on_cpu(in.graph_unsupported + ": using CPU");
    const int index = static_cast<int>(in.replica_index % static_cast<size_t>(count));
    return on_gpu(index, "auto: " + devices_text(count) + " usable; replicas spread round-robin");
  }
  const std::string asked = "device " + quoted(in.request_text) + " requested, but ";
  if (count <= 0)
    return refused(asked + "no CUDA device is usable: " + in.devices.reason);
  if (!in.graph_unsupported.empty())
    return refused(asked + "the model cannot run on the GPU: " + in.graph_unsupported);
  if (in.request.type == kind::cuda_any) {
    const int index = static_cast<int>(in.replica_index % static_cast<size_t>(count));
    return on_gpu(index, "cuda: " + devices_text(count) + "; replicas spread round-robin");
  }
  if (in.request.index >= count)
    return refused(asked + "this machine has " + devices_text(count) + " (cuda:0"
                   + (count > 1 ? "..cuda:" + std::to_string(count - 1) : std::string()) + ")");
  return on_gpu(in.request.index, "requested");
}

} // namespace serve
