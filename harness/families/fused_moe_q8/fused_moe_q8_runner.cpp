#include "harness/families/fused_moe_q8/fused_moe_q8_runner.hpp"

#include "moe/error.hpp"

namespace moe::fused_moe_q8 {

ref::Q8RefOptions q8_ref_options_for(const Q8Problem& p, const Q8TileConfig& cfg, int stage) {
  MOE_REQUIRE(stage == 1 || stage == 2, "q8_ref_options_for: stage must be 1 or 2");
  ref::Q8RefOptions o;
  if (!cfg.wgmma || is_int8(p.scheme)) return o;
  o.accumulation = ref::Q8Accumulation::HopperFp8Mma;
  if (q8_promotes_every_group(cfg)) {
    o.segment_k = kGroup;  // the warp-specialized and swapped tiles promote into fp32 after every 128 of K
  } else if (stage == 2 && cfg.split_k > 1) {
    o.segment_k = q8_k_per_split(p.base.inter_dim, cfg);
  }
  return o;
}

}  // namespace moe::fused_moe_q8

#if MOE_HAVE_GPU
#include <algorithm>

#include <fmt/format.h>

#include "kernels/common/common_kernels.hpp"
#include "moe/error.hpp"
#include "harness/families/fused_moe/fused_moe_runner.hpp"

namespace moe::fused_moe_q8::check {

InputSpec q8_spec(const Q8Problem& p, uint64_t seed, RoutingDist routing) {
  InputSpec s;
  s.shape = {p.base.tokens, p.base.model_dim, p.base.inter_dim, p.base.experts, p.base.top_k};
  s.dtype = p.base.dtype;
  s.values = ValueDist::FanIn;
  s.routing = routing;
  s.seed = seed;
  return s;
}

void make_q8_weight(const quant::QuantProblem& full, const InputSpec& spec, rng::Stream stream, gpu::DeviceBuffer<uint8_t>& q,
                 gpu::DeviceBuffer<float>& scales) {
  const int64_t E = full.shape.batch, per = full.shape.rows * full.shape.cols;
  const int64_t scales_per = full.num_scales() / E;
  q = gpu::DeviceBuffer<uint8_t>(static_cast<size_t>(full.numel()));
  scales = gpu::DeviceBuffer<float>(static_cast<size_t>(full.num_scales()));
  const int64_t chunk = std::clamp<int64_t>((int64_t{1} << 30) / std::max<int64_t>(1, per), 1, E);
  gpu::DeviceBuffer<uint16_t> tmp(static_cast<size_t>(chunk * per));
  quant::Workspace ws(chunk);
  for (int64_t e0 = 0; e0 < E; e0 += chunk) {
    const int64_t ne = std::min(chunk, E - e0);
    kernels::fill_normal(tmp.data(), spec.dtype, static_cast<uint64_t>(ne * per), spec.seed, stream,
                         static_cast<uint64_t>(e0 * per), spec.scale(stream), nullptr);
    quant::QuantProblem part = full;
    part.shape.batch = ne;
    part.in_dtype = spec.dtype;
    quant::quantize(part, tmp.data(), q.data() + e0 * per, scales.data() + e0 * scales_per, ws, nullptr,
                    quant::CheckMode::Sync);
  }
  MOE_GPU_CHECK(hipDeviceSynchronize());
}

namespace {

std::vector<float> widen(const std::vector<uint16_t>& v, DType dt) {
  std::vector<float> f(v.size());
  for (size_t i = 0; i < v.size(); ++i) f[i] = dt == DType::F16 ? f16_bits_to_f32(v[i]) : bf16_bits_to_f32(v[i]);
  return f;
}

}  // namespace

Q8DeviceLayer::Q8DeviceLayer(const Q8Problem& p, const InputSpec& s) : problem(p), spec(s) {
  problem.validate();
  spec.validate();
  routing = make_routing(spec);
  hidden = gpu::DeviceBuffer<uint16_t>(static_cast<size_t>(spec.hidden_elems()));
  kernels::fill_normal(hidden.data(), spec.dtype, hidden.size(), spec.seed, rng::Stream::Hidden, 0,
                       spec.scale(rng::Stream::Hidden), nullptr);
  make_q8_weight(problem.w1_quant(spec.dtype), spec, rng::Stream::W1, w1, w1_scale);
  make_q8_weight(problem.w2_quant(spec.dtype), spec, rng::Stream::W2, w2, w2_scale);
  w1_scale_host = w1_scale.download();
  w2_scale_host = w2_scale.download();
  topk_weights = gpu::DeviceBuffer<float>(routing.topk_weights.size());
  topk_ids = gpu::DeviceBuffer<int32_t>(routing.topk_ids.size());
  topk_weights.upload(routing.topk_weights);
  topk_ids.upload(routing.topk_ids);
  MOE_GPU_CHECK(hipDeviceSynchronize());
}

Q8Tensors Q8DeviceLayer::tensors(void* out) const {
  Q8Tensors t;
  t.hidden = hidden.data();
  t.w1 = w1.data();
  t.w1_scale = w1_scale.data();
  t.w2 = w2.data();
  t.w2_scale = w2_scale.data();
  t.topk_weights = topk_weights.data();
  t.topk_ids = topk_ids.data();
  t.out = out;
  return t;
}

ref::Q8RefInputs Q8DeviceLayer::ref_inputs() const {
  auto source = [](quant::QuantProblem qp, const uint8_t* dev, const std::vector<float>* sc) {
    return [qp, dev, sc](int32_t e, int64_t row0, int64_t nrows, double* out, double* decoded) {
      const int64_t off = (e * qp.shape.rows + row0) * qp.shape.cols;
      std::vector<uint8_t> codes(static_cast<size_t>(nrows * qp.shape.cols));
      MOE_GPU_CHECK(hipMemcpy(codes.data(), dev + off, codes.size(), hipMemcpyDeviceToHost));
      ref::dequantize_rows(qp, codes, *sc, e, row0, nrows, out, off, decoded);
    };
  };
  ref::Q8RefInputs in;
  in.w1 = source(problem.w1_quant(spec.dtype), w1.data(), &w1_scale_host);
  in.w2 = source(problem.w2_quant(spec.dtype), w2.data(), &w2_scale_host);
  in.topk_weights = routing.topk_weights;
  in.topk_ids = routing.topk_ids;
  return in;
}

Q8Align align_on_host(const Q8DeviceLayer& l, int32_t block_size) {
  return fused_moe::check::align_on_host(
      align::AlignShape{l.problem.base.tokens, l.problem.base.top_k, l.problem.base.experts, block_size},
      l.routing.topk_ids);
}

std::string_view part_name(Part p) {
  return p == Part::Stage1 ? "stage1" : (p == Part::Stage2 ? "stage2" : "layer");
}

std::string Q8CheckResult::message() const {
  std::string m;
  if (!a1_exact) m += "a1 codes/scales differ from ref::quantize; ";
  if (!a2_exact) m += "a2 codes/scales differ from ref::quantize(GPU intermediate); ";
  if (inter.count && !inter.passed) m += "intermediate: " + inter.message + "; ";
  if (out.count && !out.passed) m += "out: " + out.message + "; ";
  return m + detail;
}

Q8CheckResult run_and_check(const Q8DeviceLayer& l, const Q8LayerConfig& cfg, Part part, int64_t max_tokens,
                            hipStream_t s, uint64_t seed) {
  const Q8Problem& p = l.problem;
  const auto& b = p.base;
  const Q8Align al = align_on_host(l, cfg.block_size());
  const Q8WorkspaceSizes sz = workspace_sizes(p, cfg);
  gpu::DeviceBuffer<uint8_t> a1(static_cast<size_t>(sz.a1)), a2(static_cast<size_t>(sz.a2));
  gpu::DeviceBuffer<float> a1s(static_cast<size_t>(sz.a1_scale)), a2s(static_cast<size_t>(sz.a2_scale));
  gpu::DeviceBuffer<uint16_t> inter(static_cast<size_t>(sz.intermediate)), out(static_cast<size_t>(b.tokens * b.model_dim));
  gpu::DeviceBuffer<float> partial(static_cast<size_t>(sz.partial));
  for (auto* buf : {&a1, &a2}) buf->poison(0xFF, s);
  a1s.poison(0xFF, s);
  a2s.poison(0xFF, s);
  inter.poison(0xFF, s);
  out.poison(0xFF, s);
  partial.poison(0xFF, s);
  quant::Workspace qws(1);
  auto counters = gpu::DeviceBuffer<int32_t>::zeros(fused_moe::kTileCounters);
  const Q8Tensors t = l.tensors(out.data());

  if (part == Part::Layer) {
    fused_moe_q8(p, t, al.view,
                 Q8Workspace{a1.data(), a1s.data(), inter.data(), a2.data(), a2s.data(), partial.data(), counters.data()},
                 qws, cfg, s, quant::CheckMode::Sync);
  } else if (part == Part::Stage1) {
    quant::quantize(p.a1_quant(), l.hidden.data(), a1.data(), a1s.data(), qws, s, quant::CheckMode::Sync);
    launch_q8_stage1(p, a1.data(), a1s.data(), t, al.view, inter.data(), cfg.stage1, s, counters.data());
  } else {
    // stage 2 alone: a2 from an independent random 16-bit intermediate
    kernels::fill_normal(inter.data(), b.dtype, inter.size(), seed + 77, rng::Stream::Test, 0, 1.0f, s);
    quant::quantize(p.a2_quant(), inter.data(), a2.data(), a2s.data(), qws, s, quant::CheckMode::Sync);
    launch_q8_stage2(p, a2.data(), a2s.data(), t, al.view, partial.data(), cfg.stage2, s, counters.data() + 1);
    fused_moe::Tensors ft;
    ft.topk_ids = t.topk_ids;
    ft.out = t.out;
    fused_moe::launch_reduce(b, ft, partial.data(), cfg.stage2.split_k, s);
  }
  MOE_GPU_CHECK(hipStreamSynchronize(s));

  Q8CheckResult res;
  const std::vector<int64_t> sel = fused_moe::check::pick_tokens(b.tokens, std::min(max_tokens, b.tokens), seed);
  const ref::Q8RefInputs in = l.ref_inputs();
  const int64_t k = b.top_k, I = b.inter_dim, H = b.model_dim;
  if (part != Part::Stage2) {
    const auto hid = widen(l.hidden.download(s), b.dtype);
    const auto want = ref::quantize(p.a1_quant(), hid);
    const auto got_q = a1.download(s);
    const auto got_s = a1s.download(s);
    res.a1_exact = got_q == want.q && got_s == want.scales;
    const auto r1 = ref::q8_ref_stage1(p, got_q, got_s, in, q8_ref_options_for(p, cfg.stage1, 1), sel);
    const auto inter_all = widen(inter.download(s), b.dtype);
    std::vector<float> got(r1.intermediate.size());
    for (size_t ti = 0; ti < r1.tokens.size(); ++ti)
      std::copy_n(inter_all.begin() + r1.tokens[ti] * k * I, k * I, got.begin() + static_cast<int64_t>(ti) * k * I);
    res.inter = check_close(got, r1.intermediate, ref::q8_inter_tolerance(p, r1.inter_rms));
  }
  if (part != Part::Stage1) {
    const auto got_q = a2.download(s);
    const auto got_s = a2s.download(s);
    if (part == Part::Layer) {
      const auto want = ref::quantize(p.a2_quant(), widen(inter.download(s), b.dtype));
      res.a2_exact = got_q == want.q && got_s == want.scales;
    }
    const auto r2 = ref::q8_ref_stage2(p, got_q, got_s, in, q8_ref_options_for(p, cfg.stage2, 2), sel);
    const auto out_all = widen(out.download(s), b.dtype);
    std::vector<float> got(r2.out.size());
    for (size_t ti = 0; ti < r2.tokens.size(); ++ti)
      std::copy_n(out_all.begin() + r2.tokens[ti] * H, H, got.begin() + static_cast<int64_t>(ti) * H);
    res.out = check_close(got, r2.out, ref::q8_out_tolerance(p, r2.out_rms));
  }
  auto acc_name = [&](const Q8TileConfig& t, int stage) {
    return q8_ref_options_for(p, t, stage).accumulation == ref::Q8Accumulation::HopperFp8Mma ? "hopper_fp8_model"
                                                                                                  : "exact";
  };
  res.detail = fmt::format("{} {} cfg {} ref accumulation s1 {} s2 {}", p.summary(), part_name(part), cfg.to_string(),
                           acc_name(cfg.stage1, 1), acc_name(cfg.stage2, 2));
  return res;
}

}  // namespace moe::fused_moe_q8::check
#endif
