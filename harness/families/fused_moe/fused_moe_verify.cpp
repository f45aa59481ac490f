// Verify family "fused_moe": the CPU reference on tiny hand-computable problems
// and against an independent triple loop (CPU, no GPU or golden file needed:
// the expected values are derived in the code below), and the GPU layer (align
// kernel + stage 1 + stage 2 + reduce) against the reference on generated
// inputs (GPU; a short subset with VerifyOptions::quick).
#include <cmath>
#include <exception>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "kernels/fused_moe/fused_moe.hpp"
#include "moe/check.hpp"
#include "moe/fused_moe_tuning.hpp"
#include "moe/inputs.hpp"
#include "moe/model_config.hpp"
#include "moe/registry.hpp"
#include "harness/families/fused_moe/fused_moe_runner.hpp"
#include "reference/fused_moe/fused_moe_ref.hpp"

namespace moe {
namespace {

using fused_moe::Activation;
using fused_moe::make_problem;
using fused_moe::Problem;
using fused_moe::RouterWeight;

CaseResult from_check(const CheckResult& c) {
  CaseResult r;
  r.passed = c.passed;
  r.message = c.message;
  r.metrics = {{"rel_l2", c.rel_l2}, {"max_abs", c.max_abs}, {"count", c.count}};
  return r;
}

// x = [1, 2]; expert 0: gate [1, 0], up [0, 1] (g = 1, u = 2), w2 = [[1], [-2]];
// expert 1: gate [0, 1], up [1, 0] (g = 2, u = 1), w2 = [[1], [1]]; weights .5, .25.
// SiLU, bf16 intermediate: h0 = bf16(silu(1)*2) = bf16(1.46211) = 1.4609375,
// h1 = bf16(silu(2)) = bf16(1.76159) = 1.7578125;
// out = [.5 h0 + .25 h1, -h0 + .25 h1] = [1.1699219, -1.0214844] (exact in float).
CaseResult hand_case(bool on_input) {
  const std::vector<float> hidden{1, 2}, w1{1, 0, 0, 1, 0, 1, 1, 0}, w2{1, -2, 1, 1}, tw{0.5f, 0.25f};
  const std::vector<int32_t> ids{0, 1};
  const Problem p = make_problem({.tokens = 1, .model_dim = 2, .inter_dim = 1, .experts = 2, .top_k = 2}, DType::BF16,
                                 Activation::SiLU, on_input ? RouterWeight::OnInput : RouterWeight::OnOutput);
  const auto r = ref::fused_moe_ref(p, ref::ref_inputs_from_host(hidden, w1, w2, tw, ids), {});
  std::vector<float> want;
  if (!on_input) {
    want = {0.5f * 1.4609375f + 0.25f * 1.7578125f, -1.4609375f + 0.25f * 1.7578125f};
  } else {
    // Scaled input: g0 = .5, u0 = 1 -> bf16(silu(.5)*1) = bf16(0.311235) = 0.3105469;
    // g1 = .5, u1 = .25 -> bf16(silu(.5)*.25) = bf16(0.0778088) = 0.07763672.
    want = {0.3105469f + 0.07763672f, -2 * 0.3105469f + 0.07763672f};
  }
  Tolerance tol;
  tol.rtol = 1e-6;
  tol.max_rel_l2 = 1e-6;
  auto cr = from_check(check_close(r.out, want, tol));
  cr.metrics["out"] = r.out;
  return cr;
}

// The reference against a direct triple loop in double (independent code).
CaseResult naive_case(Activation act, RouterWeight rw, uint64_t seed) {
  InputSpec spec;
  spec.shape = {9, 24, 10, 5, 2};
  spec.values = ValueDist::FanIn;
  spec.seed = seed;
  const Routing routing = make_routing(spec);
  const Problem p = make_problem(spec.shape, DType::BF16, act, rw);
  std::vector<float> x(9 * 24), w1(5 * 20 * 24), w2(5 * 24 * 10);
  fill_host(spec, rng::Stream::Hidden, 0, x);
  fill_host(spec, rng::Stream::W1, 0, w1);
  fill_host(spec, rng::Stream::W2, 0, w2);
  ref::FusedMoeRefOptions opt;
  opt.inter_dtype = DType::F32;
  opt.chunk_rows = 4;
  const auto r = ref::fused_moe_ref(p, ref::ref_inputs_from_spec(spec, routing), opt);
  std::vector<float> want(9 * 24, 0.0f);
  for (int t = 0; t < 9; ++t) {
    std::vector<double> acc(24, 0.0);
    for (int j = 0; j < 2; ++j) {
      const int e = routing.topk_ids[t * 2 + j];
      const double w = routing.topk_weights[t * 2 + j];
      const double si = rw == RouterWeight::OnInput ? w : 1.0, so = rw == RouterWeight::OnInput ? 1.0 : w;
      std::vector<double> h(10);
      for (int i = 0; i < 10; ++i) {
        double g = 0, u = 0;
        for (int c = 0; c < 24; ++c) {
          g += double(x[t * 24 + c]) * w1[(e * 20 + i) * 24 + c];
          u += double(x[t * 24 + c]) * w1[(e * 20 + 10 + i) * 24 + c];
        }
        h[i] = static_cast<float>(ref::activation_ref(act, si * g) * (si * u));
      }
      for (int n = 0; n < 24; ++n) {
        double y = 0;
        for (int i = 0; i < 10; ++i) y += h[i] * w2[(e * 24 + n) * 10 + i];
        acc[n] += so * y;
      }
    }
    for (int n = 0; n < 24; ++n) want[t * 24 + n] = static_cast<float>(acc[n]);
  }
  Tolerance tol;
  tol.rtol = 1e-6;
  tol.atol = 1e-6 * r.out_rms;
  tol.max_rel_l2 = 1e-6;
  return from_check(check_close(r.out, want, tol));
}

// The reference with float accumulation (output rounded like a kernel's) must
// pass the derived tolerance against the double one.
CaseResult tolerance_case(DType dt) {
  InputSpec spec;
  spec.shape = {32, 320, 96, 8, 2};
  spec.dtype = dt;
  spec.values = ValueDist::FanIn;
  spec.seed = 17;
  const Routing routing = make_routing(spec);
  const Problem p = make_problem(spec.shape, dt);
  ref::FusedMoeRefOptions o64;
  o64.inter_dtype = dt;
  auto o32 = o64;
  o32.fp64 = false;
  const auto in = ref::ref_inputs_from_spec(spec, routing);
  const auto r64 = ref::fused_moe_ref(p, in, o64);
  auto r32 = ref::fused_moe_ref(p, in, o32);
  for (float& v : r32.out) v = round_to(dt, v);
  auto cr = from_check(check_close(r32.out, r64.out, ref::fused_moe_out_tolerance(p, dt, dt, r64.out_rms)));
  cr.metrics["max_rel_l2"] = ref::fused_moe_out_tolerance(p, dt, dt, r64.out_rms).max_rel_l2;
  return cr;
}

struct GpuCase {
  std::string name;
  std::string model;  // configs/model_configs.json name for shapes taken from a model; "" otherwise
  int64_t M, H, I;
  int32_t E, k;
  ValueDist values;
  RoutingDist routing;
  Activation act;
  RouterWeight rw;
  int64_t subset;  // tokens compared (0: all)
};

std::vector<GpuCase> gpu_cases(const ModelTable& models, bool quick) {
  std::vector<GpuCase> v;
  // aiter's odd test shapes as (M, N = 2*inter, K = model_dim, top_k, E).
  const int64_t odd[][5] = {{16, 14336, 1, 2, 4},   {4, 4, 8, 1, 2},       {1, 14336, 128, 2, 4}, {3, 14336, 128, 2, 4},
                            {16, 14336, 128, 1, 1}, {64, 7186, 128, 2, 8}, {64, 64, 128, 2, 8},   {1, 1024, 16384, 1, 2}};
  for (const auto& o : odd)
    v.push_back({fmt::format("odd/M{}_N{}_K{}_k{}_E{}", o[0], o[1], o[2], o[3], o[4]), "", o[0], o[2], o[1] / 2,
                 static_cast<int32_t>(o[4]), static_cast<int32_t>(o[3]), ValueDist::Normal, RoutingDist::Softmax,
                 Activation::SiLU, RouterWeight::OnOutput, 0});
  // The benchmarked model layers: the "layer" sweep of configs/model_configs.json.
  for (const SweepPoint& pt : models.points("layer", quick)) {
    const ModelConfig& m = pt.model;
    v.push_back({fmt::format("model/{}_M{}", m.name, pt.M), m.name, pt.M, m.model_dim, m.inter_dim, m.experts, m.top_k,
                 ValueDist::FanIn, RoutingDist::Softmax, Activation::SiLU, RouterWeight::OnOutput, 16});
  }
  for (auto dist : {RoutingDist::Balanced, RoutingDist::Zipf, RoutingDist::OneExpert})
    v.push_back({fmt::format("routing/{}", routing_dist_name(dist)), "", 200, 512, 384, 16, 4, ValueDist::FanIn, dist,
                 Activation::SiLU, RouterWeight::OnOutput, 0});
  v.push_back({"act/gelu_tanh_weight_on_input", "", 77, 264, 136, 8, 2, ValueDist::FanIn, RoutingDist::Softmax,
               Activation::GeluTanh, RouterWeight::OnInput, 0});
  return v;
}

std::vector<VerifyCase> fused_moe_cases(const VerifyOptions& o) {
  std::vector<VerifyCase> out;
  auto add_cpu = [&](std::string name, std::function<CaseResult()> f) {
    VerifyCase vc;
    vc.kernel = "fused_moe";
    vc.name = std::move(name);
    vc.run = std::move(f);
    out.push_back(std::move(vc));
  };
  add_cpu("cpu/hand_1tok_2exp_weight_on_output", [] { return hand_case(false); });
  add_cpu("cpu/hand_1tok_2exp_weight_on_input", [] { return hand_case(true); });
  add_cpu("cpu/naive_silu", [s = o.seed] { return naive_case(Activation::SiLU, RouterWeight::OnOutput, s); });
  add_cpu("cpu/naive_gelu_on_input", [s = o.seed] { return naive_case(Activation::GeluTanh, RouterWeight::OnInput, s); });
  add_cpu("cpu/tolerance_bf16", [] { return tolerance_case(DType::BF16); });
  add_cpu("cpu/tolerance_fp16", [] { return tolerance_case(DType::F16); });

  for (const GpuCase& c : gpu_cases(o.models, o.quick)) {
    VerifyCase vc;
    vc.kernel = "fused_moe";
    vc.name = "gpu/" + c.name;
    vc.needs_gpu = true;
    vc.params = {{"M", c.M},
                 {"model_dim", c.H},
                 {"inter_dim", c.I},
                 {"E", c.E},
                 {"top_k", c.k},
                 {"routing", routing_dist_name(c.routing)},
                 {"act", fused_moe::activation_name(c.act)},
                 {"router_weight", fused_moe::router_weight_name(c.rw)},
                 {"tokens_compared", c.subset == 0 ? c.M : std::min(c.M, c.subset)}};
    if (!c.model.empty()) vc.params["model"] = c.model;  // --where model=NAME
    vc.run = [c, seed = o.seed, tuned = o.tuned_table]() {
      CaseResult cr;
#if MOE_HAVE_GPU
      InputSpec spec;
      spec.shape = {c.M, c.H, c.I, c.E, c.k};
      spec.values = c.values;
      spec.routing = c.routing;
      spec.seed = seed;
      const fused_moe::check::DeviceLayer l(spec, c.act, c.rw);
      // Tuned table (--tuned-config) row for this device and shape, else the heuristic.
      const auto chosen = fused_moe::select_config(l.problem, fused_moe::device_limits(), tuned.get());
      const auto& cfg = chosen.cfg;
      gpu::Stream stream;
      const auto a = fused_moe::check::align_on_device(l, cfg.block_size(), stream.get());
      const auto got = fused_moe::check::run_layer(l, a, cfg, stream.get(), true);
      const bool big = c.subset != 0 && c.subset < c.M;
      const auto tokens = big ? fused_moe::check::pick_tokens(c.M, c.subset, seed + 7) : std::vector<int64_t>{};
      const auto want = fused_moe::check::reference_for(l, tokens, /*device_weights=*/c.subset != 0);
      const auto cmp = fused_moe::check::compare(l, got, want);
      cr.passed = cmp.passed();
      cr.message = cmp.message();
      cr.metrics = {{"config", cfg.to_string()},
                    {"config_source", chosen.source},
                    {"rel_l2", cmp.out.rel_l2},
                    {"max_abs", cmp.out.max_abs},
                    {"inter_rel_l2", cmp.inter.rel_l2},
                    {"experts_touched", want.experts_touched}};
      if (!chosen.row.empty()) cr.metrics["tuned_row"] = chosen.row;
      if (!chosen.note.empty()) cr.metrics["tuned_note"] = chosen.note;
#else
      (void)c;
      (void)seed;
      (void)tuned;
      cr = skipped_without_gpu_backend();
#endif
      return cr;
    };
    out.push_back(std::move(vc));
  }
  return out;
}

}  // namespace

KernelFamily make_fused_moe_family() {
  KernelFamily f;
  f.name = "fused_moe";
  f.summary = "fused MoE layer: gate/up GEMM + act*up, down GEMM with routed weight, fixed-order top-k reduce";
  f.impls = {"mma_sync_tiles"};
  f.dtypes = {"bf16", "fp16"};
  f.cases = fused_moe_cases;
  return f;
}

}  // namespace moe
