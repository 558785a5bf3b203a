// onnx_model (see model.hpp): load = parse, fuse, sort, fold constants, compile; run = check
// the inputs, then execute the plan over a per-call vector of value slots.
//
// Every named value gets a slot number at load time. A run allocates one vector of slots; the
// constants' slots point at values the model owns (never copied per run), user inputs and node
// outputs live in the run's own slots and are freed after their last reader.
#include "libserve/onnx/model.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <queue>
#include <set>
#include <sstream>

#include "libserve/future.hpp"
#include "libserve/onnx/fusion.hpp"
#include "libserve/onnx/loader.hpp"

namespace serve::onnx_ir {

namespace fs = std::filesystem;

struct onnx_model::compiled_node {
  std::string op_type;
  std::string name;
  std::unique_ptr<op_kernel> kernel;
  /// Slot per node input / output; -1 for an omitted optional one.
  std::vector<int> inputs;
  std::vector<int> outputs;
  /// Slots whose last reader is this node: freed after it runs.
  std::vector<int> release;
};

struct onnx_model::value_slots {
  size_t count = 0;
  /// Constants (initializers, folded values) the plan or the outputs read; owned here.
  std::vector<value> constants;
  std::vector<int> constant_slot; // per constants entry
  std::map<std::string, size_t> constant_index; // name -> constants entry
  /// Per info_.inputs / info_.outputs entry.
  std::vector<int> input_slot;
  std::vector<int> output_slot;
};

namespace {

// Folding stops at nodes whose outputs would take more than this: they run per request.
constexpr size_t max_folded_bytes = size_t{16} << 20;

[[noreturn]] void refuse(const std::string& message) {
  throw serve_exception(errc::invalid_argument, message);
}

std::string domain_label(const std::string& domain) {
  return domain.empty() ? "ai.onnx" : domain;
}

size_t value_bytes(const value& v) {
  size_t n = v.t.data.size();
  for (auto& s : v.t.strings)
    n += s.size();
  return n;
}

// Runs one kernel; serve_exceptions pass through, anything else names the node.
void execute(const op_kernel& kernel, const std::string& op_type, const std::string& name,
             const std::vector<const value*>& inputs, std::vector<value>& outputs) {
  try {
    kernel.run(inputs, outputs);
  } catch (const serve_exception&) {
    throw;
  } catch (const std::exception& e) {
    throw serve_exception(errc::internal, op_type + " node '" + name + "': " + e.what());
  } catch (...) {
    throw serve_exception(errc::internal, op_type + " node '" + name + "': unknown exception");
  }
}

// The opset a node's domain runs at; ActorServe's fused ops need no import.
int64_t node_opset(const graph& g, const node& n) {
  auto i = g.opsets.find(n.domain);
  if (i != g.opsets.end())
    return i->second;
  if (n.domain == actorserve_domain)
    return 1;
  refuse("unsupported domain " + domain_label(n.domain) + " (no opset_import) for operator " +
         n.op_type + " in node '" + n.name + "'");
}

std::unique_ptr<op_kernel> compile(const graph& g, const node& n,
                                   const std::map<std::string, tensor>& constants) {
  int64_t opset = node_opset(g, n);
  auto factory = op_registry::global().find(n.domain, n.op_type, opset);
  if (!factory)
    refuse("unsupported operator " + n.op_type + " (domain " + domain_label(n.domain) + ", opset " +
           std::to_string(opset) + ") in node '" + n.name + "'");
  compile_context ctx;
  ctx.opset = opset;
  ctx.constants = &constants;
  auto kernel = (*factory)(n, ctx);
  if (!kernel)
    refuse(n.op_type + " node '" + n.name + "': the operator's factory returned no kernel");
  return kernel;
}

// ---- topological order ------------------------------------------------------------------------

// Which node produces each value; refuses values produced twice.
std::map<std::string, size_t> producers(const graph& g) {
  std::map<std::string, size_t> by_value;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (auto& out : g.nodes[i].outputs)
      if (!out.empty() && !by_value.emplace(out, i).second)
        refuse("value '" + out + "' is produced by two nodes ('" + g.nodes[by_value[out]].name +
               "' and '" + g.nodes[i].name + "')");
  return by_value;
}

// Node indices in an order where each node follows its producers (stable: file order where
// the graph allows). Refuses dangling inputs and cycles.
std::vector<size_t> topological_order(const graph& g,
                                      const std::map<std::string, tensor>& constants) {
  auto made_by = producers(g);
  std::set<std::string> sources;
  for (auto& in : g.inputs)
    sources.insert(in.name);
  for (auto& [name, producer] : made_by)
    if (constants.count(name) || sources.count(name))
      refuse("value '" + name + "' is both an output of node '" + g.nodes[producer].name +
             "' and " + (sources.count(name) ? "a graph input" : "an initializer"));
  std::vector<size_t> waiting(g.nodes.size(), 0);
  std::vector<std::vector<size_t>> readers(g.nodes.size());
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (auto& in : g.nodes[i].inputs) {
      if (in.empty() || constants.count(in) || sources.count(in))
        continue;
      auto p = made_by.find(in);
      if (p == made_by.end())
        refuse("input '" + in + "' of node '" + g.nodes[i].name + "' (" + g.nodes[i].op_type +
               ") is not a graph input, an initializer or any node's output");
      readers[p->second].push_back(i);
      ++waiting[i];
    }
  std::priority_queue<size_t, std::vector<size_t>, std::greater<>> ready;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (waiting[i] == 0)
      ready.push(i);
  std::vector<size_t> order;
  while (!ready.empty()) {
    size_t i = ready.top();
    ready.pop();
    order.push_back(i);
    for (auto r : readers[i])
      if (--waiting[r] == 0)
        ready.push(r);
  }
  for (size_t i = 0; order.size() < g.nodes.size() && i < g.nodes.size(); ++i)
    if (waiting[i] > 0)
      refuse("the graph has a cycle through node '" + g.nodes[i].name + "' (" + g.nodes[i].op_type +
             ")");
  return order;
}

// ---- constant folding -------------------------------------------------------------------------

bool all_inputs_constant(const node& n, const std::map<std::string, tensor>& constants) {
  for (auto& in : n.inputs)
    if (!in.empty() && !constants.count(in))
      return false;
  return true;
}

// Runs `n` on constant inputs. Returns false (and keeps nothing) when an output is not a
// plain tensor or the outputs are too large to keep. The inputs are lent to the kernel (moved
// out of `constants` and back), never copied.
bool fold(const node& n, const op_kernel& kernel, std::map<std::string, tensor>& constants) {
  std::map<std::string, value> lent;
  std::vector<const value*> args(n.inputs.size(), nullptr);
  for (auto& in : n.inputs)
    if (!in.empty() && !lent.count(in))
      lent[in].t = std::move(constants.at(in));
  for (size_t i = 0; i < n.inputs.size(); ++i)
    if (!n.inputs[i].empty())
      args[i] = &lent.at(n.inputs[i]);
  std::vector<value> results(n.outputs.size());
  execute(kernel, n.op_type, n.name, args, results); // a throw fails the whole load
  for (auto& [name, v] : lent)
    constants[name] = std::move(v.t);
  size_t bytes = 0;
  for (auto& r : results) {
    if (r.maps)
      return false;
    bytes += value_bytes(r);
  }
  if (bytes > max_folded_bytes)
    return false;
  for (size_t k = 0; k < n.outputs.size(); ++k)
    if (!n.outputs[k].empty())
      constants[n.outputs[k]] = std::move(results[k].t);
  return true;
}

// ---- input checks -----------------------------------------------------------------------------

std::string describe(dtype type, const std::vector<int64_t>& dims, bool has_shape) {
  return std::string(dtype_name(type)) + (has_shape ? " " + shape_to_string(dims) : "");
}

bool matches(const value_info& want, const tensor& t) {
  if (want.type != dtype::undefined && want.type != t.type)
    return false;
  if (!want.has_shape)
    return true;
  if (want.dims.size() != t.shape.size())
    return false;
  for (size_t d = 0; d < want.dims.size(); ++d)
    if (want.dims[d] >= 0 && want.dims[d] != t.shape[d])
      return false;
  return true;
}

void check_input(const value_info& want, const tensor& t) {
  auto name = "input \"" + want.name + "\"";
  if (!matches(want, t))
    refuse(name + ": expected " + describe(want.type, want.dims, want.has_shape) + ", got " +
           describe(t.type, t.shape, true));
  for (auto d : t.shape)
    if (d < 0)
      refuse(name + ": negative dimension in " + shape_to_string(t.shape));
  size_t n = static_cast<size_t>(t.numel());
  bool sized =
      t.type == dtype::string ? t.strings.size() == n : t.data.size() == n * dtype_size(t.type);
  if (!sized)
    refuse(name + ": " + describe(t.type, t.shape, true) + " holds " +
           std::to_string(t.type == dtype::string ? t.strings.size() : t.data.size()) +
           (t.type == dtype::string ? " strings" : " bytes") + "; expected " +
           std::to_string(t.type == dtype::string ? n : n * dtype_size(t.type)));
}

void check_inputs(const std::vector<value_info>& declared,
                  const std::map<std::string, tensor>& inputs) {
  std::set<std::string> known;
  for (auto& want : declared) {
    known.insert(want.name);
    auto i = inputs.find(want.name);
    if (i == inputs.end())
      refuse("missing input \"" + want.name + "\" (expected " +
             describe(want.type, want.dims, want.has_shape) + ")");
    check_input(want, i->second);
  }
  std::string unknown, expected;
  for (auto& [name, t] : inputs)
    if (!known.count(name))
      unknown += (unknown.empty() ? "\"" : ", \"") + name + "\"";
  if (unknown.empty())
    return;
  for (auto& want : declared)
    expected += (expected.empty() ? "\"" : ", \"") + want.name + "\"";
  refuse("unknown input(s) " + unknown + "; the model's inputs are " +
         (expected.empty() ? "none" : expected));
}

model_info describe_model(const graph& g) {
  model_info info;
  info.inputs = g.inputs;
  info.outputs = g.outputs;
  for (auto& [name, t] : g.initializers) {
    info.parameter_count += t.numel();
    info.parameter_bytes += t.data.size();
    for (auto& s : t.strings)
      info.parameter_bytes += s.size();
  }
  info.ir_version = g.ir_version;
  info.opsets = g.opsets;
  info.producer = g.producer_name;
  if (!g.producer_version.empty())
    info.producer += (info.producer.empty() ? "" : " ") + g.producer_version;
  return info;
}

// ---- slots ------------------------------------------------------------------------------------

// Where every value of the plan lives during run(): see onnx_model::value_slots.
struct slot_plan {
  size_t count = 0;
  std::vector<std::vector<int>> node_inputs, node_outputs, node_release;
  std::vector<std::pair<std::string, int>> constants; // the constants something reads
  std::vector<int> input_slot, output_slot;
};

// Each node's last reader frees what it read, unless it is a constant or a graph output; an
// output nobody reads is freed by its producer.
void plan_releases(slot_plan& plan) {
  std::vector<int> last_reader(plan.count, -1);
  std::vector<bool> kept(plan.count, false);
  for (auto& [name, slot] : plan.constants)
    kept[static_cast<size_t>(slot)] = true;
  for (auto slot : plan.output_slot)
    kept[static_cast<size_t>(slot)] = true;
  for (size_t i = 0; i < plan.node_inputs.size(); ++i) {
    for (auto slot : plan.node_outputs[i])
      if (slot >= 0)
        last_reader[static_cast<size_t>(slot)] = static_cast<int>(i);
    for (auto slot : plan.node_inputs[i])
      if (slot >= 0)
        last_reader[static_cast<size_t>(slot)] = static_cast<int>(i);
  }
  plan.node_release.resize(plan.node_inputs.size());
  for (size_t slot = 0; slot < plan.count; ++slot)
    if (!kept[slot] && last_reader[slot] >= 0)
      plan.node_release[static_cast<size_t>(last_reader[slot])].push_back(static_cast<int>(slot));
}

slot_plan assign_slots(const graph& g, const std::map<std::string, tensor>& constants) {
  slot_plan plan;
  std::map<std::string, int> slot_of;
  auto slot = [&](const std::string& name) {
    if (name.empty())
      return -1;
    auto [it, fresh] = slot_of.emplace(name, static_cast<int>(plan.count));
    if (fresh) {
      ++plan.count;
      if (constants.count(name))
        plan.constants.emplace_back(name, it->second);
    }
    return it->second;
  };
  for (auto& in : g.inputs)
    plan.input_slot.push_back(slot(in.name));
  for (auto& n : g.nodes) {
    plan.node_inputs.emplace_back();
    for (auto& in : n.inputs)
      plan.node_inputs.back().push_back(slot(in));
    plan.node_outputs.emplace_back();
    for (auto& out : n.outputs)
      plan.node_outputs.back().push_back(slot(out));
  }
  for (auto& out : g.outputs) {
    if (!slot_of.count(out.name) && !constants.count(out.name))
      refuse("graph output '" + out.name + "' is not produced by any node");
    plan.output_slot.push_back(slot(out.name));
  }
  plan_releases(plan);
  return plan;
}

// Compiles the nodes in topological order, running those whose inputs are all constant once
// (their outputs join `constants`); leaves in g.nodes only the nodes that run per request.
std::vector<std::unique_ptr<op_kernel>> compile_and_fold(graph& g,
                                                         std::map<std::string, tensor>& constants) {
  std::vector<node> kept;
  std::vector<std::unique_ptr<op_kernel>> kernels;
  for (auto i : topological_order(g, constants)) {
    auto& n = g.nodes[i];
    auto kernel = compile(g, n, constants);
    if (all_inputs_constant(n, constants) && fold(n, *kernel, constants))
      continue;
    kept.push_back(std::move(n));
    kernels.push_back(std::move(kernel));
  }
  g.nodes = std::move(kept);
  return kernels;
}

// The graph outputs in declared order: moved out of the run's slots, copied when they are
// constants, user inputs or listed twice.
std::vector<value> collect_outputs(const std::vector<int>& output_slot, std::vector<value>& owned,
                                   const std::vector<const value*>& at) {
  std::vector<value> outputs;
  outputs.reserve(output_slot.size());
  for (size_t i = 0; i < output_slot.size(); ++i) {
    auto slot = static_cast<size_t>(output_slot[i]);
    if (at[slot] == nullptr)
      throw serve_exception(errc::internal,
                            "graph output " + std::to_string(i) + " was not computed");
    bool listed_again = std::find(output_slot.begin() + static_cast<long>(i) + 1, output_slot.end(),
                                  output_slot[i]) != output_slot.end();
    if (at[slot] == &owned[slot] && !listed_again)
      outputs.push_back(std::move(owned[slot]));
    else
      outputs.push_back(*at[slot]);
  }
  return outputs;
}

std::string read_file(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec))
    throw serve_exception(errc::not_found, "model file \"" + path + "\" does not exist");
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  if (!in || !(buffer << in.rdbuf()))
    throw serve_exception(errc::not_found, "model file \"" + path + "\" cannot be read");
  return buffer.str();
}

} // namespace

// ---- onnx_model -------------------------------------------------------------------------------

onnx_model::~onnx_model() = default;

std::shared_ptr<const onnx_model> onnx_model::load(const std::string& path) {
  return load_bytes(read_file(path), fs::path(path).parent_path().string());
}

std::shared_ptr<const onnx_model> onnx_model::load_bytes(const std::string& bytes,
                                                         const std::string& base_dir) {
  std::shared_ptr<onnx_model> model(new onnx_model);
  graph& g = model->graph_;
  g = parse_model_bytes(bytes, base_dir);
  model->info_ = describe_model(g);
  fuse_gemm_epilogues(g);
  pack_gemm_weights(g);
  auto constants = std::move(g.initializers);
  g.initializers.clear();
  auto kernels = compile_and_fold(g, constants);
  auto plan = assign_slots(g, constants);
  for (size_t i = 0; i < g.nodes.size(); ++i)
    model->plan_.push_back({g.nodes[i].op_type, g.nodes[i].name, std::move(kernels[i]),
                            plan.node_inputs[i], plan.node_outputs[i], plan.node_release[i]});
  auto slots = std::make_unique<value_slots>();
  slots->count = plan.count;
  slots->input_slot = plan.input_slot;
  slots->output_slot = plan.output_slot;
  for (auto& [name, slot] : plan.constants) {
    slots->constant_index[name] = slots->constants.size();
    slots->constants.push_back(value{std::move(constants.at(name)), nullptr});
    slots->constant_slot.push_back(slot);
  }
  model->slots_ = std::move(slots);
  model->info_.node_count = model->plan_.size();
  return model;
}

const tensor* onnx_model::constant(const std::string& name) const {
  auto i = slots_->constant_index.find(name);
  return i == slots_->constant_index.end() ? nullptr : &slots_->constants[i->second].t;
}

std::vector<value> onnx_model::run(const std::map<std::string, tensor>& inputs) const {
  check_inputs(info_.inputs, inputs);
  std::vector<value> owned(slots_->count);
  std::vector<const value*> at(slots_->count, nullptr);
  for (size_t i = 0; i < slots_->constants.size(); ++i)
    at[static_cast<size_t>(slots_->constant_slot[i])] = &slots_->constants[i];
  for (size_t i = 0; i < info_.inputs.size(); ++i) {
    auto slot = static_cast<size_t>(slots_->input_slot[i]);
    owned[slot].t = inputs.at(info_.inputs[i].name); // kernels read values, not tensors
    at[slot] = &owned[slot];
  }
  for (auto& step : plan_) {
    std::vector<const value*> args;
    args.reserve(step.inputs.size());
    for (auto slot : step.inputs)
      args.push_back(slot < 0 ? nullptr : at[static_cast<size_t>(slot)]);
    std::vector<value> results(step.outputs.size());
    execute(*step.kernel, step.op_type, step.name, args, results);
    for (size_t k = 0; k < results.size(); ++k)
      if (step.outputs[k] >= 0) {
        auto slot = static_cast<size_t>(step.outputs[k]);
        owned[slot] = std::move(results[k]);
        at[slot] = &owned[slot];
      }
    for (auto slot : step.release) {
      owned[static_cast<size_t>(slot)] = value{};
      at[static_cast<size_t>(slot)] = nullptr;
    }
  }
  return collect_outputs(slots_->output_slot, owned, at);
}

} // namespace serve::onnx_ir
