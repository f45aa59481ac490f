// Verify family "fused_moe_q8": the quantized fused MoE reference on a
// hand-computable layer and against the unquantized fp64 layer within the
// quantization step model (CPU), and the GPU layer (quantizers + stage 1 +
// stage 2 + reduce) against the staged reference on generated inputs (GPU;
// a short subset with VerifyOptions::quick).
#include <algorithm>
#include <cmath>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "kernels/fused_moe_q8/fused_moe_q8.hpp"
#include "moe/check.hpp"
#include "moe/error.hpp"
#include "moe/inputs.hpp"
#include "moe/model_config.hpp"
#include "moe/registry.hpp"
#include "reference/fused_moe/fused_moe_ref.hpp"
#include "harness/families/fused_moe_q8/fused_moe_q8_runner.hpp"
#include "reference/fused_moe_q8/fused_moe_q8_ref.hpp"

namespace moe {
namespace {

using fused_moe_q8::Q8Problem;
using fused_moe_q8::Scheme;

// fp8 per tensor, hidden 0.875 everywhere (scale 2^-9, codes 0x7E), all weight
// codes 1.0 with scale 1/16: out = 448 * fl32(h / 448), h = bf16(silu(.875) * .875).
CaseResult hand_case() {
  const Q8Problem p = fused_moe_q8::make_q8_problem(Scheme::Fp8Tensor, 1, 16, 16, 1, 1);
  const std::vector<float> hidden(16, 0.875f), w1s{1.0f / 16}, w2s{1.0f / 16}, tw{1.0f};
  const std::vector<uint8_t> w1q(512, 0x38), w2q(256, 0x38);
  const std::vector<int32_t> ids{0};
  ref::Q8RefInputs in;
  in.w1 = ref::q8_weights_from_host(p.w1_quant(), w1q, w1s);
  in.w2 = ref::q8_weights_from_host(p.w2_quant(), w2q, w2s);
  in.topk_weights = tw;
  in.topk_ids = ids;
  const auto r = ref::q8_ref_layer(p, hidden, in);
  const double g = 0.875;
  const float h = round_to(DType::BF16, static_cast<float>(g / (1 + std::exp(-g)) * g));
  const std::vector<float> want(16, static_cast<float>(448.0 * static_cast<double>(h / 448.0f)));
  Tolerance tol;
  tol.rtol = 1e-7;
  tol.max_rel_l2 = 1e-7;
  const CheckResult c = check_close(r.stage2.out, want, tol);
  CaseResult cr;
  cr.passed = c.passed && r.a1.q[0] == 0x7E;
  cr.message = c.message;
  cr.metrics = {{"rel_l2", c.rel_l2}, {"a1_scale", r.a1.scales[0]}};
  return cr;
}

// The quantized reference vs the unquantized fp64 layer on the same values.
CaseResult step_model_case(Scheme s, uint64_t seed) {
  const Q8Problem p = fused_moe_q8::make_q8_problem(s, 6, 272, 144, 8, 2);
  InputSpec spec;
  spec.shape = {6, 272, 144, 8, 2};
  spec.values = ValueDist::FanIn;
  spec.seed = seed;
  const Routing routing = make_routing(spec);
  std::vector<float> x(static_cast<size_t>(spec.hidden_elems())), w1(static_cast<size_t>(spec.w1_elems())),
      w2(static_cast<size_t>(spec.w2_elems()));
  fill_host(spec, rng::Stream::Hidden, 0, x);
  fill_host(spec, rng::Stream::W1, 0, w1);
  fill_host(spec, rng::Stream::W2, 0, w2);
  const auto q1 = ref::quantize(p.w1_quant(), w1), q2 = ref::quantize(p.w2_quant(), w2);
  ref::Q8RefInputs in;
  in.w1 = ref::q8_weights_from_host(p.w1_quant(), q1.q, q1.scales);
  in.w2 = ref::q8_weights_from_host(p.w2_quant(), q2.q, q2.scales);
  in.topk_weights = routing.topk_weights;
  in.topk_ids = routing.topk_ids;
  const auto q = ref::q8_ref_layer(p, x, in);
  ref::FusedMoeRefOptions o;
  o.inter_dtype = DType::F32;
  const auto exact = ref::fused_moe_ref(p.base, ref::ref_inputs_from_host(x, w1, w2, routing.topk_weights, routing.topk_ids), o);
  Tolerance tol;
  tol.atol = 1e30;  // elementwise: no bound (quantization); the L2 bound is the step model
  tol.max_rel_l2 = ref::q8_vs_exact_rel_l2(p);
  const CheckResult c = check_close(q.stage2.out, exact.out, tol);
  CaseResult cr;
  cr.passed = c.passed;
  cr.message = c.message;
  cr.metrics = {{"rel_l2", c.rel_l2}, {"bound", tol.max_rel_l2}};
  return cr;
}

struct GpuCase {
  std::string name;
  std::string model;  // configs/model_configs.json name for shapes taken from a model; "" otherwise
  Scheme scheme;
  int64_t M, H, I;
  int32_t E, k;
  int64_t subset;
};

std::vector<GpuCase> gpu_cases(const ModelTable& models, bool quick) {
  std::vector<GpuCase> v;
  for (Scheme s : fused_moe_q8::kAllSchemes) {
    const std::string sn(fused_moe_q8::scheme_name(s));
    v.push_back({sn + "/odd_M3_H272_I144_E8_k2", "", s, 3, 272, 144, 8, 2, 0});
    v.push_back({sn + "/odd_M255_H400_I208_E16_k4", "", s, 255, 400, 208, 16, 4, 0});
    // Model layers: the "fused_moe_q8_verify" sweep of configs/model_configs.json.
    for (const SweepPoint& pt : models.points("fused_moe_q8_verify", quick)) {
      const ModelConfig& m = pt.model;
      v.push_back({fmt::format("{}/model/{}_M{}", sn, m.name, pt.M), m.name, s, pt.M, m.model_dim, m.inter_dim,
                   m.experts, m.top_k, 4});
    }
  }
  return v;
}

std::vector<VerifyCase> fused_moe_q8_cases(const VerifyOptions& o) {
  std::vector<VerifyCase> out;
  auto add = [&](std::string name, bool gpu, nlohmann::json params, std::function<CaseResult()> f) {
    VerifyCase vc;
    vc.kernel = "fused_moe_q8";
    vc.name = std::move(name);
    vc.needs_gpu = gpu;
    vc.params = params.is_null() ? nlohmann::json::object() : std::move(params);  // {} is null in nlohmann::json
    vc.run = std::move(f);
    out.push_back(std::move(vc));
  };
  add("cpu/hand_fp8_tensor", false, {}, [] { return hand_case(); });
  for (Scheme s : fused_moe_q8::kAllSchemes)
    add(fmt::format("cpu/step_model/{}", fused_moe_q8::scheme_name(s)), false, {},
        [s, seed = o.seed] { return step_model_case(s, seed); });
  for (const GpuCase& c : gpu_cases(o.models, o.quick)) {
    nlohmann::json params = {{"scheme", fused_moe_q8::scheme_name(c.scheme)},
                             {"M", c.M},
                             {"model_dim", c.H},
                             {"inter_dim", c.I},
                             {"E", c.E},
                             {"top_k", c.k},
                             {"tokens_compared", c.subset == 0 ? c.M : c.subset}};
    if (!c.model.empty()) params["model"] = c.model;  // --where model=NAME
    add("gpu/" + c.name, true, params, [c, seed = o.seed]() {
      CaseResult cr;
#if MOE_HAVE_GPU
      const Q8Problem p = fused_moe_q8::make_q8_problem(c.scheme, c.M, c.H, c.I, c.E, c.k);
      const fused_moe_q8::Q8DeviceLimits lim = fused_moe_q8::q8_device_limits();
      if (!fused_moe_q8::is_int8(c.scheme) && !lim.fp8_mma) {
        cr.skipped = true;
        cr.message = "skipped: no e4m3 MMA on this build/device";
        return cr;
      }
      const fused_moe_q8::check::Q8DeviceLayer l(p, fused_moe_q8::check::q8_spec(p, seed));
      const auto cfg = fused_moe_q8::choose_q8_config(p, lim);
      gpu::Stream stream;
      const auto r = fused_moe_q8::check::run_and_check(l, cfg, fused_moe_q8::check::Part::Layer,
                                                        c.subset == 0 ? c.M : c.subset, stream.get(), seed + 7);
      cr.passed = r.passed();
      cr.message = r.passed() ? "ok" : r.message();
      cr.metrics = {{"config", cfg.to_string()},
                    {"out_rel_l2", r.out.rel_l2},
                    {"inter_rel_l2", r.inter.rel_l2},
                    {"a1_exact", r.a1_exact},
                    {"a2_exact", r.a2_exact}};
#else
      (void)c;
      (void)seed;
      cr = skipped_without_gpu_backend();
#endif
      return cr;
    });
  }
  return out;
}

}  // namespace

KernelFamily make_fused_moe_q8_family() {
  KernelFamily f;
  f.name = "fused_moe_q8";
  f.summary = "quantized fused MoE layer: FP8 e4m3 (per-tensor, per-token x per-channel, 128x128 block) and INT8 "
              "A8W8 grouped GEMMs on the aligned routing blocks, act(gate)*up fused, top-k reduce";
  f.impls = {"mma_sync_m16n8k32", "wgmma_m64nNk32", "mfma_i8_gfx90a"};
  f.dtypes = {"fp8_e4m3fn", "int8"};
  f.cases = fused_moe_q8_cases;
  return f;
}

}  // namespace moe
