// Operator family "math" (see op_registry.hpp): Gemm, MatMul, Add/Sub/Mul/Div, Relu, LeakyRelu,
// Sigmoid, Tanh, Softmax, LogSoftmax, ArgMax, Clip, BatchNormalization (inference) and
// ActorServe's FusedGemm (domain ai.actorserve, produced by fusion.cpp).
//
// Factories read and check attributes once; kernels check operand shapes and types per run and
// hand the arithmetic to kernels/cpu. Version semantics follow onnx/docs/Operators.md:
// Add..Div broadcast numpy-style from opset 7 (legacy `broadcast`/`axis` before), Gemm's C is
// optional from 11, Clip takes min/max as inputs from 11, Softmax/LogSoftmax coerce to 2-D
// around `axis` (default 1) before 13 and normalise one axis (default -1) from 13, ArgMax has
// select_last_index from 12.
#include <cmath>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cpu/elementwise.hpp"
#include "kernels/cpu/gemm.hpp"
#include "kernels/cpu/softmax.hpp"
#include "libserve/future.hpp"
#include "libserve/onnx/fusion.hpp"
#include "libserve/onnx/op_registry.hpp"

namespace serve::onnx_ir {

namespace {

namespace cpu = serve::kernels::cpu;
using shape_t = std::vector<int64_t>;
using inputs_t = std::vector<const value*>;
using outputs_t = std::vector<value>;

// ---- plumbing ---------------------------------------------------------------------------

/// "Gemm 'fc1'": how errors name a node.
std::string label(const node& n) {
  return n.name.empty() ? n.op_type : n.op_type + " '" + n.name + "'";
}

[[noreturn]] void fail(const std::string& who, const std::string& what) {
  throw serve_exception(errc::invalid_argument, who + ": " + what);
}

/// Input `i`, which must be present and a tensor.
const tensor& input(const std::string& who, const inputs_t& in, size_t i) {
  if (i >= in.size() || in[i] == nullptr)
    fail(who, "input " + std::to_string(i) + " is missing");
  if (in[i]->maps)
    fail(who, "input " + std::to_string(i) + " is not a tensor");
  return in[i]->t;
}

/// Input `i` when given, else nullptr.
const tensor* optional_input(const std::string& who, const inputs_t& in, size_t i) {
  if (i >= in.size() || in[i] == nullptr)
    return nullptr;
  return &input(who, in, i);
}

tensor& make_output(outputs_t& out, dtype type, shape_t shape) {
  out.at(0).t = tensor::zeros(type, std::move(shape));
  return out[0].t;
}

/// A kernel whose run() is a lambda holding the compiled attributes (immutable after load).
template <class F> class lambda_kernel final : public op_kernel {
public:
  explicit lambda_kernel(F f) : f_(std::move(f)) {}
  void run(const inputs_t& in, outputs_t& out) const override { f_(in, out); }

private:
  F f_;
};

template <class F> std::unique_ptr<op_kernel> make_kernel(F f) {
  return std::make_unique<lambda_kernel<F>>(std::move(f));
}

/// Calls f(T{}) with T the C++ type of float32/float64 tensors; anything else fails.
template <class F> void with_float_type(const std::string& who, dtype t, F&& f) {
  if (t == dtype::float32)
    f(float{});
  else if (t == dtype::float64)
    f(double{});
  else
    fail(who, std::string("element type ") + dtype_name(t) + " is not supported (float, double)");
}

/// Normalises an axis in [-rank, rank) to [0, rank).
int64_t normalize_axis(const std::string& who, int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= rank)
    fail(who, "axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  return axis < 0 ? axis + rank : axis;
}

int64_t product(const shape_t& s, size_t from, size_t to) {
  int64_t p = 1;
  for (size_t i = from; i < to; ++i)
    p *= s[i];
  return p;
}

// ---- Add, Sub, Mul, Div -------------------------------------------------------------------

template <class T>
void run_binary(cpu::binary_op op, const tensor& a, const shape_t& b_shape, const tensor& b,
                const shape_t& out_shape, outputs_t& out) {
  tensor& y = make_output(out, a.type, out_shape);
  cpu::binary(op, a.as<T>(), a.shape, b.as<T>(), b_shape, y.as<T>());
}

std::unique_ptr<op_kernel> binary_factory(cpu::binary_op op, const node& n,
                                          const compile_context& ctx) {
  // Before opset 7: no broadcasting unless broadcast = 1; then B aligns with A at `axis`
  // (default: with A's trailing dims).
  const bool legacy = ctx.opset < 7;
  const bool legacy_broadcast = legacy && n.attr_int("broadcast", 0) != 0;
  const bool has_axis = n.attr("axis") != nullptr;
  const int64_t axis = n.attr_int("axis", 0);
  return make_kernel([op, who = label(n), legacy, legacy_broadcast, has_axis,
                      axis](const inputs_t& in, outputs_t& out) {
    const tensor& a = input(who, in, 0);
    const tensor& b = input(who, in, 1);
    if (a.type != b.type)
      fail(who, std::string("operand types differ: ") + dtype_name(a.type) + " and " +
                    dtype_name(b.type));
    shape_t b_shape = b.shape;
    if (legacy && !legacy_broadcast && a.shape != b.shape)
      fail(who, "shapes " + shape_to_string(a.shape) + " and " + shape_to_string(b.shape) +
                    " differ and broadcast is 0");
    if (legacy_broadcast && has_axis) { // B's dims sit at A's dims axis..axis+rank(B)
      const int64_t at = normalize_axis(who, axis, int64_t(a.rank()));
      if (at + int64_t(b.rank()) > int64_t(a.rank()))
        fail(who,
             "B " + shape_to_string(b.shape) + " does not fit A at axis " + std::to_string(axis));
      b_shape.resize(a.rank() - at, 1);
    }
    shape_t out_shape;
    if (!cpu::broadcast_shapes(a.shape, b_shape, out_shape))
      fail(who, "shapes " + shape_to_string(a.shape) + " and " + shape_to_string(b.shape) +
                    " do not broadcast");
    if (legacy && out_shape != a.shape)
      fail(who,
           "B " + shape_to_string(b.shape) + " must broadcast to A " + shape_to_string(a.shape));
    try {
      switch (a.type) {
      case dtype::float32:
        return run_binary<float>(op, a, b_shape, b, out_shape, out);
      case dtype::float64:
        return run_binary<double>(op, a, b_shape, b, out_shape, out);
      case dtype::int32:
        return run_binary<int32_t>(op, a, b_shape, b, out_shape, out);
      case dtype::int64:
        return run_binary<int64_t>(op, a, b_shape, b, out_shape, out);
      case dtype::uint8:
        return run_binary<uint8_t>(op, a, b_shape, b, out_shape, out);
      default:
        fail(who, std::string("element type ") + dtype_name(a.type) +
                      " is not supported (float, double, int32, int64, uint8)");
      }
    } catch (const std::logic_error& e) { // domain_error (x / 0), invalid_argument (rank)
      fail(who, e.what());
    }
  });
}

// ---- Relu, LeakyRelu, Sigmoid, Tanh, Clip ---------------------------------------------------

std::unique_ptr<op_kernel> activation_factory(cpu::activation act, const node& n) {
  const float alpha = n.attr_float("alpha", 0.01f);
  return make_kernel([act, alpha, who = label(n)](const inputs_t& in, outputs_t& out) {
    const tensor& x = input(who, in, 0);
    if (act == cpu::activation::relu && (x.type == dtype::int32 || x.type == dtype::int64 ||
                                         x.type == dtype::int8)) { // Relu-14 integer types
      tensor& y = make_output(out, x.type, x.shape);
      if (x.type == dtype::int32)
        cpu::clip(x.as<int32_t>(), y.as<int32_t>(), x.numel(), 0,
                  std::numeric_limits<int32_t>::max());
      else if (x.type == dtype::int64)
        cpu::clip(x.as<int64_t>(), y.as<int64_t>(), x.numel(), int64_t(0),
                  std::numeric_limits<int64_t>::max());
      else
        cpu::clip(x.as<int8_t>(), y.as<int8_t>(), x.numel(), int8_t(0), int8_t(127));
      return;
    }
    with_float_type(who, x.type, [&](auto zero) {
      using T = decltype(zero);
      tensor& y = make_output(out, x.type, x.shape);
      cpu::activate(act, x.as<T>(), y.as<T>(), x.numel(), T(alpha));
    });
  });
}

/// The scalar bound tensor `t` (Clip-11 min/max input) as T.
template <class T>
T clip_bound(const std::string& who, const tensor* t, dtype expected, T fallback) {
  if (t == nullptr)
    return fallback;
  if (t->type != expected || t->numel() != 1)
    fail(who, "min/max must be a single " + std::string(dtype_name(expected)) + "; got " +
                  dtype_name(t->type) + " " + shape_to_string(t->shape));
  return *t->as<T>();
}

template <class T>
void run_clip(const std::string& who, const tensor& x, const tensor* lo_t, const tensor* hi_t,
              bool from_inputs, float lo_attr, float hi_attr, outputs_t& out) {
  T lo = std::numeric_limits<T>::lowest(), hi = std::numeric_limits<T>::max();
  if (from_inputs) {
    lo = clip_bound<T>(who, lo_t, x.type, lo);
    hi = clip_bound<T>(who, hi_t, x.type, hi);
  } else {
    lo = T(lo_attr);
    hi = T(hi_attr);
  }
  tensor& y = make_output(out, x.type, x.shape);
  cpu::clip(x.as<T>(), y.as<T>(), x.numel(), lo, hi);
}

std::unique_ptr<op_kernel> clip_factory(const node& n, const compile_context& ctx) {
  const bool from_inputs = ctx.opset >= 11;
  const float lo = n.attr_float("min", std::numeric_limits<float>::lowest());
  const float hi = n.attr_float("max", std::numeric_limits<float>::max());
  return make_kernel([from_inputs, lo, hi, who = label(n)](const inputs_t& in, outputs_t& out) {
    const tensor& x = input(who, in, 0);
    const tensor* lo_t = from_inputs ? optional_input(who, in, 1) : nullptr;
    const tensor* hi_t = from_inputs ? optional_input(who, in, 2) : nullptr;
    switch (x.type) {
    case dtype::float32:
      return run_clip<float>(who, x, lo_t, hi_t, from_inputs, lo, hi, out);
    case dtype::float64:
      return run_clip<double>(who, x, lo_t, hi_t, from_inputs, lo, hi, out);
    case dtype::int8:
      return run_clip<int8_t>(who, x, lo_t, hi_t, from_inputs, lo, hi, out);
    case dtype::uint8:
      return run_clip<uint8_t>(who, x, lo_t, hi_t, from_inputs, lo, hi, out);
    case dtype::int32:
      return run_clip<int32_t>(who, x, lo_t, hi_t, from_inputs, lo, hi, out);
    case dtype::int64:
      return run_clip<int64_t>(who, x, lo_t, hi_t, from_inputs, lo, hi, out);
    default:
      fail(who, std::string("element type ") + dtype_name(x.type) + " is not supported");
    }
  });
}

// ---- Softmax, LogSoftmax --------------------------------------------------------------------

std::unique_ptr<op_kernel> softmax_factory(bool log, const node& n, const compile_context& ctx) {
  const bool coerce_2d = ctx.opset < 13;
  const int64_t axis = n.attr_int("axis", coerce_2d ? 1 : -1);
  return make_kernel([log, coerce_2d, axis, who = label(n)](const inputs_t& in, outputs_t& out) {
    const tensor& x = input(who, in, 0);
    const int64_t rank = int64_t(x.rank());
    // Before 13, axis == rank is accepted as the 2-D coercion's formula reads it: every dim in
    // the rows, rows of one element (e.g. the default axis 1 on a 1-D input).
    const int64_t a = coerce_2d && (axis == rank || (rank == 0 && axis == 0))
                          ? rank
                          : normalize_axis(who, axis, rank);
    const int64_t outer = product(x.shape, 0, size_t(a));
    const int64_t len = coerce_2d ? product(x.shape, size_t(a), x.rank()) : x.shape[a];
    const int64_t inner = coerce_2d ? 1 : product(x.shape, size_t(a) + 1, x.rank());
    with_float_type(who, x.type, [&](auto zero) {
      using T = decltype(zero);
      tensor& y = make_output(out, x.type, x.shape);
      if (log)
        cpu::log_softmax(x.as<T>(), y.as<T>(), outer, len, inner);
      else
        cpu::softmax(x.as<T>(), y.as<T>(), outer, len, inner);
    });
  });
}

// ---- ArgMax -----------------------------------------------------------------------------------

template <class T>
void argmax(const T* x, int64_t* y, int64_t outer, int64_t len, int64_t inner, bool last) {
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const T* p = x + o * len * inner + i;
      int64_t best = 0;
      T best_value = p[0];
      for (int64_t d = 1; d < len; ++d) {
        const T v = p[d * inner];
        if (v > best_value || (last && v == best_value)) {
          best_value = v;
          best = d;
        }
      }
      y[o * inner + i] = best;
    }
}

std::unique_ptr<op_kernel> argmax_factory(const node& n, const compile_context& ctx) {
  const int64_t axis = n.attr_int("axis", 0);
  const bool keepdims = n.attr_int("keepdims", 1) != 0;
  const bool last = ctx.opset >= 12 && n.attr_int("select_last_index", 0) != 0;
  return make_kernel([axis, keepdims, last, who = label(n)](const inputs_t& in, outputs_t& out) {
    const tensor& x = input(who, in, 0);
    const int64_t a = normalize_axis(who, axis, int64_t(x.rank()));
    const int64_t len = x.shape[a];
    if (len == 0)
      fail(who, "cannot take the arg max over an empty axis");
    shape_t out_shape = x.shape;
    if (keepdims)
      out_shape[a] = 1;
    else
      out_shape.erase(out_shape.begin() + a);
    const int64_t outer = product(x.shape, 0, size_t(a));
    const int64_t inner = product(x.shape, size_t(a) + 1, x.rank());
    tensor& y = make_output(out, dtype::int64, out_shape);
    int64_t* dst = y.as<int64_t>();
    switch (x.type) {
    case dtype::float32:
      return argmax(x.as<float>(), dst, outer, len, inner, last);
    case dtype::float64:
      return argmax(x.as<double>(), dst, outer, len, inner, last);
    case dtype::int32:
      return argmax(x.as<int32_t>(), dst, outer, len, inner, last);
    case dtype::int64:
      return argmax(x.as<int64_t>(), dst, outer, len, inner, last);
    case dtype::int8:
      return argmax(x.as<int8_t>(), dst, outer, len, inner, last);
    case dtype::uint8:
      return argmax(x.as<uint8_t>(), dst, outer, len, inner, last);
    default:
      fail(who, std::string("element type ") + dtype_name(x.type) + " is not supported");
    }
  });
}

// ---- BatchNormalization (inference) ---------------------------------------------------------

/// Per-channel y = x * scale[c] + shift[c], folded from scale, B, mean, var and epsilon.
template <class T>
void fold_batchnorm(const tensor& s, const tensor& b, const tensor& mean, const tensor& var,
                    double epsilon, std::vector<T>& scale, std::vector<T>& shift) {
  const int64_t channels = s.numel();
  scale.resize(channels);
  shift.resize(channels);
  for (int64_t c = 0; c < channels; ++c) {
    const double k = double(s.as<T>()[c]) / std::sqrt(double(var.as<T>()[c]) + epsilon);
    scale[c] = T(k);
    shift[c] = T(double(b.as<T>()[c]) - double(mean.as<T>()[c]) * k);
  }
}

template <class T>
void run_batchnorm(const tensor& x, const T* scale, const T* shift, outputs_t& out) {
  const int64_t batch = x.shape[0], channels = x.shape[1];
  const int64_t inner = product(x.shape, 2, x.rank());
  tensor& y = make_output(out, x.type, x.shape);
  const T* src = x.as<T>();
  T* dst = y.as<T>();
  if (inner == 1) { // [N, C]: vectorise across channels
    for (int64_t i = 0; i < batch; ++i)
      for (int64_t c = 0; c < channels; ++c)
        dst[i * channels + c] = src[i * channels + c] * scale[c] + shift[c];
    return;
  }
  for (int64_t i = 0; i < batch; ++i)
    for (int64_t c = 0; c < channels; ++c) {
      const int64_t at = (i * channels + c) * inner;
      cpu::scale_shift(src + at, dst + at, inner, scale[c], shift[c]);
    }
}

std::unique_ptr<op_kernel> batchnorm_factory(const node& n, const compile_context& ctx) {
  const std::string who = label(n);
  if (n.attr_int("training_mode", 0) != 0)
    fail(who, "training_mode = 1 is not supported (inference only)");
  if (n.attr_int("spatial", 1) == 0)
    fail(who, "spatial = 0 is not supported");
  for (size_t i = 1; i < n.outputs.size(); ++i)
    if (!n.outputs[i].empty())
      fail(who, "the training outputs (running mean/var) are not supported");
  const double epsilon = n.attr_float("epsilon", 1e-5f);
  // Constant parameters (the usual case) fold once into a float scale/shift pair.
  auto folded = std::make_shared<std::pair<std::vector<float>, std::vector<float>>>();
  bool constant = ctx.constants != nullptr && n.inputs.size() >= 5;
  for (size_t i = 1; constant && i < 5; ++i) {
    auto c = ctx.constants->find(n.inputs[i]);
    constant = c != ctx.constants->end() && c->second.type == dtype::float32;
  }
  if (constant) {
    auto& k = *ctx.constants;
    const tensor& s = k.at(n.inputs[1]);
    for (size_t i = 2; i < 5; ++i)
      if (k.at(n.inputs[i]).numel() != s.numel())
        fail(who, "scale, B, mean and var must have the same number of channels");
    fold_batchnorm(s, k.at(n.inputs[2]), k.at(n.inputs[3]), k.at(n.inputs[4]), epsilon,
                   folded->first, folded->second);
  } else {
    folded.reset();
  }
  return make_kernel([who, epsilon, folded](const inputs_t& in, outputs_t& out) {
    const tensor& x = input(who, in, 0);
    if (x.rank() < 2)
      fail(who, "X must have rank >= 2 ([N, C, ...]); got " + shape_to_string(x.shape));
    const int64_t channels = x.shape[1];
    for (size_t i = 1; i < 5; ++i) {
      const tensor& p = input(who, in, i);
      if (p.numel() != channels || p.type != x.type)
        fail(who, "input " + std::to_string(i) + " must hold " + std::to_string(channels) +
                      " values of X's type; got " + dtype_name(p.type) + " " +
                      shape_to_string(p.shape));
    }
    if (folded && x.type == dtype::float32)
      return run_batchnorm<float>(x, folded->first.data(), folded->second.data(), out);
    with_float_type(who, x.type, [&](auto zero) {
      using T = decltype(zero);
      std::vector<T> scale, shift;
      fold_batchnorm<T>(in[1]->t, in[2]->t, in[3]->t, in[4]->t, epsilon, scale, shift);
      run_batchnorm<T>(x, scale.data(), shift.data(), out);
    });
  });
}

// ---- Gemm, FusedGemm, MatMul --------------------------------------------------------------

/// How C broadcasts to the product's shape `mm`; `out` gets the result shape (mm with leading
/// 1s when C has more dims). Fails when C would expand the product or mixes patterns.
cpu::bias_kind classify_bias(const std::string& who, const shape_t& c, const shape_t& mm,
                             shape_t& out) {
  if (!cpu::broadcast_shapes(mm, c, out) || shape_numel(out) != shape_numel(mm))
    fail(who, "C " + shape_to_string(c) + " does not broadcast to " + shape_to_string(mm));
  if (shape_numel(c) == 1)
    return cpu::bias_kind::scalar;
  shape_t padded(out.size() - c.size(), 1);
  padded.insert(padded.end(), c.begin(), c.end());
  const int64_t last = padded.back();
  if (shape_numel(padded) == last)
    return cpu::bias_kind::row;
  if (padded == out)
    return cpu::bias_kind::full;
  if (last == 1 && std::equal(padded.begin(), padded.end() - 1, out.begin()))
    return cpu::bias_kind::column;
  fail(who, "C " + shape_to_string(c) + " broadcasts to " + shape_to_string(out) +
                " in a pattern Gemm does not support");
}

/// The compiled attributes of Gemm and FusedGemm.
struct gemm_config {
  std::string who;
  bool trans_a = false, trans_b = false;
  float alpha = 1, beta = 1;
  cpu::activation act = cpu::activation::none;
  float act_alpha = 0.01f;
  /// FusedGemm: A may have any rank >= 1 when not transposed (MatMul with a 2-D B: leading
  /// dims fold into M) and C may broadcast from more dims. Gemm: A and C as in ONNX.
  bool matmul_like = false;
  /// > 0: B is a float32 [K, N] in column panels of this width (pack_gemm_weights, fusion.hpp).
  int64_t b_panel_width = 0;
};

void run_gemm(const gemm_config& g, const inputs_t& in, outputs_t& out) {
  const tensor& a = input(g.who, in, 0);
  const tensor& b = input(g.who, in, 1);
  const tensor* c = optional_input(g.who, in, 2);
  if (a.type != b.type || (c && c->type != a.type))
    fail(g.who, "A, B and C must have the same element type");
  if (b.rank() != 2)
    fail(g.who, "B must be 2-D; got " + shape_to_string(b.shape));
  const bool folded = g.matmul_like && !g.trans_a && a.rank() != 2 && a.rank() >= 1;
  if (a.rank() != 2 && !folded)
    fail(g.who, "A must be 2-D; got " + shape_to_string(a.shape));
  const int64_t K = g.trans_a ? a.shape[0] : a.shape.back();
  const int64_t M = folded      ? product(a.shape, 0, a.rank() - 1)
                    : g.trans_a ? a.shape[1]
                                : a.shape[0];
  const int64_t K2 = g.trans_b ? b.shape[1] : b.shape[0];
  const int64_t N = g.trans_b ? b.shape[0] : b.shape[1];
  if (K != K2)
    fail(g.who, "inner dimensions differ: A " + shape_to_string(a.shape) + ", B " +
                    shape_to_string(b.shape) + (g.trans_a ? " (A transposed)" : "") +
                    (g.trans_b ? " (B transposed)" : ""));
  shape_t mm = folded ? shape_t(a.shape.begin(), a.shape.end() - 1) : shape_t{M};
  mm.push_back(N);
  shape_t out_shape = mm;
  cpu::bias_kind bias = cpu::bias_kind::none;
  if (c) {
    if (!g.matmul_like && c->rank() > 2)
      fail(g.who, "C must have rank <= 2; got " + shape_to_string(c->shape));
    bias = classify_bias(g.who, c->shape, mm, out_shape);
  }
  if (g.b_panel_width > 0) { // the loader packed B: A is not transposed
    if (a.type != dtype::float32)
      fail(g.who, "A must be float32 with these weights; got " + std::string(dtype_name(a.type)));
    tensor& y = make_output(out, a.type, out_shape);
    cpu::gemm_bias_act_panels(M, N, K, g.alpha, a.as<float>(), b.as<float>(), g.b_panel_width,
                              g.beta, c ? c->as<float>() : nullptr, bias, y.as<float>(), g.act,
                              g.act_alpha);
    return;
  }
  with_float_type(g.who, a.type, [&](auto zero) {
    using T = decltype(zero);
    tensor& y = make_output(out, a.type, out_shape);
    cpu::gemm_bias_act(g.trans_a, g.trans_b, M, N, K, T(g.alpha), a.as<T>(), b.as<T>(), T(g.beta),
                       c ? c->as<T>() : nullptr, bias, y.as<T>(), g.act, T(g.act_alpha));
  });
}

std::unique_ptr<op_kernel> gemm_factory(const node& n, const compile_context& ctx, bool fused) {
  gemm_config g;
  g.who = label(n);
  g.trans_a = n.attr_int("transA", 0) != 0;
  g.trans_b = n.attr_int("transB", 0) != 0;
  g.alpha = n.attr_float("alpha", 1.0f);
  g.beta = n.attr_float("beta", 1.0f);
  g.matmul_like = fused;
  g.b_panel_width = n.attr_int(b_panel_width_attribute, 0);
  if (g.b_panel_width > 0 && g.trans_a)
    fail(g.who, "weights in column panels need A not transposed");
  if (!fused && ctx.opset < 11 && (n.inputs.size() < 3 || n.inputs[2].empty()))
    fail(g.who, "input C is required before opset 11");
  if (fused) {
    const std::string act = n.attr_string("activation", "");
    g.act_alpha = n.attr_float("activation_alpha", 0.01f);
    if (act == "Relu")
      g.act = cpu::activation::relu;
    else if (act == "LeakyRelu")
      g.act = cpu::activation::leaky_relu;
    else if (act == "Sigmoid")
      g.act = cpu::activation::sigmoid;
    else if (act == "Tanh")
      g.act = cpu::activation::tanh;
    else if (!act.empty())
      fail(g.who, "activation \"" + act + "\" is not one of Relu, LeakyRelu, Sigmoid, Tanh");
  }
  return make_kernel([g](const inputs_t& in, outputs_t& out) { run_gemm(g, in, out); });
}

template <class T>
void run_matmul(const tensor& a, const tensor& b, const shape_t& out_shape, int64_t M, int64_t N,
                int64_t K, const shape_t& batch, const shape_t& a_batch, const shape_t& b_batch,
                outputs_t& out) {
  tensor& y = make_output(out, a.type, out_shape);
  const int64_t count = shape_numel(batch);
  const int64_t a_count = shape_numel(a_batch), b_count = shape_numel(b_batch);
  if (count == 0 || M == 0 || N == 0)
    return;
  const T* pa = a.as<T>();
  const T* pb = b.as<T>();
  T* py = y.as<T>();
  if (b_count == 1 || a_count == 1 || a_batch == b_batch) // one GEMM or a strided batch
    return cpu::gemm_strided_batched(false, false, M, N, K, T(1), pa, a_count == 1 ? 0 : M * K, pb,
                                     b_count == 1 ? 0 : K * N, py, M * N, count);
  // General batch broadcasting: one GEMM per output batch index.
  const size_t rank = batch.size();
  for (int64_t i = 0; i < count; ++i) {
    int64_t rest = i, a_index = 0, b_index = 0, a_stride = 1, b_stride = 1;
    for (size_t d = rank; d-- > 0;) {
      const int64_t coord = rest % batch[d];
      rest /= batch[d];
      const size_t ad = d + a_batch.size() - rank, bd = d + b_batch.size() - rank;
      if (d + a_batch.size() >= rank) {
        a_index += (a_batch[ad] == 1 ? 0 : coord) * a_stride;
        a_stride *= a_batch[ad];
      }
      if (d + b_batch.size() >= rank) {
        b_index += (b_batch[bd] == 1 ? 0 : coord) * b_stride;
        b_stride *= b_batch[bd];
      }
    }
    cpu::gemm_bias_act(false, false, M, N, K, T(1), pa + a_index * M * K, pb + b_index * K * N,
                       T(0), nullptr, cpu::bias_kind::none, py + i * M * N);
  }
}

std::unique_ptr<op_kernel> matmul_factory(const node& n, const compile_context&) {
  return make_kernel([who = label(n)](const inputs_t& in, outputs_t& out) {
    const tensor& a = input(who, in, 0);
    const tensor& b = input(who, in, 1);
    if (a.type != b.type)
      fail(who, "A and B must have the same element type");
    if (a.rank() == 0 || b.rank() == 0)
      fail(who, "operands must have rank >= 1");
    // numpy.matmul: a 1-D A is a row [1, K], a 1-D B a column [K, 1]; the added dim is
    // removed from the result. Dims before the last two broadcast.
    const bool a_vec = a.rank() == 1, b_vec = b.rank() == 1;
    const int64_t M = a_vec ? 1 : a.shape[a.rank() - 2];
    const int64_t K = a.shape.back();
    const int64_t K2 = b_vec ? b.shape[0] : b.shape[b.rank() - 2];
    const int64_t N = b_vec ? 1 : b.shape.back();
    if (K != K2)
      fail(who, "inner dimensions differ: " + shape_to_string(a.shape) + " x " +
                    shape_to_string(b.shape));
    const shape_t a_batch(a.shape.begin(), a.shape.end() - (a_vec ? 1 : 2));
    const shape_t b_batch(b.shape.begin(), b.shape.end() - (b_vec ? 1 : 2));
    shape_t batch;
    if (!cpu::broadcast_shapes(a_batch, b_batch, batch))
      fail(who, "batch dimensions do not broadcast: " + shape_to_string(a.shape) + " x " +
                    shape_to_string(b.shape));
    shape_t out_shape = batch;
    if (!a_vec)
      out_shape.push_back(M);
    if (!b_vec)
      out_shape.push_back(N);
    with_float_type(who, a.type, [&](auto zero) {
      run_matmul<decltype(zero)>(a, b, out_shape, M, N, K, batch, a_batch, b_batch, out);
    });
  });
}

} // namespace

void register_math_ops(op_registry& r) {
  using cpu::binary_op;
  const std::pair<const char*, binary_op> binaries[] = {{"Add", binary_op::add},
                                                        {"Sub", binary_op::sub},
                                                        {"Mul", binary_op::mul},
                                                        {"Div", binary_op::div}};
  for (auto [name, op] : binaries) {
    auto factory = [op = op](const node& n, const compile_context& ctx) {
      return binary_factory(op, n, ctx);
    };
    r.add(default_domain, name, 1, factory); // legacy broadcast attribute
    r.add(default_domain, name, 7, factory); // numpy broadcasting
  }
  const std::pair<const char*, cpu::activation> activations[] = {
      {"Relu", cpu::activation::relu},
      {"LeakyRelu", cpu::activation::leaky_relu},
      {"Sigmoid", cpu::activation::sigmoid},
      {"Tanh", cpu::activation::tanh}};
  for (auto [name, act] : activations)
    r.add(default_domain, name, 1, [act = act](const node& n, const compile_context&) {
      return activation_factory(act, n);
    });
  r.add(default_domain, "Clip", 1, clip_factory);  // min/max attributes
  r.add(default_domain, "Clip", 11, clip_factory); // min/max inputs
  for (bool log : {false, true}) {
    auto factory = [log](const node& n, const compile_context& ctx) {
      return softmax_factory(log, n, ctx);
    };
    r.add(default_domain, log ? "LogSoftmax" : "Softmax", 1, factory);  // 2-D coercion
    r.add(default_domain, log ? "LogSoftmax" : "Softmax", 13, factory); // one axis
  }
  r.add(default_domain, "ArgMax", 1, argmax_factory);
  r.add(default_domain, "ArgMax", 12, argmax_factory); // select_last_index
  r.add(default_domain, "BatchNormalization", 7, batchnorm_factory);
  auto gemm = [](const node& n, const compile_context& ctx) { return gemm_factory(n, ctx, false); };
  r.add(default_domain, "Gemm", 1, gemm);  // C required
  r.add(default_domain, "Gemm", 11, gemm); // C optional
  r.add(default_domain, "MatMul", 1, matmul_factory);
  r.add(actorserve_domain, "FusedGemm", 1,
        [](const node& n, const compile_context& ctx) { return gemm_factory(n, ctx, true); });
}

} // namespace serve::onnx_ir
