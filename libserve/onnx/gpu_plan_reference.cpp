// The host side of a GPU plan (see gpu_plan.hpp): turning the pipeline's results into graph
// outputs, a one-line summary, and the plain-loop reference the tests check plans with.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "libserve/future.hpp"
#include "libserve/onnx/gpu_plan.hpp"

namespace serve::onnx_ir {

namespace {

const char* activation_name(gpu_activation act) {
  switch (act) {
  case gpu_activation::relu:
    return "relu";
  case gpu_activation::sigmoid:
    return "sigmoid";
  case gpu_activation::tanh:
    return "tanh";
  case gpu_activation::none:
    break;
  }
  return "none";
}

float activate(gpu_activation act, float x) {
  switch (act) {
  case gpu_activation::relu:
    return x < 0 ? 0.0f : x;
  case gpu_activation::sigmoid:
    return 1.0f / (1.0f + std::exp(-x));
  case gpu_activation::tanh:
    return std::tanh(x);
  case gpu_activation::none:
    break;
  }
  return x;
}

std::vector<int64_t> with_rows(std::vector<int64_t> shape, int64_t rows) {
  for (auto& d : shape)
    if (d == gpu_plan::batch_dim)
      d = rows;
  return shape;
}

tensor float_rows(const gpu_plan_output& out, int64_t rows, const float* values, int64_t width) {
  if (values == nullptr)
    throw serve_exception(errc::internal, "GPU plan: output \"" + out.name + "\" was not computed");
  tensor t = tensor::zeros(dtype::float32, with_rows(out.shape, rows));
  std::memcpy(t.data.data(), values, static_cast<size_t>(rows * width) * sizeof(float));
  return t;
}

/// classes[indices[r]] for every row, shaped as the output.
tensor labels_of(const gpu_plan& plan, const gpu_plan_output& out, int64_t rows,
                 const int64_t* indices) {
  const tensor& classes = *plan.classes;
  tensor t = tensor::zeros(classes.type, with_rows(out.shape, rows));
  const size_t elem = dtype_size(classes.type);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t i = indices[r];
    if (i < 0 || i >= classes.numel())
      throw serve_exception(errc::internal, "GPU plan: class index " + std::to_string(i) +
                                              " is outside the " +
                                              std::to_string(classes.numel()) + " classes");
    if (classes.type == dtype::string)
      t.strings[static_cast<size_t>(r)] = classes.strings[static_cast<size_t>(i)];
    else
      std::memcpy(t.data.data() + static_cast<size_t>(r) * elem,
                  classes.data.data() + static_cast<size_t>(i) * elem, elem);
  }
  return t;
}

} // namespace

bool gpu_plan::outputs_read(gpu_value v) const {
  for (auto& out : outputs)
    if (out.source == v || (v == gpu_value::indices && out.source == gpu_value::labels))
      return true;
  return false;
}

std::string gpu_plan::summary() const {
  std::string text = std::to_string(layers.size()) + (layers.size() == 1 ? " layer " : " layers ");
  text += std::to_string(input_width);
  std::string acts;
  for (auto& l : layers) {
    text += "-" + std::to_string(l.out_features);
    acts += (acts.empty() ? "" : ", ") + std::string(activation_name(l.act));
  }
  if (!layers.empty())
    text += " (" + acts + ")";
  if (normalize != normalization::none)
    text += normalize == normalization::softmax ? ", softmax" : ", log_softmax";
  if (argmax_of)
    text += ", argmax";
  if (classes)
    text += ", class labels";
  return text;
}

std::vector<value> gpu_plan_outputs(const gpu_plan& plan, int64_t rows, const float* input,
                                    const float* scores, const float* normalized,
                                    const int64_t* indices) {
  std::vector<value> outputs(plan.outputs.size());
  for (size_t k = 0; k < plan.outputs.size(); ++k) {
    const gpu_plan_output& out = plan.outputs[k];
    tensor& t = outputs[k].t;
    switch (out.source) {
    case gpu_value::input:
      t = float_rows(out, rows, input, plan.input_width);
      break;
    case gpu_value::scores:
      t = float_rows(out, rows, scores, plan.width());
      break;
    case gpu_value::normalized:
      t = float_rows(out, rows, normalized, plan.width());
      break;
    case gpu_value::indices:
      t = tensor::zeros(dtype::int64, with_rows(out.shape, rows));
      std::memcpy(t.data.data(), indices, static_cast<size_t>(rows) * sizeof(int64_t));
      break;
    case gpu_value::labels:
      t = labels_of(plan, out, rows, indices);
      break;
    }
  }
  return outputs;
}

std::vector<value> run_gpu_plan_reference(const gpu_plan& plan, const tensor& input) {
  if (input.type != dtype::float32 || input.shape.empty() ||
      input.numel() != input.shape[0] * plan.input_width)
    throw serve_exception(errc::invalid_argument, "GPU plan reference: input " +
                                                    shape_to_string(input.shape) + " does not "
                                                    "hold rows of " +
                                                    std::to_string(plan.input_width));
  const int64_t rows = input.shape[0];
  std::vector<float> x(input.as<float>(), input.as<float>() + input.numel());
  for (const gpu_layer& l : plan.layers) {
    std::vector<float> y(static_cast<size_t>(rows * l.out_features));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < l.out_features; ++j) {
        double sum = l.bias.empty() ? 0.0 : l.bias[static_cast<size_t>(j)];
        for (int64_t k = 0; k < l.in_features; ++k)
          sum += double(x[static_cast<size_t>(r * l.in_features + k)]) *
                 l.weight[static_cast<size_t>(k * l.out_features + j)];
        y[static_cast<size_t>(r * l.out_features + j)] = activate(l.act, float(sum));
      }
    x = std::move(y);
  }
  const int64_t width = plan.width();
  std::vector<float> normalized;
  if (plan.normalize != gpu_plan::normalization::none) {
    normalized.resize(x.size());
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = x.data() + r * width;
      float top = row[0];
      for (int64_t c = 1; c < width; ++c)
        top = std::max(top, row[c]);
      double sum = 0;
      for (int64_t c = 0; c < width; ++c)
        sum += std::exp(double(row[c]) - top);
      for (int64_t c = 0; c < width; ++c)
        normalized[static_cast<size_t>(r * width + c)] =
          plan.normalize == gpu_plan::normalization::softmax
            ? float(std::exp(double(row[c]) - top) / sum)
            : float(double(row[c]) - top - std::log(sum));
    }
  }
  std::vector<int64_t> indices;
  if (plan.argmax_of) {
    const float* of = *plan.argmax_of == gpu_value::normalized ? normalized.data() : x.data();
    for (int64_t r = 0; r < rows; ++r) {
      int64_t best = 0;
      for (int64_t c = 1; c < width; ++c)
        if (of[r * width + c] > of[r * width + best])
          best = c;
      indices.push_back(best);
    }
  }
  return gpu_plan_outputs(plan, rows, input.as<float>(), x.data(),
                          normalized.empty() ? nullptr : normalized.data(),
                          indices.empty() ? nullptr : indices.data());
}

} // namespace serve::onnx_ir
