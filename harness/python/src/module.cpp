// moe_harness._core: the harness's input generation, CPU references, tolerances
// and checker on NumPy arrays. The Python package (moe_harness/__init__.py)
// re-exports these and documents the conventions; arrays.hpp converts arrays.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "arrays.hpp"
#include "layer_shapes.hpp"
#include "quant_args.hpp"
#include "routing_args.hpp"
#include "moe/gpu_runtime.hpp"
#if MOE_HAVE_GPU
#include "gpu_entries.hpp"
#endif
#include "kernels/fused_moe/fused_moe_types.hpp"
#include "kernels/fused_moe_q8/fused_moe_q8_types.hpp"
#include "moe/check.hpp"
#include "moe/error.hpp"
#include "moe/inputs.hpp"
#include "moe/model_config.hpp"
#include "moe/rng.hpp"
#include "reference/fused_moe/fused_moe_ref.hpp"
#include "reference/fused_moe_q8/fused_moe_q8_ref.hpp"
#include "harness/families/fused_moe_q8/fused_moe_q8_runner.hpp"
#include "reference/moe_align/moe_align_ref.hpp"
#include "reference/quant/quant_ref.hpp"
#include "reference/routing/routing_ref.hpp"

namespace py = pybind11;
using namespace py::literals;

namespace moe::python {
namespace {

// nlohmann::json -> Python objects through the json module, so every field of
// a to_json() reaches Python as it is.
py::object json_to_py(const nlohmann::json& j) { return py::module_::import("json").attr("loads")(j.dump()); }

py::dict tolerance_dict(const Tolerance& t) { return py::dict("atol"_a = t.atol, "rtol"_a = t.rtol, "max_rel_l2"_a = t.max_rel_l2); }

Tolerance tolerance_of(const py::dict& d) {
  for (const char* key : {"atol", "rtol", "max_rel_l2"})
    if (!d.contains(key)) throw py::value_error(fmt::format("tolerance: missing '{}' (expected atol, rtol, max_rel_l2)", key));
  return Tolerance{d["atol"].cast<double>(), d["rtol"].cast<double>(), d["max_rel_l2"].cast<double>()};
}

std::vector<py::ssize_t> ssize_shape(std::initializer_list<int64_t> dims) {
  return std::vector<py::ssize_t>(dims.begin(), dims.end());
}

// ---- input generation --------------------------------------------------------------
std::string default_model_configs() {
  return py::module_::import("moe_harness").attr("default_model_configs")().cast<std::string>();
}

py::dict model_config(const std::string& name, std::optional<std::string> model_configs) {
  const ModelTable table = load_model_table(model_configs.value_or(default_model_configs()));
  return json_to_py(table.model(name).to_json());
}

std::vector<std::string> model_names(std::optional<std::string> model_configs) {
  const ModelTable table = load_model_table(model_configs.value_or(default_model_configs()));
  std::vector<std::string> names;
  for (const auto& m : table.models) names.push_back(m.name);
  return names;
}

// One generated tensor: uint16 bits for bf16/fp16, float32 values for fp32.
py::array generate(const InputSpec& spec, rng::Stream which, std::vector<py::ssize_t> shape) {
  if (spec.dtype == DType::F32) {
    py::array_t<float> a(shape);
    std::span<float> out(a.mutable_data(), static_cast<size_t>(a.size()));
    py::gil_scoped_release unlocked;
    fill_host(spec, which, 0, out);
    return a;
  }
  py::array_t<uint16_t> a(shape);
  std::span<uint16_t> out(a.mutable_data(), static_cast<size_t>(a.size()));
  py::gil_scoped_release unlocked;
  fill_host_bits16(spec, which, 0, out);
  return a;
}

py::dict make_inputs(std::optional<std::string> model, std::optional<int64_t> M, const std::string& dtype,
                     const std::string& routing, uint64_t seed, std::optional<std::string> values,
                     std::optional<int64_t> model_dim, std::optional<int64_t> inter_dim, std::optional<int32_t> experts,
                     std::optional<int32_t> top_k, std::optional<std::string> model_configs) {
  if (!M) throw py::value_error("make_inputs: M (tokens) is required");
  const bool explicit_shape = model_dim || inter_dim || experts || top_k;
  InputSpec spec;
  if (model) {
    if (explicit_shape)
      throw py::value_error("make_inputs: give model= or the sizes (model_dim, inter_dim, experts, top_k), not both");
    const ModelTable table = load_model_table(model_configs.value_or(default_model_configs()));
    spec = layer_input_spec(table.model(*model), *M, seed);
  } else {
    if (!(model_dim && inter_dim && experts && top_k))
      throw py::value_error("make_inputs: without model= give all of model_dim, inter_dim, experts and top_k");
    spec.shape = MoeShape{*M, *model_dim, *inter_dim, *experts, *top_k};
    spec.seed = seed;
  }
  spec.dtype = parse_dtype(dtype);
  MOE_REQUIRE(is_float_dtype(spec.dtype), fmt::format("make_inputs: dtype must be bf16, fp16 or fp32, got '{}'", dtype));
  spec.routing = parse_routing_dist(routing);
  if (values) spec.values = parse_value_dist(*values);
  spec.validate();

  const auto& s = spec.shape;
  py::dict out;
  out["hidden"] = generate(spec, rng::Stream::Hidden, ssize_shape({s.tokens, s.model_dim}));
  out["w1"] = generate(spec, rng::Stream::W1, ssize_shape({s.experts, 2 * s.inter_dim, s.model_dim}));
  out["w2"] = generate(spec, rng::Stream::W2, ssize_shape({s.experts, s.model_dim, s.inter_dim}));
  const Routing r = make_routing(spec);
  out["topk_weights"] = to_array(r.topk_weights, ssize_shape({s.tokens, s.top_k}));
  out["topk_ids"] = to_array(r.topk_ids, ssize_shape({s.tokens, s.top_k}));
  if (spec.routing == RoutingDist::Softmax) {
    // The normal scores whose softmax top-k make_routing takes.
    py::array_t<float> logits(ssize_shape({s.tokens, s.experts}));
    float* p = logits.mutable_data();
    for (int64_t i = 0; i < s.tokens * s.experts; ++i) p[i] = rng::normal(spec.seed, rng::Stream::Scores, static_cast<uint64_t>(i));
    out["router_logits"] = logits;
  }
  return out;
}

// ---- moe_align ------------------------------------------------------------------------
py::dict moe_align(py::handle topk_ids, int32_t num_experts, int32_t block_size, py::object expert_map) {
  const IdTensor ids = id_tensor(topk_ids, "topk_ids", 2);
  std::vector<int32_t> map;
  if (!expert_map.is_none()) map = id_tensor(expert_map, "expert_map", 1).values;
  const align::AlignShape shape{ids.dim(0), static_cast<int32_t>(ids.dim(1)), num_experts, block_size};
  const ref::AlignResult r = ref::moe_align_block_size(shape, ids.values, map);
  const auto n = static_cast<int64_t>(r.sorted_token_ids.size()), blocks = static_cast<int64_t>(r.expert_ids.size());
  return py::dict("sorted_token_ids"_a = to_array(r.sorted_token_ids, ssize_shape({n})),
                  "expert_ids"_a = to_array(r.expert_ids, ssize_shape({blocks})),
                  "num_tokens_post_padded"_a = r.num_tokens_post_padded);
}

// ---- routing ------------------------------------------------------------------------------
py::tuple topk_tuple(const ref::TopkResult& r) {
  return py::make_tuple(to_array(r.weights, ssize_shape({r.tokens, r.cols})), to_array(r.ids, ssize_shape({r.tokens, r.cols})));
}

py::tuple softmax_topk(py::handle logits, int32_t top_k, bool renormalize, std::optional<std::string> dtype) {
  const FloatTensor x = float_tensor(logits, "logits", 2, bits_dtype(dtype));
  return topk_tuple(ref::softmax_topk(x.values, softmax_topk_params(x.dim(0), x.dim(1), top_k, renormalize, x.dtype)));
}

py::tuple grouped_topk(py::handle logits, int32_t top_k, int32_t n_group, int32_t topk_group, const std::string& scoring,
                       bool renormalize, float routed_scaling_factor, py::object bias, std::optional<std::string> dtype) {
  const FloatTensor x = float_tensor(logits, "logits", 2, bits_dtype(dtype));
  std::vector<float> b;
  if (!bias.is_none()) {
    b = float_tensor(bias, "bias", 1, bits_dtype(dtype)).values;
    if (static_cast<int64_t>(b.size()) != x.dim(1))
      throw py::value_error(fmt::format("bias: expected shape ({},) (one value per expert of logits {}), got ({},)",
                                        x.dim(1), shape_text(x.shape), b.size()));
  }
  const routing::GroupedTopkParams p = grouped_topk_params(x.dim(0), x.dim(1), top_k, n_group, topk_group, scoring,
                                                          renormalize, routed_scaling_factor, x.dtype);
  return topk_tuple(ref::grouped_topk(x.values, b, p));
}

py::tuple sigmoid_top1(py::handle x, py::handle w, bool shared_expert, std::optional<std::string> dtype) {
  const FloatTensor xt = float_tensor(x, "x", 2, bits_dtype(dtype));
  const FloatTensor wt = float_tensor(w, "w", 2, bits_dtype(dtype));
  if (wt.dim(0) != xt.dim(1))
    throw py::value_error(fmt::format("w: expected shape ({}, E) (K rows, as x {}), got {}", xt.dim(1), shape_text(xt.shape),
                                      shape_text(wt.shape)));
  const routing::SigmoidTop1Params p = sigmoid_top1_params(
      xt.dim(0), xt.dim(1), wt.dim(1), xt.dtype == DType::F32 ? bits_dtype(dtype) : xt.dtype, shared_expert);
  const ref::Top1Ref r = ref::sigmoid_top1(xt.values, wt.values, p);
  return topk_tuple(r.out);
}

// ---- the fused layer ------------------------------------------------------------------------
// Tensors of one layer call, checked against each other.
struct LayerArrays {
  FloatTensor hidden, w1, w2, topk_weights;
  IdTensor topk_ids;
  fused_moe::Problem problem;
};

LayerArrays layer_arrays(py::handle hidden, py::handle w1, py::handle w2, py::handle topk_weights, py::handle topk_ids,
                         std::optional<std::string> dtype, const std::string& activation, const std::string& router_weight) {
  LayerArrays a;
  const DType bits = bits_dtype(dtype);
  a.hidden = float_tensor(hidden, "hidden", 2, bits);
  a.w1 = float_tensor(w1, "w1", 3, bits);
  a.w2 = float_tensor(w2, "w2", 3, bits);
  a.topk_weights = float_tensor(topk_weights, "topk_weights", 2, bits);
  a.topk_ids = id_tensor(topk_ids, "topk_ids", 2);
  // float32 inputs carry no precision: the layer's is dtype (default bf16).
  a.problem = layer_problem(a.hidden.shape, a.w1.shape, a.w2.shape, a.topk_weights.shape, a.topk_ids.shape,
                            a.hidden.dtype == DType::F32 ? bits : a.hidden.dtype, activation, router_weight);
  const int64_t E = a.problem.experts;
  for (size_t i = 0; i < a.topk_ids.values.size(); ++i) {
    const int32_t id = a.topk_ids.values[i];
    if (id < -1 || id >= E)
      throw py::value_error(fmt::format("topk_ids: element {} = {} outside [-1, {}) (-1: no expert; {} experts in w1)", i, id, E, E));
  }
  return a;
}

py::dict problem_dict(const fused_moe::Problem& p) {
  return py::dict("tokens"_a = p.tokens, "model_dim"_a = p.model_dim, "inter_dim"_a = p.inter_dim, "experts"_a = p.experts,
                  "top_k"_a = p.top_k, "dtype"_a = std::string(dtype_name(p.dtype)),
                  "activation"_a = std::string(fused_moe::activation_name(p.act)),
                  "router_weight"_a = std::string(fused_moe::router_weight_name(p.router_weight)));
}

py::dict fused_moe(py::handle hidden, py::handle w1, py::handle w2, py::handle topk_weights, py::handle topk_ids,
                   std::optional<std::string> dtype, const std::string& activation, const std::string& router_weight,
                   std::optional<std::string> inter_dtype, int threads) {
  const LayerArrays a = layer_arrays(hidden, w1, w2, topk_weights, topk_ids, dtype, activation, router_weight);
  ref::FusedMoeRefOptions opt;
  opt.inter_dtype = inter_dtype ? parse_dtype(*inter_dtype) : a.problem.dtype;
  MOE_REQUIRE(is_float_dtype(opt.inter_dtype), fmt::format("fused_moe: inter_dtype must be bf16, fp16 or fp32, got '{}'", *inter_dtype));
  opt.threads = threads;
  ref::FusedMoeRefResult r;
  {
    py::gil_scoped_release unlocked;
    r = ref::fused_moe_ref(a.problem, ref::ref_inputs_from_host(a.hidden.values, a.w1.values, a.w2.values,
                                                                 a.topk_weights.values, a.topk_ids.values),
                           opt);
  }
  const auto& p = a.problem;
  py::dict problem = problem_dict(p);
  problem["inter_dtype"] = std::string(dtype_name(opt.inter_dtype));
  return py::dict("layer"_a = "fused_moe", "out"_a = to_array(r.out, ssize_shape({p.tokens, p.model_dim})),
                  "out_rms"_a = r.out_rms,
                  "intermediate"_a = to_array(r.intermediate, ssize_shape({p.tokens, p.top_k, p.inter_dim})),
                  "inter_rms"_a = r.inter_rms, "problem"_a = problem);
}

fused_moe::Problem sizes_problem(int64_t model_dim, int64_t inter_dim) {
  fused_moe::Problem p;
  p.model_dim = model_dim;
  p.inter_dim = inter_dim;
  return p;
}

py::dict fused_moe_tolerance(int64_t model_dim, int64_t inter_dim, double out_rms, const std::string& dtype,
                             std::optional<std::string> inter_dtype, std::optional<std::string> out_dtype) {
  const DType dt = parse_dtype(dtype);
  return tolerance_dict(ref::fused_moe_out_tolerance(sizes_problem(model_dim, inter_dim), inter_dtype ? parse_dtype(*inter_dtype) : dt,
                                                     out_dtype ? parse_dtype(*out_dtype) : dt, out_rms));
}

py::dict fused_moe_inter_tolerance(int64_t model_dim, int64_t inter_dim, double inter_rms, const std::string& inter_dtype) {
  return tolerance_dict(ref::fused_moe_inter_tolerance(sizes_problem(model_dim, inter_dim), parse_dtype(inter_dtype), inter_rms));
}

// ---- quantizers -------------------------------------------------------------------------------
// fp8 codes as uint8, int8 codes as int8.
py::array codes_array(const std::vector<uint8_t>& q, std::vector<py::ssize_t> shape, quant::QType t) {
  py::array a = to_array(q, std::move(shape));
  return t == quant::QType::INT8 ? py::array(a.attr("view")(py::dtype("int8"))) : a;
}

// The scales' shape as the entries return it (quant_args.hpp).
std::vector<py::ssize_t> scale_shape(const quant::QuantProblem& p, size_t input_rank) {
  const auto d = scale_dims(p, input_rank);
  return std::vector<py::ssize_t>(d.begin(), d.end());
}

py::tuple quantize(py::handle x, const std::string& qtype, const std::string& granularity, int64_t group,
                   const std::string& group_layout, int64_t block_rows, int64_t block_cols, py::object static_scales,
                   std::optional<std::string> dtype, const std::string& name) {
  const FloatTensor xt = float_tensor(x, name, -1, bits_dtype(dtype));
  const auto spec = quant_spec(qtype, granularity, group, group_layout, block_rows, block_cols, !static_scales.is_none());
  const quant::QuantProblem p = quant_problem(xt.shape, xt.dtype, spec, name);
  std::vector<float> scales_in;
  if (!static_scales.is_none()) scales_in = float_tensor(static_scales, "static_scales", -1, DType::BF16).values;
  const ref::QuantResult r = ref::quantize(p, xt.values, scales_in);
  return py::make_tuple(codes_array(r.q, std::vector<py::ssize_t>(xt.shape.begin(), xt.shape.end()), spec.qtype),
                        to_array(r.scales, scale_shape(p, xt.shape.size())));
}

py::array dequantize(py::handle q, py::handle scales, const std::string& qtype, const std::string& granularity, int64_t group,
                     const std::string& group_layout, int64_t block_rows, int64_t block_cols) {
  const ByteTensor qt = byte_tensor(q, "q");
  const FloatTensor st = float_tensor(scales, "scales", -1, DType::BF16);
  const auto spec = quant_spec(qtype, granularity, group, group_layout, block_rows, block_cols, false);
  const quant::QuantProblem p = quant_problem(qt.shape, DType::F32, spec, "q");
  if (static_cast<int64_t>(st.values.size()) != p.num_scales())
    throw py::value_error(fmt::format("scales: expected shape {} for {}, got {}", shape_text(p.scale_shape()), p.summary(),
                                      shape_text(st.shape)));
  const std::vector<double> d = ref::dequantize(p, qt.values, st.values);
  std::vector<float> f(d.begin(), d.end());
  return to_array(f, std::vector<py::ssize_t>(qt.shape.begin(), qt.shape.end()));
}

// ---- quantized layer --------------------------------------------------------------------------
// A weight argument: float values (quantized here with the scheme's layout) or
// a (codes, scales) pair in that layout.
ref::Q8WeightFn q8_weight(py::handle w, const quant::QuantProblem& qp, const std::string& name, DType bits,
                          std::vector<uint8_t>& codes, std::vector<float>& scales) {
  const std::vector<int64_t> want{qp.shape.batch, qp.shape.rows, qp.shape.cols};
  if (py::isinstance<py::tuple>(w)) {
    const auto pair = w.cast<py::tuple>();
    if (pair.size() != 2) throw py::value_error(fmt::format("{}: expected an array or a (codes, scales) pair", name));
    const ByteTensor q = byte_tensor(pair[0], name + " codes");
    if (q.shape != want)
      throw py::value_error(fmt::format("{} codes: expected shape {}, got {}", name, shape_text(want), shape_text(q.shape)));
    const FloatTensor s = float_tensor(pair[1], name + " scales", -1, bits);
    check_scale_count(static_cast<int64_t>(s.values.size()), s.shape, qp, name);
    codes = q.values;
    scales = s.values;
  } else {
    const FloatTensor x = float_tensor(w, name, 3, bits);
    if (x.shape != want)
      throw py::value_error(fmt::format("{}: expected shape {}, got {}", name, shape_text(want), shape_text(x.shape)));
    ref::QuantResult r = ref::quantize(qp, x.values);
    codes = std::move(r.q);
    scales = std::move(r.scales);
  }
  return ref::q8_weights_from_host(qp, codes, scales);
}

py::dict fused_moe_q8(py::handle hidden, py::handle w1, py::handle w2, py::handle topk_weights, py::handle topk_ids,
                      const std::string& scheme, const std::string& fp8, std::optional<std::string> dtype,
                      const std::string& activation, const std::string& router_weight, int threads,
                      std::optional<std::string> tile, int split_k) {
  const DType bits = bits_dtype(dtype);
  const FloatTensor x = float_tensor(hidden, "hidden", 2, bits);
  const FloatTensor tw = float_tensor(topk_weights, "topk_weights", 2, bits);
  const IdTensor ids = id_tensor(topk_ids, "topk_ids", 2);
  if (ids.dim(0) != x.dim(0) || tw.shape != ids.shape)
    throw py::value_error(fmt::format("topk_weights {} and topk_ids {}: expected ({}, top_k) each (tokens of hidden)",
                                      shape_text(tw.shape), shape_text(ids.shape), x.dim(0)));
  // Sizes E and inter come from w1: an array (E, 2I, H) or the codes of a pair.
  const py::handle w1_shape_src = py::isinstance<py::tuple>(w1) ? w1.cast<py::tuple>()[0] : w1;
  const py::array w1_arr = py::array::ensure(w1_shape_src);
  if (!w1_arr || w1_arr.ndim() != 3)
    throw py::value_error("w1: expected an array (E, 2*inter, model_dim) or a (codes, scales) pair with codes of that shape");
  fused_moe_q8::Q8Problem p = fused_moe_q8::make_q8_problem(
      fused_moe_q8::parse_scheme(scheme), x.dim(0), x.dim(1), w1_arr.shape(1) / 2, static_cast<int32_t>(w1_arr.shape(0)),
      static_cast<int32_t>(ids.dim(1)));
  p.fp8 = quant::fp8_format_of(quant::parse_qtype(fp8));
  p.base.dtype = x.dtype == DType::F32 ? bits : x.dtype;
  p.base.act = fused_moe::parse_activation(activation);
  p.base.router_weight = fused_moe::parse_router_weight(router_weight);
  p.validate();
  std::vector<uint8_t> c1, c2;
  std::vector<float> s1, s2;
  ref::Q8RefInputs in;
  in.w1 = q8_weight(w1, p.w1_quant(), "w1", bits, c1, s1);
  in.w2 = q8_weight(w2, p.w2_quant(), "w2", bits, c2, s2);
  in.topk_weights = tw.values;
  in.topk_ids = ids.values;
  for (size_t i = 0; i < ids.values.size(); ++i)
    if (ids.values[i] < -1 || ids.values[i] >= p.base.experts)
      throw py::value_error(fmt::format("topk_ids: element {} = {} outside [-1, {}) (-1: no expert; {} experts in w1)", i,
                                        ids.values[i], p.base.experts, p.base.experts));
  // The kernel's accumulation, from the tile both stages ran (the harness's rule:
  // q8_ref_options_for); without a tile, exact sums.
  ref::Q8RefOptions opt1, opt2;
  if (tile) {
    fused_moe_q8::Q8TileConfig c1{fused_moe::parse_tile(*tile)};
    fused_moe_q8::Q8TileConfig c2 = c1;
    c2.split_k = split_k;
    if (auto why = c1.why_invalid(1, p.scheme); !why.empty()) throw_input_error("tile: " + why);
    if (auto why = c2.why_invalid(2, p.scheme); !why.empty()) throw_input_error("tile, split_k: " + why);
    opt1 = fused_moe_q8::q8_ref_options_for(p, c1, 1);
    opt2 = fused_moe_q8::q8_ref_options_for(p, c2, 2);
  } else if (split_k != 1) {
    throw_input_error(fmt::format("split_k {} without a tile: name the tile the kernel ran", split_k));
  }
  opt1.threads = opt2.threads = threads;
  ref::Q8LayerResult r;
  {
    py::gil_scoped_release unlocked;
    r = ref::q8_ref_layer(p, x.values, in, opt1, opt2);
  }
  const auto& b = p.base;
  py::dict problem = problem_dict(b);
  problem["scheme"] = std::string(fused_moe_q8::scheme_name(p.scheme));
  problem["fp8"] = std::string(quant::qtype_name(quant::fp8_qtype(p.fp8)));
  const auto a1p = p.a1_quant(), a2p = p.a2_quant();
  return py::dict("layer"_a = "fused_moe_q8", "out"_a = to_array(r.stage2.out, ssize_shape({b.tokens, b.model_dim})),
                  "out_rms"_a = r.stage2.out_rms,
                  "intermediate"_a = to_array(r.stage1.intermediate, ssize_shape({b.tokens, b.top_k, b.inter_dim})),
                  "inter_rms"_a = r.stage1.inter_rms,
                  "a1"_a = codes_array(r.a1.q, ssize_shape({b.tokens, b.model_dim}), p.qtype()), "a1_scale"_a = to_array(r.a1.scales, scale_shape(a1p, 2)),
                  "a2"_a = codes_array(r.a2.q, ssize_shape({b.slots(), b.inter_dim}), p.qtype()), "a2_scale"_a = to_array(r.a2.scales, scale_shape(a2p, 2)),
                  "problem"_a = problem);
}

fused_moe_q8::Q8Problem q8_sizes(const std::string& scheme, int64_t model_dim, int64_t inter_dim, const std::string& dtype) {
  fused_moe_q8::Q8Problem p;
  p.scheme = fused_moe_q8::parse_scheme(scheme);
  p.base = sizes_problem(model_dim, inter_dim);
  p.base.dtype = parse_dtype(dtype);
  return p;
}

// ---- checker ----------------------------------------------------------------------------------
py::object check(py::handle got, py::handle want, py::dict tolerance, std::optional<std::string> dtype) {
  const FloatTensor g = float_tensor(got, "got", -1, bits_dtype(dtype), true);
  const FloatTensor w = float_tensor(want, "want", -1, bits_dtype(dtype), true);
  if (g.shape != w.shape)
    throw py::value_error(fmt::format("got: shape {} differs from want {}", shape_text(g.shape), shape_text(w.shape)));
  const Tolerance tol = tolerance_of(tolerance);
  CheckResult r;
  {
    py::gil_scoped_release unlocked;
    r = check_close(g.values, w.values, tol);
  }
  return json_to_py(r.to_json());
}

py::object check_exact_ids(py::handle got, py::handle want, int64_t group) {
  const IdTensor g = id_tensor(got, "got", -1);
  const IdTensor w = id_tensor(want, "want", -1);
  if (g.shape != w.shape)
    throw py::value_error(fmt::format("got: shape {} differs from want {}", shape_text(g.shape), shape_text(w.shape)));
  return json_to_py((group > 0 ? check_same_sets(g.values, w.values, group) : check_exact(g.values, w.values)).to_json());
}

}  // namespace
}  // namespace moe::python

PYBIND11_MODULE(_core, m) {
  using namespace moe::python;
  m.doc() = "moe-harness C++ core (see the moe_harness package docstring)";
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const moe::InputError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });
  m.attr("source_dir") = MOE_SOURCE_DIR;
  m.attr("gpu_backend") = MOE_PY_GPU_BACKEND;
#if MOE_HAVE_GPU
  add_gpu_module(m);
#endif

  m.def("model_names", &model_names, py::kw_only(), "model_configs"_a = py::none(),
        "Names of the models in model_configs.json.");
  m.def("model_config", &model_config, "name"_a, py::kw_only(), "model_configs"_a = py::none(),
        "One model's entry of model_configs.json as a dict.");
  m.def("make_inputs", &make_inputs, py::kw_only(), "model"_a = py::none(), "M"_a = py::none(), "dtype"_a = "bf16",
        "routing"_a = "softmax", "seed"_a = 0, "values"_a = py::none(), "model_dim"_a = py::none(),
        "inter_dim"_a = py::none(), "experts"_a = py::none(), "top_k"_a = py::none(), "model_configs"_a = py::none(),
        R"(The inputs of one fused MoE layer, bit for bit those of the C++ harness (Philox streams).

model= takes the shapes from model_configs.json (bf16, weights scaled by 1/sqrt(fan-in)),
else give model_dim, inter_dim, experts and top_k (values 'normal' unless values='fanin').
dtype: bf16 | fp16 (uint16 bit arrays) | fp32 (float32); routing: softmax | balanced | zipf | one.
Returns a dict: hidden (M, model_dim), w1 (E, 2*inter, model_dim), w2 (E, model_dim, inter),
topk_weights (M, top_k) float32, topk_ids (M, top_k) int32, and router_logits (M, E) float32
(softmax routing: the scores whose softmax top-k gave the ids). A real model's weights are
GBs (DeepSeek-V3: w1 15 GB in bf16): use small M and explicit small sizes in tests.)");

  m.def("moe_align", &moe_align, "topk_ids"_a, py::kw_only(), "num_experts"_a, "block_size"_a, "expert_map"_a = py::none(),
        "moe_align_block_size reference: dict of sorted_token_ids, expert_ids, num_tokens_post_padded.");
  m.def("softmax_topk", &softmax_topk, "logits"_a, py::kw_only(), "top_k"_a, "renormalize"_a = false, "dtype"_a = py::none(),
        "Softmax top-k reference on (M, E) logits: (weights float32, ids int32), each (M, top_k).");
  m.def("grouped_topk", &grouped_topk, "logits"_a, py::kw_only(), "top_k"_a, "n_group"_a, "topk_group"_a,
        "scoring"_a = "sigmoid", "renormalize"_a = true, "routed_scaling_factor"_a = 1.0f, "bias"_a = py::none(),
        "dtype"_a = py::none(), "Grouped top-k (DeepSeek-V3 noaux_tc) reference: (weights, ids).");
  m.def("sigmoid_top1", &sigmoid_top1, "x"_a, "w"_a, py::kw_only(), "shared_expert"_a = false, "dtype"_a = py::none(),
        "Router GEMM x (M, K) @ w (K, E) + sigmoid top-1 reference: (weights, ids), (M, 1) or (M, 2) with shared_expert.");

  m.def("fused_moe", &fused_moe, "hidden"_a, "w1"_a, "w2"_a, "topk_weights"_a, "topk_ids"_a, py::kw_only(),
        "dtype"_a = py::none(), "activation"_a = "silu", "router_weight"_a = "output", "inter_dtype"_a = py::none(),
        "threads"_a = 0,
        "Fused MoE layer reference (fp64 accumulation, h rounded to inter_dtype = the layer dtype): dict of out (M, "
        "model_dim) float32 (not rounded), out_rms, intermediate (M, top_k, inter), inter_rms, problem.");
  m.def("fused_moe_tolerance", &fused_moe_tolerance, py::kw_only(), "model_dim"_a, "inter_dim"_a, "out_rms"_a,
        "dtype"_a = "bf16", "inter_dtype"_a = py::none(), "out_dtype"_a = py::none(),
        "Derived tolerance of the fused layer's output (reference/fused_moe/fused_moe_ref.hpp).");
  m.def("fused_moe_inter_tolerance", &fused_moe_inter_tolerance, py::kw_only(), "model_dim"_a, "inter_dim"_a, "inter_rms"_a,
        "inter_dtype"_a = "bf16", "Derived tolerance of the fused layer's intermediate h.");

  m.def("quantize", &quantize, "x"_a, py::kw_only(), "qtype"_a = "fp8_e4m3fn", "granularity"_a = "per_row", "group"_a = 128,
        "group_layout"_a = "row", "block_rows"_a = 128, "block_cols"_a = 128, "static_scales"_a = py::none(),
        "dtype"_a = py::none(), "name"_a = "input",
        "Quantizer reference on x (rows, cols) or (batch, rows, cols): (codes uint8 (fp8) / int8, scales float32).");
  m.def("dequantize", &dequantize, "q"_a, "scales"_a, py::kw_only(), "qtype"_a = "fp8_e4m3fn", "granularity"_a = "per_row",
        "group"_a = 128, "group_layout"_a = "row", "block_rows"_a = 128, "block_cols"_a = 128,
        "decode(q) * scale (float32; exact in double, then rounded).");
  m.def("fused_moe_q8", &fused_moe_q8, "hidden"_a, "w1"_a, "w2"_a, "topk_weights"_a, "topk_ids"_a, py::kw_only(),
        "scheme"_a = "fp8_tensor", "fp8"_a = "e4m3fn", "dtype"_a = py::none(), "activation"_a = "silu",
        "router_weight"_a = "output", "threads"_a = 0, "tile"_a = py::none(), "split_k"_a = 1,
        "Quantized fused MoE layer reference (fp8_tensor | fp8_token | fp8_block | int8_token). w1, w2: float weights "
        "(quantized here) or (codes, scales) pairs in the scheme's layout. tile, split_k: the GPU tile config the "
        "kernel ran (e.g. moe_harness.gpu.fused_moe_q8_config(...)['tile'] and ['split_k']): on a Hopper wgmma tile "
        "the fp8 products are summed as that kernel's wgmma does (13-bit chains per K segment); None: exact sums "
        "(mma.sync/MFMA tiles). Dict of out, out_rms, intermediate, inter_rms, a1, a1_scale, a2, a2_scale, problem.");
  m.def("q8_out_tolerance", [](const std::string& scheme, int64_t model_dim, int64_t inter_dim, double out_rms, const std::string& dtype) {
          return tolerance_dict(moe::ref::q8_out_tolerance(q8_sizes(scheme, model_dim, inter_dim, dtype), out_rms));
        }, py::kw_only(), "scheme"_a, "model_dim"_a, "inter_dim"_a, "out_rms"_a, "dtype"_a = "bf16",
        "Tolerance of the quantized layer's output against fused_moe_q8 on the same codes.");
  m.def("q8_inter_tolerance", [](const std::string& scheme, int64_t model_dim, int64_t inter_dim, double inter_rms, const std::string& dtype) {
          return tolerance_dict(moe::ref::q8_inter_tolerance(q8_sizes(scheme, model_dim, inter_dim, dtype), inter_rms));
        }, py::kw_only(), "scheme"_a, "model_dim"_a, "inter_dim"_a, "inter_rms"_a, "dtype"_a = "bf16",
        "Tolerance of the quantized layer's intermediate.");

  m.def("check", &check, "got"_a, "want"_a, "tolerance"_a, py::kw_only(), "dtype"_a = py::none(),
        "The C++ checker (moe/check.hpp) on float arrays: CheckResult.to_json() as a dict (passed, message, rel_l2, ...).");
  m.def("check_ids", &check_exact_ids, "got"_a, "want"_a, py::kw_only(), "group"_a = 0,
        "Exact comparison of id arrays (group > 0: the same multiset within each group of that many elements).");
}
