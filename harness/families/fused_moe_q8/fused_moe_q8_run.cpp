// `moe-harness run fused_moe_q8`: the quantized (FP8 e4m3 / INT8) fused MoE layer
// on a user's tensors.
//
// Inputs: hidden (M, H) bf16/fp16 (quantized here with the reference quantizer,
// in the scheme's activation granularity), or besides it activations already
// quantized by the user's own quantizer: a1 (M, H) codes with a1_scale in the
// scheme's activation layout (the reference then starts from those; our GPU
// kernel quantizes for itself, so it does not run); w1 (E, 2I, H) and w2 (E, H, I) codes
// ('|u1' e4m3 for the fp8 schemes, '|i1' int8 for int8_token) with w1_scale and
// w2_scale in the scheme's layout (core/include/moe/contract/fused_moe_q8.hpp):
//   --param scheme=  0 fp8_tensor  scales (E)
//                    1 fp8_token   scales (E, N)            (N = 2I for w1, H for w2; (E, N, 1) accepted)
//                    2 fp8_block   scales (E, ceil(N/128), ceil(K/128))
//                    3 int8_token  scales (E, N)
//   --param fp8=     0 e4m3fn, 1 e4m3fnuz
// and the routing of fused_moe (topk_weights + topk_ids in [0, E), or router_logits).
// Output out (M, H) in hidden's dtype, checked with ref::q8_out_tolerance against
// ref::q8_ref_layer. That tolerance assumes the same quantized intermediate (a2):
// an --expect output from a kernel whose intermediate rounds differently before
// quantization can fail where an a2 code flips. The GPU kernel is checked in
// stages as verify does (intermediate vs stage 1, a2 == quantize(intermediate),
// out vs stage 2 on the GPU's a2), with the reference's accumulation model of
// the tile config that ran.
#include <algorithm>
#include <cmath>
#include <memory>
#include <set>
#include <span>

#include <fmt/format.h>

#include "harness/families/fused_moe/fused_moe_run.hpp"
#include "harness/families/fused_moe_q8/fused_moe_q8_runner.hpp"
#include "kernels/fused_moe_q8/fused_moe_q8.hpp"
#include "moe/error.hpp"
#include "moe/npy.hpp"
#include "moe/run_kernel.hpp"
#include "reference/fused_moe_q8/fused_moe_q8_ref.hpp"
#if MOE_HAVE_GPU
#include "moe/gpu.hpp"
#endif

namespace moe {
namespace {

using fused_moe_q8::Q8Problem;
using fused_moe_q8::Scheme;
using namespace run_fused;

Q8Problem problem_of(const Tensors& in, const Params& p) {
  const int32_t scheme = int_param(p, "scheme");
  MOE_REQUIRE(scheme >= 0 && scheme <= 3,
              fmt::format("--param scheme={}: must be 0 fp8_tensor, 1 fp8_token, 2 fp8_block or 3 int8_token", scheme));
  const int32_t fp8 = int_param(p, "fp8");
  MOE_REQUIRE(fp8 == 0 || fp8 == 1, fmt::format("--param fp8={}: must be 0 (e4m3fn) or 1 (e4m3fnuz)", fp8));
  const auto& h = in.at("hidden");
  Q8Problem q = fused_moe_q8::make_q8_problem(static_cast<Scheme>(scheme), h.shape[0], h.shape[1], in.at("w2").shape[2],
                                              experts_of(in), top_k_of(in, p));
  q.base.dtype = h.dtype;
  q.fp8 = fp8 ? Fp8Format::E4M3FNUZ : Fp8Format::E4M3FN;
  const int32_t act = int_param(p, "activation");
  MOE_REQUIRE(act == 0 || act == 1, fmt::format("--param activation={}: must be 0 (silu) or 1 (gelu_tanh)", act));
  q.base.act = static_cast<fused_moe::Activation>(act);
  const int32_t rw = int_param(p, "router_weight_on_input");
  MOE_REQUIRE(rw == 0 || rw == 1, fmt::format("--param router_weight_on_input={}: must be 0 or 1", rw));
  q.base.router_weight = rw ? fused_moe::RouterWeight::OnInput : fused_moe::RouterWeight::OnOutput;
  return q;
}

std::string shape_text(const std::vector<int64_t>& s) {
  std::string t;
  for (auto d : s) t += (t.empty() ? "" : ", ") + std::to_string(d);
  return "(" + t + (s.size() == 1 ? ",)" : ")");
}

// A scale tensor: the scheme's shape up to dimensions of size 1,
// every value finite and > 0 (>= 0 for activations: an all-zero row has scale 0).
void validate_scales(const Tensor& s, const quant::QuantProblem& qp, const char* name, std::string_view scheme,
                     bool zero_ok = false) {
  // Dimensions of size 1 do not change the row-major order: (M,), (M, 1) and (1, M) all hold M scales.
  const auto squeezed = [](std::vector<int64_t> v) {
    std::erase(v, int64_t{1});
    return v;
  };
  const std::vector<int64_t> want = qp.scale_shape();
  MOE_REQUIRE(squeezed(s.shape) == squeezed(want),
              fmt::format("{} has shape {}; scheme {} needs {}", name, shape_text(s.shape), scheme, shape_text(want)));
  for (size_t i = 0; i < s.f.size(); ++i)
    MOE_REQUIRE(std::isfinite(s.f[i]) && (s.f[i] > 0 || (zero_ok && s.f[i] == 0)),
                fmt::format("{}[{}] = {}: scales must be finite and {}", name, i, s.f[i], zero_ok ? ">= 0" : "> 0"));
}

void validate_layer(const Tensors& in, const Params& p) {
  const auto& h = in.at("hidden");
  const auto& w1 = in.at("w1");
  const auto& w2 = in.at("w2");
  const int64_t E = w1.shape[0], H = h.shape[1], I = w2.shape[2];
  MOE_REQUIRE(w2.shape[0] == E && w2.shape[1] == H,
              fmt::format("w2 has shape {}, expected (E, model_dim, inter) = ({}, {}, {})", shape_text(w2.shape), E, H, I));
  MOE_REQUIRE(w1.shape[1] == 2 * I && w1.shape[2] == H,
              fmt::format("w1 has shape {}, expected (E, 2*inter, model_dim) = ({}, {}, {})", shape_text(w1.shape), E, 2 * I, H));
  validate_routing(in, p, h.shape[0], experts_of(in), true);
  const Q8Problem q = problem_of(in, p);
  q.validate();
  const DType codes = fused_moe_q8::is_int8(q.scheme) ? DType::I8 : DType::F8E4M3;
  const std::string_view scheme = fused_moe_q8::scheme_name(q.scheme);
  for (const char* name : {"w1", "w2"})
    MOE_REQUIRE(in.at(name).dtype == codes, fmt::format("{} is {} ('{}'); scheme {} takes {} codes ('{}')", name,
                                                        dtype_name(in.at(name).dtype), npy_descr(in.at(name).dtype),
                                                        scheme, dtype_name(codes), npy_descr(codes)));
  validate_scales(in.at("w1_scale"), q.w1_quant(), "w1_scale", scheme);
  validate_scales(in.at("w2_scale"), q.w2_quant(), "w2_scale", scheme);
  MOE_REQUIRE(in.count("a1") == in.count("a1_scale"), "a1 and a1_scale come together (activations already quantized)");
  if (in.count("a1")) {
    const auto& a1 = in.at("a1");
    MOE_REQUIRE(a1.shape == h.shape, fmt::format("a1 has shape {}; it quantizes hidden {}", shape_text(a1.shape),
                                                 shape_text(h.shape)));
    MOE_REQUIRE(a1.dtype == codes, fmt::format("a1 is {} ('{}'); scheme {} takes {} codes ('{}')", dtype_name(a1.dtype),
                                               npy_descr(a1.dtype), scheme, dtype_name(codes), npy_descr(codes)));
    validate_scales(in.at("a1_scale"), q.a1_quant(), "a1_scale", scheme, true);
  }
}

ref::Q8RefInputs ref_inputs(const Q8Problem& q, const Tensors& in, const Routed& r) {
  ref::Q8RefInputs src;
  src.w1 = ref::q8_weights_from_host(q.w1_quant(), in.at("w1").codes, in.at("w1_scale").f);
  src.w2 = ref::q8_weights_from_host(q.w2_quant(), in.at("w2").codes, in.at("w2_scale").f);
  src.topk_weights = r.weights;
  src.topk_ids = r.ids;
  return src;
}

Tensors reference(const Tensors& in, const Params& p) {
  const Q8Problem q = problem_of(in, p);
  const Routed r = routed(in, p);
  ref::Q8RefInputs src = ref_inputs(q, in, r);
  std::set<int32_t> hit(r.ids.begin(), r.ids.end());
  const auto& b = q.base;
  auto meter = std::make_shared<ProgressMeter>(fmt::format("fused_moe_q8 reference ({} of {} experts hit)", hit.size(), b.experts),
                                               static_cast<int64_t>(hit.size()) * 3 * b.inter_dim * b.model_dim);
  for (auto* f : {&src.w1, &src.w2}) {
    const int64_t cols = f == &src.w1 ? b.model_dim : b.inter_dim;
    *f = [inner = *f, meter, cols](int32_t e, int64_t row0, int64_t nrows, double* out, double* decoded) {
      inner(e, row0, nrows, out, decoded);
      meter->add(nrows * cols);
    };
  }
  ref::Q8Stage2Result res;
  if (in.count("a1")) {
    const auto r1 = ref::q8_ref_stage1(q, in.at("a1").codes, in.at("a1_scale").f, src);
    const auto a2 = ref::quantize(q.a2_quant(), r1.intermediate);
    res = ref::q8_ref_stage2(q, a2.q, a2.scales, src);
  } else {
    res = ref::q8_ref_layer(q, in.at("hidden").f, src).stage2;
  }
  Tensors out;
  out["out"] = float_tensor(b.dtype, std::move(res.out), {b.tokens, b.model_dim});  // not rounded: the tolerance covers the output rounding
  return out;
}

#if MOE_HAVE_GPU
fused_moe_q8::Q8LayerConfig config_of(const Q8Problem& q) {
  return fused_moe_q8::choose_q8_config(q, fused_moe_q8::q8_device_limits());
}

std::vector<float> widen16(const std::vector<uint16_t>& bits, DType dt) {
  std::vector<float> f(bits.size());
  for (size_t i = 0; i < bits.size(); ++i) f[i] = dt == DType::BF16 ? bf16_bits_to_f32(bits[i]) : f16_bits_to_f32(bits[i]);
  return f;
}

// The layer on the device; besides out, the intermediate and its quantization a2
// (for the staged check).
Tensors device(const Tensors& in, const Params& p) {
  if (in.count("a1")) return {};  // our kernel quantizes hidden itself
  const Q8Problem q = problem_of(in, p);
  const auto& b = q.base;
  const Routed r = routed(in, p);
  const auto cfg = config_of(q);
  gpu::Stream stream;
  const hipStream_t s = stream.get();
  gpu::DeviceBuffer<uint16_t> hidden(in.at("hidden").bits.size());
  hidden.upload(in.at("hidden").bits);
  auto up8 = [](const Tensor& t) {
    gpu::DeviceBuffer<uint8_t> d(t.codes.size());
    d.upload(t.codes);
    return d;
  };
  auto upf = [](const std::vector<float>& v) {
    gpu::DeviceBuffer<float> d(v.size());
    d.upload(v);
    return d;
  };
  const auto w1 = up8(in.at("w1")), w2 = up8(in.at("w2"));
  const auto w1s = upf(in.at("w1_scale").f), w2s = upf(in.at("w2_scale").f), tw = upf(r.weights);
  gpu::DeviceBuffer<int32_t> ti(r.ids.size());
  ti.upload(r.ids);
  const auto aligned = fused_moe::check::align_on_host(
      align::AlignShape{b.tokens, b.top_k, b.experts, cfg.block_size()}, r.ids);
  const fused_moe::AlignedRouting& view = aligned.view;
  const auto sz = fused_moe_q8::workspace_sizes(q, cfg);
  gpu::DeviceBuffer<uint8_t> a1(static_cast<size_t>(sz.a1)), a2(static_cast<size_t>(sz.a2));
  gpu::DeviceBuffer<float> a1s(static_cast<size_t>(sz.a1_scale)), a2s(static_cast<size_t>(sz.a2_scale)),
      partial(static_cast<size_t>(sz.partial));
  gpu::DeviceBuffer<uint16_t> inter(static_cast<size_t>(sz.intermediate)), out(static_cast<size_t>(b.tokens * b.model_dim));
  a1.poison(0xFF, s);
  a2.poison(0xFF, s);
  a1s.poison(0xFF, s);
  a2s.poison(0xFF, s);
  partial.poison(0xFF, s);
  inter.poison(0xFF, s);
  out.poison(0xFF, s);
  fused_moe_q8::Q8Tensors t;
  t.hidden = hidden.data();
  t.w1 = w1.data();
  t.w1_scale = w1s.data();
  t.w2 = w2.data();
  t.w2_scale = w2s.data();
  t.topk_weights = tw.data();
  t.topk_ids = ti.data();
  t.out = out.data();
  quant::Workspace qws(1);
  auto counters = gpu::DeviceBuffer<int32_t>::zeros(fused_moe::kTileCounters);
  fused_moe_q8::fused_moe_q8(q, t, view,
                             fused_moe_q8::Q8Workspace{a1.data(), a1s.data(), inter.data(), a2.data(), a2s.data(),
                                                       partial.data(), counters.data()},
                             qws, cfg, s, quant::CheckMode::Sync);
  MOE_GPU_CHECK(hipStreamSynchronize(s));
  Tensors res;
  Tensor o;
  o.dtype = b.dtype;
  o.shape = {b.tokens, b.model_dim};
  o.bits = out.download(s);
  o.f = widen16(o.bits, b.dtype);
  res["out"] = std::move(o);
  Tensor it;
  it.dtype = b.dtype;
  it.shape = {b.slots(), b.inter_dim};
  it.bits = inter.download(s);
  it.f = widen16(it.bits, b.dtype);
  res["intermediate"] = std::move(it);
  Tensor c2;
  c2.dtype = fused_moe_q8::is_int8(q.scheme) ? DType::I8 : DType::F8E4M3;
  c2.shape = {b.slots(), b.inter_dim};
  c2.codes = a2.download(s);
  res["a2"] = std::move(c2);
  Tensor s2;
  s2.dtype = DType::F32;
  s2.shape = {static_cast<int64_t>(a2s.size())};
  s2.f = a2s.download(s);
  res["a2_scale"] = std::move(s2);
  return res;
}

// Our kernel, stage by stage (as fused_moe_q8_runner's run_and_check).
Checks check_device(const Tensors& got, const Tensors& in, const Params& p) {
  const Q8Problem q = problem_of(in, p);
  const auto cfg = config_of(q);
  const Routed r = routed(in, p);
  const ref::Q8RefInputs src = ref_inputs(q, in, r);
  Checks out;
  const auto a1 = ref::quantize(q.a1_quant(), in.at("hidden").f);
  const auto r1 = ref::q8_ref_stage1(q, a1.q, a1.scales, src, fused_moe_q8::q8_ref_options_for(q, cfg.stage1, 1));
  // Slots of invalid experts have no intermediate row; the routing here has none.
  out.emplace_back("intermediate", check_close(got.at("intermediate").f, r1.intermediate, ref::q8_inter_tolerance(q, r1.inter_rms)));
  const auto a2 = ref::quantize(q.a2_quant(), got.at("intermediate").f);
  std::vector<int32_t> want_a2(a2.q.begin(), a2.q.end()), got_a2(got.at("a2").codes.begin(), got.at("a2").codes.end());
  out.emplace_back("a2", check_exact(got_a2, want_a2));
  std::vector<int32_t> want_s(a2.scales.size()), got_s(got.at("a2_scale").f.size());
  for (size_t i = 0; i < want_s.size(); ++i) want_s[i] = static_cast<int32_t>(f32_bits(a2.scales[i]));
  for (size_t i = 0; i < got_s.size(); ++i) got_s[i] = static_cast<int32_t>(f32_bits(got.at("a2_scale").f[i]));
  out.emplace_back("a2_scale (bits)", check_exact(got_s, want_s));
  const auto r2 = ref::q8_ref_stage2(q, got.at("a2").codes, got.at("a2_scale").f, src, fused_moe_q8::q8_ref_options_for(q, cfg.stage2, 2));
  out.emplace_back("out", check_close(got.at("out").f, r2.out, ref::q8_out_tolerance(q, r2.out_rms)));
  return out;
}
#endif

Checks check(const Tensors& got, const Tensors& ref, const Tensors& in, const Params& p, bool external) {
#if MOE_HAVE_GPU
  if (!external) return check_device(got, in, p);
#endif
  (void)external;
  const Q8Problem q = problem_of(in, p);
  const auto& want = ref.at("out").f;
  return {{"out", check_close(got.at("out").f, want, ref::q8_out_tolerance(q, rms(want)))}};
}

}  // namespace

std::vector<RunKernel> fused_moe_q8_run_kernels() {
  RunKernel k;
  k.name = "fused_moe_q8";
  k.summary = "quantized fused MoE layer (fp8 e4m3 per-tensor/per-token/block-128, int8 per-token), bf16/fp16 activations";
  k.inputs = {{"hidden", {DType::BF16, DType::F16}, 2, false, "(M, model_dim) activations (quantized here unless a1 is given)"},
              {"a1", {DType::F8E4M3, DType::I8}, 2, true,
               "(M, model_dim) activations already quantized (with a1_scale): the reference starts from them"},
              {"a1_scale", {DType::F32}, -1, true,
               "a1's scales in the scheme's activation layout: (1) per-tensor, (M) per-token, (M, ceil(model_dim/128)) block"},
              {"w1", {DType::F8E4M3, DType::I8}, 3, false, "(E, 2*inter, model_dim) codes: '|u1' e4m3 or '|i1' int8"},
              {"w1_scale", {DType::F32}, -1, false, "w1 scales in the scheme's layout (see scheme)"},
              {"w2", {DType::F8E4M3, DType::I8}, 3, false, "(E, model_dim, inter) codes"},
              {"w2_scale", {DType::F32}, -1, false, "w2 scales in the scheme's layout"}};
  k.params = {{"scheme", true, 0,
               "0 fp8_tensor (scales (E)), 1 fp8_token (E, N), 2 fp8_block (E, ceil(N/128), ceil(K/128)), "
               "3 int8_token (E, N)"},
              {"fp8", false, 0, "fp8 codes: 0 e4m3fn, 1 e4m3fnuz"}};
  add_layer_common(k, validate_layer, reference, check);
#if MOE_HAVE_GPU
  k.device = device;
#endif
  return {std::move(k)};
}

}  // namespace moe
