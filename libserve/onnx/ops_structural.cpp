// Operator family "structural" (see op_registry.hpp): ops that move, reshape or retype data
// without arithmetic - Identity, Constant, Shape, Gather, Unsqueeze, Squeeze, Reshape, Flatten,
// Transpose, Concat, Slice, Expand, ConstantOfShape and Cast. Exporters emit them as glue around
// the math (PyTorch's `view` becomes Shape/Gather/Unsqueeze/Concat/Reshape); on constant shapes
// the loader folds them away, so most run only once, at load time.
//
// Data movement is dtype-agnostic: elements are copied by their byte size (strings one by one).
// Each factory reads and checks the node's attributes once; kernels are immutable closures.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>
#include <type_traits>

#include "libserve/future.hpp"
#include "libserve/onnx/op_registry.hpp"

namespace serve::onnx_ir {

namespace {

using tensors_in = std::vector<const value*>;
using run_fn = std::function<void(const tensors_in&, std::vector<value>&)>;

class closure_kernel : public op_kernel {
public:
  explicit closure_kernel(run_fn fn) : fn_(std::move(fn)) {}
  void run(const tensors_in& inputs, std::vector<value>& outputs) const override {
    fn_(inputs, outputs);
  }

private:
  const run_fn fn_;
};

std::unique_ptr<op_kernel> kernel(run_fn fn) {
  return std::make_unique<closure_kernel>(std::move(fn));
}

// "Reshape node 'n'": how messages name the node.
std::string where(const node& n) {
  return n.op_type + " node '" + n.name + "'";
}

[[noreturn]] void refuse(const std::string& where, const std::string& message) {
  throw serve_exception(errc::invalid_argument, where + ": " + message);
}

const tensor& input(const tensors_in& in, size_t i, const std::string& at) {
  if (i >= in.size() || in[i] == nullptr)
    refuse(at, "input " + std::to_string(i) + " is missing");
  if (in[i]->maps)
    refuse(at, "input " + std::to_string(i) + " is not a tensor");
  return in[i]->t;
}

const tensor* optional_input(const tensors_in& in, size_t i) {
  return i < in.size() && in[i] != nullptr ? &in[i]->t : nullptr;
}

// The elements of an int32/int64 tensor (axes, shapes, indices, starts...).
std::vector<int64_t> int_values(const tensor& t, const std::string& at) {
  std::vector<int64_t> v(static_cast<size_t>(t.numel()));
  if (t.type == dtype::int64)
    std::copy(t.as<int64_t>(), t.as<int64_t>() + v.size(), v.begin());
  else if (t.type == dtype::int32)
    std::copy(t.as<int32_t>(), t.as<int32_t>() + v.size(), v.begin());
  else
    refuse(at, std::string("expected an int64 or int32 tensor, got ") + dtype_name(t.type));
  return v;
}

std::vector<int64_t> ints_attr(const node& n, const std::string& key) {
  auto a = n.attr(key);
  return a ? a->ints : std::vector<int64_t>{};
}

// `axis` in [-rank, rank) as a non-negative index.
int64_t normalize_axis(int64_t axis, int64_t rank, const std::string& at) {
  if (axis < -rank || axis >= rank)
    refuse(at,
           "axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  return axis < 0 ? axis + rank : axis;
}

int64_t product(const std::vector<int64_t>& dims, size_t from, size_t to) {
  int64_t p = 1;
  for (size_t i = from; i < to; ++i)
    p *= dims[i];
  return p;
}

tensor int64_vector(const std::vector<int64_t>& v) {
  return tensor::from<int64_t>(dtype::int64, {static_cast<int64_t>(v.size())}, v);
}

// Copies `count` elements from src[src_at...] to dst[dst_at...] (same dtype).
void copy_elements(const tensor& src, int64_t src_at, tensor& dst, int64_t dst_at, int64_t count) {
  if (count == 0)
    return;
  if (src.type == dtype::string) {
    std::copy_n(src.strings.begin() + src_at, count, dst.strings.begin() + dst_at);
    return;
  }
  size_t es = dtype_size(src.type);
  std::memcpy(dst.data.data() + dst_at * es, src.data.data() + src_at * es, count * es);
}

// Same data, new shape: the bytes are copied once, unchanged.
tensor with_shape(const tensor& t, std::vector<int64_t> shape) {
  tensor out = t;
  out.shape = std::move(shape);
  return out;
}

template <class T>
void strided_row(const tensor& src, int64_t at, int64_t stride, tensor& dst, int64_t dst_at,
                 int64_t n) {
  const T* s = src.as<T>() + at;
  T* d = dst.as<T>() + dst_at;
  for (int64_t j = 0; j < n; ++j)
    d[j] = s[j * stride];
}

void copy_row(const tensor& src, int64_t at, int64_t stride, tensor& dst, int64_t dst_at,
              int64_t n) {
  if (stride == 1)
    return copy_elements(src, at, dst, dst_at, n);
  switch (src.type == dtype::string ? 0 : dtype_size(src.type)) {
  case 1:
    return strided_row<uint8_t>(src, at, stride, dst, dst_at, n);
  case 2:
    return strided_row<uint16_t>(src, at, stride, dst, dst_at, n);
  case 4:
    return strided_row<uint32_t>(src, at, stride, dst, dst_at, n);
  case 8:
    return strided_row<uint64_t>(src, at, stride, dst, dst_at, n);
  default:
    for (int64_t j = 0; j < n; ++j)
      copy_elements(src, at + j * stride, dst, dst_at + j, 1);
  }
}

// out[i0, i1, ...] = src[base + sum(i_d * strides[d])]: Transpose, Slice and Expand.
tensor strided_copy(const tensor& src, int64_t base, const std::vector<int64_t>& out_shape,
                    const std::vector<int64_t>& strides) {
  tensor out = tensor::zeros(src.type, out_shape);
  int64_t n = out.numel();
  if (n == 0)
    return out;
  if (out_shape.empty()) {
    copy_elements(src, base, out, 0, 1);
    return out;
  }
  size_t rank = out_shape.size();
  int64_t inner = out_shape[rank - 1];
  std::vector<int64_t> index(rank, 0);
  for (int64_t row = 0; row < n / inner; ++row) {
    int64_t at = base;
    for (size_t d = 0; d + 1 < rank; ++d)
      at += index[d] * strides[d];
    copy_row(src, at, strides[rank - 1], out, row * inner, inner);
    for (size_t d = rank - 1; d-- > 0;) {
      if (++index[d] < out_shape[d])
        break;
      index[d] = 0;
    }
  }
  return out;
}

std::vector<int64_t> contiguous_strides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (size_t d = shape.size(); d-- > 1;)
    strides[d - 1] = strides[d] * shape[d];
  return strides;
}

// ---- Identity, Constant, Shape, ConstantOfShape -----------------------------------------------

std::unique_ptr<op_kernel> make_identity(const node& n, const compile_context&) {
  auto at = where(n);
  return kernel([=](const tensors_in& in, std::vector<value>& out) {
    if (in.empty() || in[0] == nullptr)
      refuse(at, "input 0 is missing");
    out[0] = *in[0]; // a tensor or a map sequence
  });
}

template <class T> tensor vector_tensor(dtype type, const std::vector<T>& v, bool scalar) {
  std::vector<int64_t> shape;
  if (!scalar)
    shape.push_back(static_cast<int64_t>(v.size()));
  return tensor::from<T>(type, shape, v);
}

tensor constant_value(const node& n) {
  if (n.attr("value") && !n.tensor_attr("value"))
    refuse(where(n), "value must be a tensor attribute");
  if (auto t = n.tensor_attr("value"))
    return *t;
  if (auto a = n.attr("value_float"))
    return vector_tensor<float>(dtype::float32, {a->f}, true);
  if (auto a = n.attr("value_floats"))
    return vector_tensor<float>(dtype::float32, a->floats, false);
  if (auto a = n.attr("value_int"))
    return vector_tensor<int64_t>(dtype::int64, {a->i}, true);
  if (auto a = n.attr("value_ints"))
    return vector_tensor<int64_t>(dtype::int64, a->ints, false);
  tensor t;
  t.type = dtype::string;
  if (auto a = n.attr("value_string")) {
    t.strings = {a->s};
    return t;
  }
  if (auto a = n.attr("value_strings")) {
    t.strings = a->strings;
    t.shape = {static_cast<int64_t>(a->strings.size())};
    return t;
  }
  refuse(where(n), "no supported value attribute (value, value_float(s), value_int(s), "
                   "value_string(s)); sparse_value is not supported");
}

std::unique_ptr<op_kernel> make_constant(const node& n, const compile_context&) {
  auto constant = std::make_shared<const tensor>(constant_value(n));
  return kernel([constant](const tensors_in&, std::vector<value>& out) { out[0].t = *constant; });
}

std::unique_ptr<op_kernel> make_shape(const node& n, const compile_context& ctx) {
  bool ranged = ctx.opset >= 15;
  int64_t start = ranged ? n.attr_int("start", 0) : 0;
  auto end_attr = ranged ? n.attr("end") : nullptr;
  std::optional<int64_t> end;
  if (end_attr)
    end = end_attr->i;
  auto at = where(n);
  return kernel([=](const tensors_in& in, std::vector<value>& out) {
    auto& dims = input(in, 0, at).shape;
    int64_t rank = static_cast<int64_t>(dims.size());
    auto clamp = [rank](int64_t i) { return std::clamp(i < 0 ? i + rank : i, int64_t{0}, rank); };
    int64_t b = clamp(start), e = clamp(end.value_or(rank));
    std::vector<int64_t> part(dims.begin() + b, dims.begin() + std::max(b, e));
    out[0].t = int64_vector(part);
  });
}

std::unique_ptr<op_kernel> make_constant_of_shape(const node& n, const compile_context&) {
  tensor fill = tensor::from<float>(dtype::float32, {1}, std::vector<float>{0.f});
  if (n.attr("value") && !n.tensor_attr("value"))
    refuse(where(n), "value must be a tensor attribute");
  if (auto t = n.tensor_attr("value"))
    fill = *t;
  if (fill.numel() != 1 || fill.type == dtype::string)
    refuse(where(n), "value must hold one numeric element");
  auto at = where(n);
  return kernel([=](const tensors_in& in, std::vector<value>& out) {
    auto shape = int_values(input(in, 0, at), at);
    for (auto d : shape)
      if (d < 0)
        refuse(at, "negative dimension in shape " + shape_to_string(shape));
    tensor t = tensor::zeros(fill.type, shape);
    size_t es = dtype_size(fill.type);
    for (size_t off = 0; off < t.data.size(); off += es)
      std::memcpy(t.data.data() + off, fill.data.data(), es);
    out[0].t = std::move(t);
  });
}

// ---- Gather, Concat ----------------------------------------------------------------------------

std::unique_ptr<op_kernel> make_gather(const node& n, const compile_context&) {
  int64_t axis_attr = n.attr_int("axis", 0);
  auto at = where(n);
  return kernel([=](const tensors_in& in, std::vector<value>& out) {
    auto& data = input(in, 0, at);
    auto indices = int_values(input(in, 1, at), at);
    auto& index_shape = in[1]->t.shape;
    int64_t rank = static_cast<int64_t>(data.rank());
    size_t axis = static_cast<size_t>(normalize_axis(axis_attr, rank, at));
    std::vector<int64_t> shape(data.shape.begin(), data.shape.begin() + axis);
    shape.insert(shape.end(), index_shape.begin(), index_shape.end());
    shape.insert(shape.end(), data.shape.begin() + axis + 1, data.shape.end());
    int64_t outer = product(data.shape, 0, axis), dim = data.shape[axis];
    int64_t inner = product(data.shape, axis + 1, data.shape.size());
    int64_t count = static_cast<int64_t>(indices.size());
    tensor t = tensor::zeros(data.type, shape);
    for (auto& i : indices) {
      if (i < -dim || i >= dim)
        refuse(at, "index " + std::to_string(i) + " is out of range for axis size " +
                       std::to_string(dim));
      i = i < 0 ? i + dim : i;
    }
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t k = 0; k < count; ++k)
        copy_elements(data, (o * dim + indices[k]) * inner, t, (o * count + k) * inner, inner);
    out[0].t = std::move(t);
  });
}

void check_concat_operand(const tensor& first, const tensor& t, size_t axis,
                          const std::string& at) {
  bool same = t.type == first.type && t.rank() == first.rank();
  for (size_t d = 0; same && d < t.rank(); ++d)
    same = d == axis || t.shape[d] == first.shape[d];
  if (!same)
    refuse(at, std::string("cannot concatenate ") + dtype_name(t.type) + " " +
                   shape_to_string(t.shape) + " with " + dtype_name(first.type) + " " +
                   shape_to_string(first.shape) + " on axis " + std::to_string(axis));
}

std::unique_ptr<op_kernel> make_concat(const node& n, const compile_context& ctx) {
  auto axis_attr = n.attr("axis");
  if (!axis_attr && ctx.opset >= 4)
    refuse(where(n), "attribute 'axis' is required");
  int64_t axis_value = axis_attr ? axis_attr->i : 1;
  auto at = where(n);
  return kernel([=](const tensors_in& in, std::vector<value>& out) {
    auto& first = input(in, 0, at);
    size_t axis = static_cast<size_t>(normalize_axis(axis_value, first.rank(), at));
    auto shape = first.shape;
    shape[axis] = 0;
    for (size_t i = 0; i < in.size(); ++i) {
      check_concat_operand(first, input(in, i, at), axis, at);
      shape[axis] += in[i]->t.shape[axis];
    }
    int64_t outer = product(shape, 0, axis), inner = product(shape, axis + 1, shape.size());
    tensor t = tensor::zeros(first.type, shape);
    int64_t dst = 0;
    for (int64_t o = 0; o < outer; ++o)
      for (auto* v : in) {
        int64_t block = v->t.shape[axis] * inner;
        copy_elements(v->t, o * block, t, dst, block);
        dst += block;
      }
    out[0].t = std::move(t);
  });
}

// ---- Unsqueeze, Squeeze, Reshape, Flatten -----------------------------------------------------

// Axes from the attribute (opset < 13) or from the optional second input (13+).
std::vector<int64_t> axes_of(const std::vector<int64_t>& from_attr, bool axes_input,
                             const tensors_in& in, const std::string& at) {
  if (!axes_input)
    return from_attr;
  auto axes = optional_input(in, 1);
  return axes ? int_values(*axes, at) : std::vector<int64_t>{};
}

std::unique_ptr<op_kernel> make_unsqueeze(const node& n, const compile_context& ctx) {
  bool axes_input = ctx.opset >= 13;
  auto attr_axes = ints_attr(n, "axes");
  auto at = where(n);
  return kernel([=](const tensors_in& in, std::vector<value>& out) {
    auto& data = input(in, 0, at);
    auto axes = axes_of(attr_axes, axes_input, in, at);
    if (axes.empty())
      refuse(at, "axes are required");
    int64_t rank = static_cast<int64_t>(data.rank() + axes.size());
    std::vector<bool> inserted(static_cast<size_t>(rank), false);
    for (auto a : axes) {
      auto k = static_cast<size_t>(normalize_axis(a, rank, at));
      if (inserted[k])
        refuse(at, "axis " + std::to_string(a) + " is repeated");
      inserted[k] = true;
    }
    std::vector<int64_t> shape;
    auto next = data.shape.begin();
    for (size_t d = 0; d < inserted.size(); ++d)
      shape.push_back(inserted[d] ? 1 : *next++);
    out[0].t = with_shape(data, shape);
  });
}

std::unique_ptr<op_kernel> make_squeeze(const node& n, const compile_context& ctx) {
  bool axes_input = ctx.opset >= 13;
  auto attr_axes = ints_attr(n, "axes");
  auto at = where(n);
  return kernel([=](const tensors_in& in, std::vector<value>& out) {
    auto& data = input(in, 0, at);
    auto axes = axes_of(attr_axes, axes_input, in, at);
    std::vector<bool> removed(data.rank(), axes.empty());
    if (axes.empty())
      for (size_t d = 0; d < data.rank(); ++d)
        removed[d] = data.shape[d] == 1;
    for (auto a : axes) {
      auto k = static_cast<size_t>(normalize_axis(a, data.rank(), at));
      if (data.shape[k] != 1)
        refuse(at, "cannot squeeze axis " + std::to_string(a) + " of " +
                       shape_to_string(data.shape) + ": its size is not 1");
      removed[k] = true;
    }
    std::vector<int64_t> shape;
    for (size_t d = 0; d < data.rank(); ++d)
      if (!removed[d])
        shape.push_back(data.shape[d]);
    out[0].t = with_shape(data, shape);
  });
}

// Reshape's target: 0 copies the input's dim (unless allowzero), one -1 takes what is left.
std::vector<int64_t> reshape_target(const std::vector<int64_t>& from, std::vector<int64_t> to,
                                    bool allowzero, const std::string& at) {
  int64_t known = 1, infer = -1;
  for (size_t d = 0; d < to.size(); ++d) {
    if (to[d] == 0 && !allowzero) {
      if (d >= from.size())
        refuse(at, "shape " + shape_to_string(to) + " copies dim " + std::to_string(d) + " that " +
                       shape_to_string(from) + " does not have");
      to[d] = from[d];
    }
    if (to[d] == -1 && infer < 0)
      infer = static_cast<int64_t>(d);
    else if (to[d] < 0)
      refuse(at, "invalid shape " + shape_to_string(to));
    else
      known *= to[d];
  }
  int64_t numel = shape_numel(from);
  if (infer >= 0 && known != 0 && numel % known == 0)
    to[static_cast<size_t>(infer)] = numel / known;
  if (shape_numel(to) != numel || (infer >= 0 && to[static_cast<size_t>(infer)] < 0))
    refuse(at, "cannot reshape " + shape_to_string(from) + " to " + shape_to_string(to));
  return to;
}

std::unique_ptr<op_kernel> make_reshape(const node& n, const compile_context& ctx) {
  bool allowzero = ctx.opset >= 14 && n.attr_int("allowzero", 0) != 0;
  auto at = where(n);
  return kernel([=](const tensors_in& in, std::vector<value>& out) {
    auto& data = input(in, 0, at);
    auto shape = int_values(input(in, 1, at), at);
    out[0].t = with_shape(data, reshape_target(data.shape, shape, allowzero, at));
  });
}

std::unique_ptr<op_kernel> make_flatten(const node& n, const compile_context&) {
  int64_t axis_attr = n.attr_int("axis", 1);
  auto at = where(n);
  return kernel([=](const tensors_in& in, std::vector<value>& out) {
    auto& data = input(in, 0, at);
    int64_t rank = static_cast<int64_t>(data.rank());
    if (axis_attr < -rank || axis_attr > rank) // axis may equal rank
      refuse(at, "axis " + std::to_string(axis_attr) + " is out of range for rank " +
                     std::to_string(rank));
    auto axis = static_cast<size_t>(axis_attr < 0 ? axis_attr + rank : axis_attr);
    out[0].t = with_shape(
        data, {product(data.shape, 0, axis), product(data.shape, axis, data.shape.size())});
  });
}

// ---- Transpose, Slice, Expand -----------------------------------------------------------------

std::unique_ptr<op_kernel> make_transpose(const node& n, const compile_context&) {
  auto perm_attr = ints_attr(n, "perm");
  auto at = where(n);
  return kernel([=](const tensors_in& in, std::vector<value>& out) {
    auto& data = input(in, 0, at);
    auto perm = perm_attr;
    if (perm.empty()) {
      perm.resize(data.rank());
      std::iota(perm.rbegin(), perm.rend(), 0);
    }
    auto sorted = perm;
    std::sort(sorted.begin(), sorted.end());
    for (size_t d = 0; d < sorted.size(); ++d)
      if (sorted[d] != static_cast<int64_t>(d) || sorted.size() != data.rank())
        refuse(at, "perm " + shape_to_string(perm) + " is not a permutation of rank " +
                       std::to_string(data.rank()));
    auto in_strides = contiguous_strides(data.shape);
    std::vector<int64_t> shape, strides;
    for (auto p : perm) {
      shape.push_back(data.shape[static_cast<size_t>(p)]);
      strides.push_back(in_strides[static_cast<size_t>(p)]);
    }
    out[0].t = strided_copy(data, 0, shape, strides);
  });
}

struct slice_args {
  std::vector<int64_t> starts, ends, axes, steps;
};

slice_args slice_inputs(const tensors_in& in, const std::string& at) {
  slice_args s;
  s.starts = int_values(input(in, 1, at), at);
  s.ends = int_values(input(in, 2, at), at);
  if (auto axes = optional_input(in, 3))
    s.axes = int_values(*axes, at);
  if (auto steps = optional_input(in, 4))
    s.steps = int_values(*steps, at);
  return s;
}

// One axis of a Slice after ONNX's clamping rules: first index, element count, step.
struct slice_axis {
  int64_t first = 0, count = 0, step = 1;
};

slice_axis clamp_slice(int64_t start, int64_t end, int64_t step, int64_t dim) {
  if (dim == 0)
    return {};
  step = std::clamp(step, -dim, dim); // selects the same elements; strides cannot overflow
  int64_t b = start < 0 ? start + dim : start;
  int64_t e = end < 0 ? std::max<int64_t>(end + dim, -1) : end;
  b = step > 0 ? std::clamp<int64_t>(b, 0, dim) : std::clamp<int64_t>(b, 0, dim - 1);
  e = step > 0 ? std::clamp<int64_t>(e, 0, dim) : std::clamp<int64_t>(e, -1, dim - 1);
  int64_t span = step > 0 ? e - b : b - e;
  int64_t count = span <= 0 ? 0 : 1 + (span - 1) / (step > 0 ? step : -step);
  return {b, count, step};
}

tensor slice(const tensor& data, slice_args s, const std::string& at) {
  if (s.axes.empty()) {
    s.axes.resize(s.starts.size());
    std::iota(s.axes.begin(), s.axes.end(), 0);
  }
  if (s.steps.empty())
    s.steps.assign(s.starts.size(), 1);
  if (s.ends.size() != s.starts.size() || s.axes.size() != s.starts.size() ||
      s.steps.size() != s.starts.size())
    refuse(at, "starts, ends, axes and steps must have the same length");
  auto shape = data.shape;
  auto strides = contiguous_strides(data.shape);
  auto in_strides = strides;
  int64_t base = 0;
  for (size_t i = 0; i < s.starts.size(); ++i) {
    auto d = static_cast<size_t>(normalize_axis(s.axes[i], data.rank(), at));
    if (s.steps[i] == 0)
      refuse(at, "step 0 on axis " + std::to_string(s.axes[i]));
    auto axis = clamp_slice(s.starts[i], s.ends[i], s.steps[i], data.shape[d]);
    shape[d] = axis.count;
    base += axis.count > 0 ? axis.first * in_strides[d] : 0;
    strides[d] = in_strides[d] * axis.step;
  }
  return strided_copy(data, base, shape, strides);
}

std::unique_ptr<op_kernel> make_slice(const node& n, const compile_context& ctx) {
  auto at = where(n);
  if (ctx.opset < 10) {
    slice_args attrs{ints_attr(n, "starts"), ints_attr(n, "ends"), ints_attr(n, "axes"), {}};
    return kernel([=](const tensors_in& in, std::vector<value>& out) {
      out[0].t = slice(input(in, 0, at), attrs, at);
    });
  }
  return kernel([=](const tensors_in& in, std::vector<value>& out) {
    out[0].t = slice(input(in, 0, at), slice_inputs(in, at), at);
  });
}

std::unique_ptr<op_kernel> make_expand(const node& n, const compile_context&) {
  auto at = where(n);
  return kernel([=](const tensors_in& in, std::vector<value>& out) {
    auto& data = input(in, 0, at);
    auto target = int_values(input(in, 1, at), at);
    size_t rank = std::max(data.rank(), target.size());
    std::vector<int64_t> shape(rank), strides(rank, 0);
    auto in_strides = contiguous_strides(data.shape);
    for (size_t d = 0; d < rank; ++d) {
      size_t off_in = rank - data.rank(), off_to = rank - target.size();
      int64_t a = d >= off_in ? data.shape[d - off_in] : 1;
      int64_t b = d >= off_to ? target[d - off_to] : 1;
      if (a != b && a != 1 && b != 1)
        refuse(at, "cannot broadcast " + shape_to_string(data.shape) + " to " +
                       shape_to_string(target));
      shape[d] = a == 1 ? b : a;
      strides[d] = a == 1 ? 0 : in_strides[d - off_in];
    }
    out[0].t = strided_copy(data, 0, shape, strides);
  });
}

// ---- Cast -------------------------------------------------------------------------------------

// IEEE half and bfloat16 as 16-bit patterns; conversions round to nearest even.
struct half_bits {
  uint16_t bits;
};
struct bfloat16_bits {
  uint16_t bits;
};

// half_to_float, float_to_half, bfloat16_to_float, float_to_bfloat16: libserve/tensor.hpp.

// Every numeric type as a number the cast goes through: double for floats, the integer itself
// for integers (so that int64 -> int64-ish casts keep all 64 bits).
template <class T> auto widen(T v) {
  if constexpr (std::is_same_v<T, half_bits>)
    return static_cast<double>(half_to_float(v.bits));
  else if constexpr (std::is_same_v<T, bfloat16_bits>)
    return static_cast<double>(bfloat16_to_float(v.bits));
  else if constexpr (std::is_same_v<T, bool>)
    return int64_t{v};
  else
    return v;
}

// Float -> integer: truncate toward zero; NaN -> 0; beyond int64 saturates (then wraps to the
// narrower type like numpy's astype does on x86).
template <class D> D float_to_int(double v) {
  if (std::isnan(v))
    return D{0};
  if constexpr (std::is_same_v<D, uint64_t>)
    if (v >= 9223372036854775808.0)
      return v >= 18446744073709551616.0 ? std::numeric_limits<uint64_t>::max()
                                         : static_cast<uint64_t>(v);
  if (v >= 9223372036854775807.0)
    return static_cast<D>(std::numeric_limits<int64_t>::max());
  if (v <= -9223372036854775808.0)
    return static_cast<D>(std::numeric_limits<int64_t>::min());
  return static_cast<D>(static_cast<int64_t>(v));
}

template <class D, class S> D convert(S s) {
  auto v = widen(s);
  if constexpr (std::is_same_v<D, bool>)
    return v != 0;
  else if constexpr (std::is_same_v<D, half_bits>)
    return D{float_to_half(static_cast<float>(v))};
  else if constexpr (std::is_same_v<D, bfloat16_bits>)
    return D{float_to_bfloat16(static_cast<float>(v))};
  else if constexpr (std::is_integral_v<D> && std::is_floating_point_v<decltype(v)>)
    return float_to_int<D>(v);
  else
    return static_cast<D>(v);
}

// Calls f(T{}) with the C++ type of `t`; false for string and undefined.
template <class F> bool visit_numeric(dtype t, F&& f) {
  switch (t) {
  case dtype::float32:
    f(float{});
    return true;
  case dtype::float64:
    f(double{});
    return true;
  case dtype::float16:
    f(half_bits{});
    return true;
  case dtype::bfloat16:
    f(bfloat16_bits{});
    return true;
  case dtype::int8:
    f(int8_t{});
    return true;
  case dtype::int16:
    f(int16_t{});
    return true;
  case dtype::int32:
    f(int32_t{});
    return true;
  case dtype::int64:
    f(int64_t{});
    return true;
  case dtype::uint8:
    f(uint8_t{});
    return true;
  case dtype::uint16:
    f(uint16_t{});
    return true;
  case dtype::uint32:
    f(uint32_t{});
    return true;
  case dtype::uint64:
    f(uint64_t{});
    return true;
  case dtype::boolean:
    f(bool{});
    return true;
  default:
    return false;
  }
}

tensor cast(const tensor& src, dtype to, const std::string& at) {
  if (src.type == to)
    return src;
  tensor out = tensor::zeros(to, src.shape);
  size_t n = static_cast<size_t>(src.numel());
  bool ok = visit_numeric(src.type, [&](auto s) {
    using S = decltype(s);
    visit_numeric(to, [&](auto d) {
      using D = decltype(d);
      const S* in = src.as<S>();
      D* o = out.as<D>();
      for (size_t i = 0; i < n; ++i)
        o[i] = convert<D>(in[i]);
    });
  });
  if (!ok)
    refuse(at, std::string("cannot cast ") + dtype_name(src.type) + " to " + dtype_name(to) +
                   " (string casts are not supported)");
  return out;
}

std::unique_ptr<op_kernel> make_cast(const node& n, const compile_context&) {
  auto to_attr = n.attr("to");
  if (!to_attr)
    refuse(where(n), "attribute 'to' is required");
  auto to = static_cast<dtype>(to_attr->i);
  if (to == dtype::string || dtype_size(to) == 0)
    refuse(where(n), "cannot cast to element type " + std::to_string(to_attr->i) +
                         " (string and types without a serve::dtype are not supported)");
  auto at = where(n);
  return kernel([=](const tensors_in& in, std::vector<value>& out) {
    out[0].t = cast(input(in, 0, at), to, at);
  });
}

} // namespace

void register_structural_ops(op_registry& r) {
  r.add("", "Identity", 1, make_identity);
  r.add("", "Constant", 1, make_constant);
  r.add("", "Shape", 1, make_shape);
  r.add("", "Shape", 15, make_shape); // start, end
  r.add("", "ConstantOfShape", 9, make_constant_of_shape);
  r.add("", "Gather", 1, make_gather);
  r.add("", "Concat", 1, make_concat);
  r.add("", "Unsqueeze", 1, make_unsqueeze);
  r.add("", "Unsqueeze", 13, make_unsqueeze); // axes as input
  r.add("", "Squeeze", 1, make_squeeze);
  r.add("", "Squeeze", 13, make_squeeze); // axes as input
  r.add("", "Reshape", 5, make_reshape);
  r.add("", "Reshape", 14, make_reshape); // allowzero
  r.add("", "Flatten", 1, make_flatten);
  r.add("", "Transpose", 1, make_transpose);
  r.add("", "Slice", 1, make_slice);
  r.add("", "Slice", 10, make_slice); // starts/ends/axes/steps as inputs
  r.add("", "Expand", 8, make_expand);
  r.add("", "Cast", 6, make_cast);
}

} // namespace serve::onnx_ir
