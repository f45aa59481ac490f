// moe_harness.gpu entries of the routing kernels (softmax top-k, grouped top-k,
// the fused sigmoid top-1 router), the quantizers and the FP8/INT8 fused layer.
// Names, keyword arguments and output conventions are those of the CPU
// references in module.cpp; outputs are caller-provided tensors, returned.
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "arrays.hpp"
#include "dlpack_tensor.hpp"
#include "gpu_common.hpp"
#include "kernels/fused_moe/fused_moe.hpp"
#include "kernels/fused_moe_q8/fused_moe_q8.hpp"
#include "kernels/moe_align/moe_align.hpp"
#include "kernels/quant/quant.hpp"
#include "kernels/routing/routing.hpp"
#include "layer_shapes.hpp"
#include "quant_args.hpp"
#include "routing_args.hpp"
#include "moe/error.hpp"

namespace moe::python {
namespace {

using namespace py::literals;

constexpr std::initializer_list<ElemType> kFloatTypes = {ElemType::F32, ElemType::BF16, ElemType::F16};
constexpr std::initializer_list<ElemType> kHalfTypes = {ElemType::BF16, ElemType::F16};

DType dtype_of(ElemType t) {
  switch (t) {
    case ElemType::BF16: return DType::BF16;
    case ElemType::F16: return DType::F16;
    default: return DType::F32;
  }
}

void require_shape(const BorrowedTensor& t, const std::vector<int64_t>& want, const std::string& why) {
  if (t.shape != want)
    throw py::value_error(fmt::format("{}: expected shape {} ({}), got {}", t.name, shape_text(want), why, shape_text(t.shape)));
}

// ---- routing ----------------------------------------------------------------------------
// topk_weights (float32) and topk_ids (int32), each (tokens, cols).
struct TopkOutputs {
  BorrowedTensor weights, ids;
};

TopkOutputs borrow_topk_outputs(py::handle topk_weights, py::handle topk_ids, int64_t tokens, int64_t cols,
                                const std::string& why, const py::object& producer_stream) {
  TopkOutputs o;
  o.weights = borrow_gpu_tensor(topk_weights, "topk_weights", 2, {ElemType::F32}, producer_stream);
  require_shape(o.weights, {tokens, cols}, why);
  o.ids = borrow_gpu_tensor(topk_ids, "topk_ids", 2, {ElemType::I32}, producer_stream);
  require_shape(o.ids, {tokens, cols}, why);
  return o;
}

py::tuple softmax_topk(py::handle logits, py::object topk_weights, py::object topk_ids, int32_t top_k, bool renormalize,
                       py::object stream) {
  const uintptr_t handle = stream_handle(stream);
  const py::object producer_stream = producer_stream_arg(handle);
  const BorrowedTensor x = borrow_gpu_tensor(logits, "logits", 2, kFloatTypes, producer_stream);
  const routing::SoftmaxTopkParams p = softmax_topk_params(x.shape[0], x.shape[1], top_k, renormalize, dtype_of(x.type));
  const TopkOutputs o = borrow_topk_outputs(topk_weights, topk_ids, p.tokens, top_k,
                                            fmt::format("tokens of logits {}, top_k", shape_text(x.shape)), producer_stream);
  require_current_device({&x, &o.weights, &o.ids});
  {
    py::gil_scoped_release unlocked;
    routing::softmax_topk(x.data, static_cast<float*>(o.weights.data), static_cast<int32_t*>(o.ids.data), p, {},
                          reinterpret_cast<hipStream_t>(handle));
  }
  return py::make_tuple(topk_weights, topk_ids);
}

py::tuple grouped_topk(py::handle logits, py::object topk_weights, py::object topk_ids, int32_t top_k, int32_t n_group,
                       int32_t topk_group, const std::string& scoring, bool renormalize, float routed_scaling_factor,
                       py::object bias, py::object stream) {
  const uintptr_t handle = stream_handle(stream);
  const py::object producer_stream = producer_stream_arg(handle);
  const BorrowedTensor x = borrow_gpu_tensor(logits, "logits", 2, kFloatTypes, producer_stream);
  const routing::GroupedTopkParams p = grouped_topk_params(x.shape[0], x.shape[1], top_k, n_group, topk_group, scoring,
                                                          renormalize, routed_scaling_factor, dtype_of(x.type));
  BorrowedTensor b;
  if (!bias.is_none()) {
    b = borrow_gpu_tensor(bias, "bias", 1, {ElemType::F32}, producer_stream);
    require_shape(b, {x.shape[1]}, fmt::format("one value per expert of logits {}", shape_text(x.shape)));
  }
  const TopkOutputs o = borrow_topk_outputs(topk_weights, topk_ids, p.tokens, top_k,
                                            fmt::format("tokens of logits {}, top_k", shape_text(x.shape)), producer_stream);
  require_current_device({&x, &o.weights, &o.ids});
  if (!bias.is_none()) require_current_device({&b});
  {
    py::gil_scoped_release unlocked;
    routing::grouped_topk(x.data, static_cast<const float*>(b.data), static_cast<float*>(o.weights.data),
                          static_cast<int32_t*>(o.ids.data), p, {}, reinterpret_cast<hipStream_t>(handle));
  }
  return py::make_tuple(topk_weights, topk_ids);
}

py::tuple sigmoid_top1(py::handle x, py::handle w, py::object topk_weights, py::object topk_ids, bool shared_expert,
                       py::object stream) {
  const uintptr_t handle = stream_handle(stream);
  const py::object producer_stream = producer_stream_arg(handle);
  const BorrowedTensor xt = borrow_gpu_tensor(x, "x", 2, kHalfTypes, producer_stream);
  const BorrowedTensor wt = borrow_gpu_tensor(w, "w", 2, kHalfTypes, producer_stream);
  require_same_type(wt, xt);
  if (wt.shape[0] != xt.shape[1])
    throw py::value_error(fmt::format("w: expected shape ({}, E) (K rows, as x {}), got {}", xt.shape[1],
                                      shape_text(xt.shape), shape_text(wt.shape)));
  const routing::SigmoidTop1Params p =
      sigmoid_top1_params(xt.shape[0], xt.shape[1], wt.shape[1], dtype_of(xt.type), shared_expert);
  const TopkOutputs o =
      borrow_topk_outputs(topk_weights, topk_ids, p.tokens, p.out_cols(),
                          fmt::format("tokens of x {}, {}", shape_text(xt.shape),
                                      shared_expert ? "2 columns with shared_expert" : "1 column"),
                          producer_stream);
  require_current_device({&xt, &wt, &o.weights, &o.ids});
  {
    py::gil_scoped_release unlocked;
    const auto s = reinterpret_cast<hipStream_t>(handle);
    const size_t ws_bytes = routing::sigmoid_top1_workspace_bytes(p);
    StreamScratch scratch(s);
    const size_t ws_at = scratch.reserve(static_cast<int64_t>(ws_bytes));
    scratch.allocate();
    void* ws = ws_bytes ? scratch.at<void>(ws_at) : nullptr;
    if (ws) routing::sigmoid_top1_workspace_init(ws, ws_bytes, s);
    routing::sigmoid_top1(xt.data, wt.data, static_cast<float*>(o.weights.data), static_cast<int32_t*>(o.ids.data), ws,
                          ws_bytes, p, {}, s);
  }
  return py::make_tuple(topk_weights, topk_ids);
}

// ---- quantizers -------------------------------------------------------------------------------
ElemType code_type(quant::QType t) { return t == quant::QType::INT8 ? ElemType::I8 : ElemType::U8; }

py::tuple quantize(py::handle x, py::object q, py::object scales, const std::string& qtype, const std::string& granularity,
                   int64_t group, const std::string& group_layout, int64_t block_rows, int64_t block_cols,
                   py::object static_scales, const std::string& name, py::object stream) {
  const uintptr_t handle = stream_handle(stream);
  const py::object producer_stream = producer_stream_arg(handle);
  const BorrowedTensor xt = borrow_gpu_tensor(x, name, -1, kFloatTypes, producer_stream);
  const auto spec = quant_spec(qtype, granularity, group, group_layout, block_rows, block_cols, !static_scales.is_none());
  const quant::QuantProblem p = quant_problem(xt.shape, dtype_of(xt.type), spec, name);
  const BorrowedTensor qt = borrow_gpu_tensor(q, "q", -1, {code_type(spec.qtype)}, producer_stream);
  require_shape(qt, xt.shape, fmt::format("the shape of {}", name));
  const BorrowedTensor st = borrow_gpu_tensor(scales, "scales", -1, {ElemType::F32}, producer_stream);
  require_shape(st, scale_dims(p, xt.shape.size()), p.summary());
  BorrowedTensor ss;
  if (!static_scales.is_none()) {
    ss = borrow_gpu_tensor(static_scales, "static_scales", -1, {ElemType::F32}, producer_stream);
    if (ss.numel() != p.num_scales())
      throw py::value_error(fmt::format("static_scales: expected {} values (scale shape {} of {}), got shape {}",
                                        p.num_scales(), shape_text(scale_dims(p, xt.shape.size())), p.summary(),
                                        shape_text(ss.shape)));
  }
  require_current_device({&xt, &qt, &st});
  if (!static_scales.is_none()) require_current_device({&ss});
  {
    py::gil_scoped_release unlocked;
    const auto s = reinterpret_cast<hipStream_t>(handle);
    if (!static_scales.is_none() && ss.data != st.data)
      MOE_GPU_CHECK(hipMemcpyAsync(st.data, ss.data, static_cast<size_t>(p.num_scales()) * sizeof(float),
                                   hipMemcpyDeviceToDevice, s));
    quant::Workspace ws(spec.granularity == quant::Granularity::PerTensor ? std::max<int64_t>(1, p.shape.batch) : 1);
    // Sync: the launcher synchronizes `s` and throws InputError (ValueError) on Inf/NaN.
    quant::quantize(p, xt.data, qt.data, static_cast<float*>(st.data), ws, s, quant::CheckMode::Sync);
  }
  return py::make_tuple(q, scales);
}

// ---- the FP8/INT8 fused layer -------------------------------------------------------------
// A weight: a (codes, scales) pair in the scheme's layout, or a float tensor
// (float32/bf16/fp16) quantized here on the device with that layout.
struct Q8Weight {
  BorrowedTensor codes, scales;  // the pair
  BorrowedTensor values;         // or the float weight
  bool is_pair = false;
  bool pair() const { return is_pair; }
  const std::vector<int64_t>& shape() const { return pair() ? codes.shape : values.shape; }
};

Q8Weight borrow_q8_weight(py::handle w, const std::string& name, quant::QType qtype, const py::object& producer_stream) {
  Q8Weight r;
  if (py::isinstance<py::tuple>(w) || py::isinstance<py::list>(w)) {
    const auto seq = py::reinterpret_borrow<py::sequence>(w);
    if (seq.size() != 2)
      throw py::value_error(fmt::format("{}: expected a GPU tensor or a (codes, scales) pair, got {} items", name, seq.size()));
    r.is_pair = true;
    r.codes = borrow_gpu_tensor(seq[0], name + " codes", 3, {code_type(qtype)}, producer_stream);
    r.scales = borrow_gpu_tensor(seq[1], name + " scales", -1, {ElemType::F32}, producer_stream);
  } else {
    r.values = borrow_gpu_tensor(w, name, 3, kFloatTypes, producer_stream);
  }
  return r;
}

// Scales of a pair: the count of the scheme's layout (any shape, as the reference).
void check_q8_scales(const Q8Weight& w, const quant::QuantProblem& qp, const std::string& name) {
  if (w.pair()) check_scale_count(w.scales.numel(), w.scales.shape, qp, name);
}

py::object fused_moe_q8(py::handle hidden, py::handle w1, py::handle w2, py::handle topk_weights, py::handle topk_ids,
                        py::object out, const std::string& scheme_name, const std::string& fp8,
                        const std::string& activation, const std::string& router_weight, py::object stream) {
  const uintptr_t handle = stream_handle(stream);
  const py::object producer_stream = producer_stream_arg(handle);
  const fused_moe_q8::Scheme scheme = fused_moe_q8::parse_scheme(scheme_name);
  const Fp8Format fmt8 = quant::fp8_format_of(quant::parse_qtype(fp8));
  if (fmt8 != Fp8Format::E4M3FN)
    throw py::value_error(fmt::format("fp8: our layer kernels read e4m3fn codes (kernels/fused_moe_q8), got '{}'", fp8));
  const quant::QType qtype = fused_moe_q8::is_int8(scheme) ? quant::QType::INT8 : quant::QType::FP8_E4M3FN;
  const BorrowedTensor x = borrow_gpu_tensor(hidden, "hidden", 2, kHalfTypes, producer_stream);
  const Q8Weight a = borrow_q8_weight(w1, "w1", qtype, producer_stream);
  const Q8Weight b = borrow_q8_weight(w2, "w2", qtype, producer_stream);
  const BorrowedTensor tw = borrow_gpu_tensor(topk_weights, "topk_weights", 2, {ElemType::F32}, producer_stream);
  const BorrowedTensor ids = borrow_gpu_tensor(topk_ids, "topk_ids", 2, {ElemType::I32}, producer_stream);
  const BorrowedTensor o = borrow_gpu_tensor(out, "out", 2, kHalfTypes, producer_stream);
  require_same_type(o, x);
  fused_moe_q8::Q8Problem p;
  p.base = layer_problem(x.shape, a.shape(), b.shape(), tw.shape, ids.shape, dtype_of(x.type), activation, router_weight);
  p.scheme = scheme;
  p.fp8 = fmt8;
  p.validate();
  const quant::QuantProblem w1q = p.w1_quant(a.pair() ? DType::F32 : dtype_of(a.values.type));
  const quant::QuantProblem w2q = p.w2_quant(b.pair() ? DType::F32 : dtype_of(b.values.type));
  check_q8_scales(a, w1q, "w1");
  check_q8_scales(b, w2q, "w2");
  if (o.shape != std::vector<int64_t>{p.base.tokens, p.base.model_dim})
    throw py::value_error(fmt::format("out: expected shape ({}, {}) (tokens, model_dim of hidden {}), got {}", p.base.tokens,
                                      p.base.model_dim, shape_text(x.shape), shape_text(o.shape)));
  require_current_device({&x, &tw, &ids, &o});
  for (const Q8Weight* w : {&a, &b}) {
    if (w->pair()) require_current_device({&w->codes, &w->scales});
    else require_current_device({&w->values});
  }

  fused_moe_q8::Q8Tensors t;
  t.hidden = x.data;
  t.topk_weights = static_cast<const float*>(tw.data);
  t.topk_ids = static_cast<const int32_t*>(ids.data);
  t.out = o.data;
  {
    py::gil_scoped_release unlocked;
    const auto s = reinterpret_cast<hipStream_t>(handle);
    const auto& base = p.base;
    const fused_moe_q8::Q8LayerConfig cfg = fused_moe_q8::choose_q8_config(p, fused_moe_q8::q8_device_limits());
    const fused_moe_q8::Q8WorkspaceSizes sz = fused_moe_q8::workspace_sizes(p, cfg);
    const int64_t half = 2;  // bytes of a base.dtype element
    StreamScratch scratch(s);
    const ScratchAlign aligner(scratch, align::AlignShape{base.tokens, base.top_k, base.experts, cfg.block_size()});
    const size_t a1_at = scratch.reserve(sz.a1), a1s_at = scratch.reserve(sz.a1_scale * 4);
    const size_t inter_at = scratch.reserve(sz.intermediate * half);
    const size_t a2_at = scratch.reserve(sz.a2), a2s_at = scratch.reserve(sz.a2_scale * 4);
    const size_t partial_at = scratch.reserve(sz.partial * 4);
    // Float weights: their codes and scales in scratch too.
    const size_t w1c_at = scratch.reserve(a.pair() ? 0 : w1q.numel()), w1s_at = scratch.reserve(a.pair() ? 0 : w1q.num_scales() * 4);
    const size_t w2c_at = scratch.reserve(b.pair() ? 0 : w2q.numel()), w2s_at = scratch.reserve(b.pair() ? 0 : w2q.num_scales() * 4);
    const ScratchTileCounters counters(scratch);
    scratch.allocate();
    // One quantizer workspace (batch 1 for the activations; E for per-expert weights),
    // checked synchronously: Inf/NaN raises ValueError naming the tensor.
    quant::Workspace qws(std::max<int64_t>(1, base.experts));
    auto weight = [&](const Q8Weight& w, const quant::QuantProblem& qp, size_t codes_at, size_t scales_at,
                      const uint8_t*& codes, const float*& scales) {
      if (w.pair()) {
        codes = static_cast<const uint8_t*>(w.codes.data);
        scales = static_cast<const float*>(w.scales.data);
        return;
      }
      quant::quantize(qp, w.values.data, scratch.at<uint8_t>(codes_at), scratch.at<float>(scales_at), qws, s,
                      quant::CheckMode::Sync);
      codes = scratch.at<uint8_t>(codes_at);
      scales = scratch.at<float>(scales_at);
    };
    weight(a, w1q, w1c_at, w1s_at, t.w1, t.w1_scale);
    weight(b, w2q, w2c_at, w2s_at, t.w2, t.w2_scale);
    const fused_moe::AlignedRouting view = aligner.run(scratch, t.topk_ids, s);
    // Slots whose id is outside [0, E) are skipped by stage 1: zeroed, their rows
    // stay out of the intermediate's per-tensor amax (as the reference's zero rows).
    MOE_GPU_CHECK(hipMemsetAsync(scratch.at<void>(inter_at), 0, static_cast<size_t>(sz.intermediate * half), s));
    const fused_moe_q8::Q8Workspace ws{scratch.at<uint8_t>(a1_at), scratch.at<float>(a1s_at), scratch.at<void>(inter_at),
                                       scratch.at<uint8_t>(a2_at), scratch.at<float>(a2s_at), scratch.at<float>(partial_at),
                                       counters.zeroed(scratch, s)};
    fused_moe_q8::fused_moe_q8(p, t, view, ws, qws, cfg, s, quant::CheckMode::Sync);
  }
  return out;
}

py::dict q8_config(int64_t tokens, int64_t model_dim, int64_t inter_dim, int32_t experts, int32_t top_k,
                   const std::string& scheme) {
  const fused_moe_q8::Q8Problem p =
      fused_moe_q8::make_q8_problem(fused_moe_q8::parse_scheme(scheme), tokens, model_dim, inter_dim, experts, top_k);
  p.validate();
  const fused_moe_q8::Q8LayerConfig c = fused_moe_q8::choose_q8_config(p, fused_moe_q8::q8_device_limits());
  return py::dict("config"_a = c.to_string(), "tile"_a = c.stage1.name(), "split_k"_a = c.stage2.split_k);
}

}  // namespace

void add_gpu_routing_quant_entries(py::module_& m) {
  m.def("softmax_topk", &softmax_topk, "logits"_a, "topk_weights"_a, "topk_ids"_a, py::kw_only(), "top_k"_a,
        "renormalize"_a = false, "stream"_a = py::none(),
        R"(Our softmax top-k kernel; fills (topk_weights, topk_ids) and returns them.

logits (M, E) float32, bfloat16 or float16; topk_weights (M, top_k) float32;
topk_ids (M, top_k) int32. Semantics (NaN/inf order, ties to the lower id) and
the parameter rules of the reference moe_harness.softmax_topk. Stream and tensor
rules as for fused_moe.)");
  m.def("grouped_topk", &grouped_topk, "logits"_a, "topk_weights"_a, "topk_ids"_a, py::kw_only(), "top_k"_a, "n_group"_a,
        "topk_group"_a, "scoring"_a = "sigmoid", "renormalize"_a = true, "routed_scaling_factor"_a = 1.0f,
        "bias"_a = py::none(), "stream"_a = py::none(),
        R"(Our grouped top-k kernel (DeepSeek-V3 noaux_tc); fills (topk_weights, topk_ids) and returns them.

logits (M, E) float32, bfloat16 or float16; bias None or (E,) float32 (the
e_score_correction_bias); topk_weights (M, top_k) float32; topk_ids (M, top_k)
int32. Parameters as the reference moe_harness.grouped_topk (its selections are
bit-identical to the kernel's). Stream and tensor rules as for fused_moe.)");
  m.def("sigmoid_top1", &sigmoid_top1, "x"_a, "w"_a, "topk_weights"_a, "topk_ids"_a, py::kw_only(),
        "shared_expert"_a = false, "stream"_a = py::none(),
        R"(Our fused router: logits = x @ w (fp32 accumulation), id = argmax, weight = sigmoid(logit[id]).

x (M, K) and w (K, E) (row-major, K rows): bfloat16 or float16, one dtype;
topk_weights (M, c) float32 and topk_ids (M, c) int32 with c = 1, or 2 with
shared_expert (column 1: id E, weight 1). Fills and returns (topk_weights,
topk_ids). Ids may differ from the fp64 reference only where two logits are
within fp32 accumulation error (near-ties). Its split-K workspace is scratch on
`stream`. Stream and tensor rules as for fused_moe.)");
  m.def("quantize", &quantize, "x"_a, "q"_a, "scales"_a, py::kw_only(), "qtype"_a = "fp8_e4m3fn",
        "granularity"_a = "per_row", "group"_a = 128, "group_layout"_a = "row", "block_rows"_a = 128,
        "block_cols"_a = 128, "static_scales"_a = py::none(), "name"_a = "input", "stream"_a = py::none(),
        R"(Our quantizer kernels; fills (q, scales) and returns them.

x (rows, cols) or (batch, rows, cols): float32, bfloat16 or float16. q: x's shape,
uint8 for the fp8 qtypes (e4m3 codes; torch: a float8 tensor's .view(torch.uint8)),
int8 for qtype='int8'. scales float32 in the reference's shape: per_tensor
(batch,) ((1,) for rank 2), per_row (batch, rows), per_group (batch, rows,
ceil(cols/group)) or with group_layout='col' (batch, ceil(cols/group), rows),
per_block (batch, ceil(rows/block_rows), ceil(cols/block_cols)); the batch
dimension dropped for a rank-2 x. static_scales (per_tensor only): float32 scales
copied into `scales` (stream-ordered) and read instead of computed. Codes and
scales are bit-identical to moe_harness.quantize. Unlike the other entries this
one synchronises `stream` before returning: the kernels' Inf/NaN report is
read, and an Inf/NaN in x raises ValueError naming the tensor (`name`) and the
first bad segment, as the reference does.)");
  m.def("fused_moe_q8", &fused_moe_q8, "hidden"_a, "w1"_a, "w2"_a, "topk_weights"_a, "topk_ids"_a, "out"_a,
        py::kw_only(), "scheme"_a = "fp8_tensor", "fp8"_a = "e4m3fn", "activation"_a = "silu",
        "router_weight"_a = "output", "stream"_a = py::none(),
        R"(Our quantized fused MoE layer (fp8_tensor | fp8_token | fp8_block | int8_token); writes out, returns it.

hidden (M, model_dim) and out: bfloat16 or float16, one dtype; topk_weights
(M, top_k) float32; topk_ids (M, top_k) int32 (ids outside [0, E) contribute
nothing). w1 (E, 2*inter, model_dim) and w2 (E, model_dim, inter): each a
(codes, scales) pair in the scheme's layout (codes uint8 e4m3fn, int8 for
int8_token; scales float32 with the count of the layout, any shape: fp8_tensor
(E,), fp8_token/int8_token (E, N), fp8_block (E, ceil(N/128), ceil(K/128))), as
moe_harness.quantize makes them (granularity per_tensor / per_row / per_block
over the (E, N, K) weight), or a float tensor (float32/bfloat16/float16)
quantized here on the device into that layout each call. model_dim and inter
multiples of 16. The activations are quantized by our quantizers as the layer
runs (the reference moe_harness.fused_moe_q8 does the same on the CPU); the tile
config is the heuristic choose_q8_config (fused_moe_q8_config says which). Only
e4m3fn codes (fp8='e4m3fn'). Like quantize, it synchronises `stream` after each
quantizer (Inf/NaN raises ValueError). Stream and tensor rules as for fused_moe.)");
  m.def("fused_moe_q8_config", &q8_config, "tokens"_a, "model_dim"_a, "inter_dim"_a, "experts"_a, "top_k"_a,
        py::kw_only(), "scheme"_a = "fp8_tensor",
        "The tile config fused_moe_q8 chooses on the current device for these sizes: {'config': its text as the "
        "benchmarks and logs write it, 'tile': the tile both stages run, 'split_k': stage 2's split}. Pass tile and "
        "split_k to the reference moe_harness.fused_moe_q8 so it sums fp8 products as that kernel does (Hopper's wgmma "
        "tiles keep 13-bit partial sums).");
}

}  // namespace moe::python
