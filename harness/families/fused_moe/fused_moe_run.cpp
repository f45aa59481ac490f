// `moe-harness run fused_moe`: the fused MoE layer on a user's tensors.
//
// Inputs hidden (M, H), w1 (E, 2I, H) (rows [0, I) gate, [I, 2I) up), w2 (E, H, I),
// all three bf16, fp16 or fp32 (one dtype; fp32 runs the CPU reference only), and
// the routing: topk_weights (M, k) fp32 + topk_ids (M, k) int32, or router_logits
// (M, E) routed by the routing reference (param routing: 0 softmax top-k, 1
// grouped top-k; --model fills these). Output out (M, H) in the input dtype,
// checked with ref::fused_moe_out_tolerance (reference/fused_moe).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>
#include <set>
#include <span>

#include <fmt/format.h>

#include "moe/error.hpp"
#include "moe/run_kernel.hpp"
#if MOE_HAVE_GPU
#include "harness/families/fused_moe/fused_moe_runner.hpp"
#include "moe/gpu.hpp"
#endif
#include "harness/families/fused_moe/fused_moe_run.hpp"
#include "kernels/fused_moe/fused_moe.hpp"
#include "reference/fused_moe/fused_moe_ref.hpp"
#include "reference/routing/routing_ref.hpp"

namespace moe {

namespace run_fused {

bool routes_from_logits(const Tensors& in) { return in.count("router_logits") > 0; }

std::vector<RunInput> routing_inputs() {
  return {{"topk_weights", {DType::F32}, 2, true, "(M, k) routed weights (or router_logits)"},
          {"topk_ids", {DType::I32}, 2, true, "(M, k) experts in [-1, E), -1 = masked; int32 or int64"},
          {"router_logits", {DType::F32, DType::BF16, DType::F16}, 2, true, "(M, E) router logits, routed by the reference"},
          {"bias", {DType::F32}, 1, true, "(E,) e_score_correction_bias of grouped routing"}};
}

std::vector<RunParam> routing_params() {
  return {{"routing", false, 0, "with router_logits: 0 softmax top-k, 1 grouped top-k"},
          {"top_k", false, 0, "k, with router_logits"},
          {"renormalize", false, 0, "with router_logits: 1 divides the k weights by their sum"},
          {"n_group", false, 1, "grouped: expert groups"},
          {"topk_group", false, 1, "grouped: groups kept"},
          {"sigmoid", false, 1, "grouped: 1 sigmoid scores, 0 softmax"},
          {"routed_scaling_factor", false, 1.0, "grouped: weights multiplied by this", false}};
}

void routing_from_model(const ModelConfig& m, Params& p) {
  MOE_REQUIRE(m.routing.type != RoutingType::SigmoidTop1,
              fmt::format("model {} routes with sigmoid top-1 of the router GEMM: give topk_weights and topk_ids "
                          "(e.g. from `moe-harness run sigmoid_top1`)", m.name));
  p.emplace("top_k", m.top_k);
  p.emplace("renormalize", m.routing.renormalize ? 1 : 0);
  if (m.routing.type == RoutingType::GroupedTopk) {
    p.emplace("routing", 1);
    p.emplace("n_group", m.routing.n_group);
    p.emplace("topk_group", m.routing.topk_group);
    p.emplace("sigmoid", m.routing.scoring == "sigmoid" ? 1 : 0);
    p.emplace("routed_scaling_factor", m.routing.routed_scaling_factor);
  } else {
    p.emplace("routing", 0);
  }
}

std::vector<RunParam> layer_params() {
  return {{"activation", false, 0, "0 silu, 1 gelu_tanh"},
          {"router_weight_on_input", false, 0, "1: the routed weight scales the input (vLLM's apply_router_weight_on_input)"}};
}

void layer_from_model(const ModelConfig& m, Params& p) {
  MOE_REQUIRE(m.activation == "silu" || m.activation == "gelu",
              fmt::format("model {}: activation {} is not one of the layer's (silu, gelu_tanh)", m.name, m.activation));
  p.emplace("activation", m.activation == "silu" ? 0 : 1);
  routing_from_model(m, p);
}

OutputSpecs layer_output_specs(const Tensors& in, const Params&) {
  const auto& h = in.at("hidden");
  return OutputSpecs{{"out", {h.dtype, {h.shape[0], h.shape[1]}}}};
}

void add_layer_common(RunKernel& k, decltype(RunKernel::validate) validate, decltype(RunKernel::reference) reference,
                      decltype(RunKernel::check) check) {
  k.validate = std::move(validate);
  k.reference = std::move(reference);
  k.check = std::move(check);
  for (auto& i : routing_inputs()) k.inputs.push_back(std::move(i));
  for (auto& p : layer_params()) k.params.push_back(std::move(p));
  for (auto& p : routing_params()) k.params.push_back(std::move(p));
  k.outputs = {"out"};
  k.from_model = layer_from_model;
  k.output_specs = layer_output_specs;
}

int32_t experts_of(const Tensors& in) {
  const int64_t E = in.at("w1").shape[0];
  MOE_REQUIRE(E <= routing::kMaxExperts * 64, fmt::format("w1 has {} experts (too many)", E));
  return static_cast<int32_t>(E);
}

int32_t top_k_of(const Tensors& in, const Params& p) {
  if (routes_from_logits(in)) return int_param(p, "top_k");
  const int64_t k = in.at("topk_ids").shape[1];
  MOE_REQUIRE(k <= routing::kMaxTopK * 8, fmt::format("topk_ids has {} columns (too many)", k));
  return static_cast<int32_t>(k);
}

namespace {

int32_t flag_param(const Params& p, const char* name) {
  const int32_t v = int_param(p, name);
  MOE_REQUIRE(v == 0 || v == 1, fmt::format("--param {}={}: must be 0 or 1", name, v));
  return v;
}

routing::SoftmaxTopkParams softmax_params(const Tensors& in, const Params& p) {
  const auto& l = in.at("router_logits");
  routing::SoftmaxTopkParams sp;
  sp.tokens = l.shape[0];
  sp.experts = experts_of(in);
  sp.top_k = int_param(p, "top_k");
  sp.dtype = l.dtype;
  sp.renormalize = flag_param(p, "renormalize") != 0;
  return sp;
}

routing::GroupedTopkParams grouped_params(const Tensors& in, const Params& p) {
  const auto& l = in.at("router_logits");
  routing::GroupedTopkParams gp;
  gp.tokens = l.shape[0];
  gp.experts = experts_of(in);
  gp.n_group = int_param(p, "n_group");
  gp.topk_group = int_param(p, "topk_group");
  gp.top_k = int_param(p, "top_k");
  gp.scoring = flag_param(p, "sigmoid") != 0 ? routing::Scoring::Sigmoid : routing::Scoring::Softmax;
  gp.renormalize = flag_param(p, "renormalize") != 0;
  gp.routed_scaling_factor = static_cast<float>(p.at("routed_scaling_factor"));
  gp.dtype = l.dtype;
  return gp;
}

}  // namespace

void validate_routing(const Tensors& in, const Params& p, int64_t M, int32_t E, bool ids_in_range) {
  const bool logits = routes_from_logits(in);
  const bool given = in.count("topk_weights") || in.count("topk_ids");
  MOE_REQUIRE(logits != given, logits ? "give either router_logits or topk_weights + topk_ids, not both"
                                      : "missing routing: give topk_weights + topk_ids, or router_logits");
  if (logits) {
    const auto& l = in.at("router_logits");
    MOE_REQUIRE(l.shape[0] == M && l.shape[1] == E,
                fmt::format("router_logits has shape ({}, {}), expected (M, E) = ({}, {})", l.shape[0], l.shape[1], M, E));
    MOE_REQUIRE(E <= routing::kMaxExperts, fmt::format("router_logits: routing supports E <= {}, got {}", routing::kMaxExperts, E));
    const int32_t r = int_param(p, "routing");
    MOE_REQUIRE(r == 0 || r == 1, fmt::format("--param routing={}: must be 0 (softmax top-k) or 1 (grouped top-k)", r));
    if (r == 0) {
      MOE_REQUIRE(!in.count("bias"), "bias applies to grouped routing (--param routing=1)");
      softmax_params(in, p).validate();
    } else {
      grouped_params(in, p).validate();
      if (in.count("bias"))
        MOE_REQUIRE(in.at("bias").shape[0] == E, fmt::format("bias has {} entries, w1 {} experts", in.at("bias").shape[0], E));
    }
    return;
  }
  MOE_REQUIRE(in.count("topk_weights") && in.count("topk_ids"), "give both topk_weights and topk_ids");
  MOE_REQUIRE(!in.count("bias"), "bias applies only to router_logits");
  const auto& w = in.at("topk_weights");
  const auto& ids = in.at("topk_ids");
  MOE_REQUIRE(w.shape == ids.shape, fmt::format("topk_weights has shape ({}, {}), topk_ids ({}, {}): they must agree",
                                                w.shape[0], w.shape[1], ids.shape[0], ids.shape[1]));
  MOE_REQUIRE(ids.shape[0] == M, fmt::format("topk_ids has {} rows, hidden {} tokens", ids.shape[0], M));
  MOE_REQUIRE(ids.shape[1] <= E, fmt::format("topk_ids has {} columns, more than the {} experts", ids.shape[1], E));
  const int32_t lo = ids_in_range ? 0 : -1;
  for (size_t i = 0; i < ids.i.size(); ++i)
    MOE_REQUIRE(ids.i[i] >= lo && ids.i[i] < E, fmt::format("topk_ids[{}, {}] = {}: must be in [{}, {})", i / ids.shape[1],
                                                            i % ids.shape[1], ids.i[i], lo, E));
  for (size_t i = 0; i < w.f.size(); ++i)
    MOE_REQUIRE(std::isfinite(w.f[i]), fmt::format("topk_weights[{}, {}] = {}: must be finite", i / w.shape[1],
                                                   i % w.shape[1], w.f[i]));
}

Routed routed(const Tensors& in, const Params& p) {
  Routed r;
  if (!routes_from_logits(in)) {
    r.weights = in.at("topk_weights").f;
    r.ids = in.at("topk_ids").i;
    r.top_k = static_cast<int32_t>(in.at("topk_ids").shape[1]);
    return r;
  }
  const auto& logits = in.at("router_logits").f;
  ref::TopkResult t;
  if (int_param(p, "routing") == 0) {
    t = ref::softmax_topk(logits, softmax_params(in, p));
  } else {
    std::span<const float> bias;
    if (in.count("bias")) bias = in.at("bias").f;
    t = ref::grouped_topk(logits, bias, grouped_params(in, p));
  }
  r.weights = std::move(t.weights);
  r.ids = std::move(t.ids);
  r.top_k = t.cols;
  return r;
}

ProgressMeter::ProgressMeter(std::string what, int64_t total) : what_(std::move(what)), total_(total), start_(Clock::now()), last_(start_) {}

void ProgressMeter::add(int64_t n) {
  const int64_t done = done_.fetch_add(n) + n;
  const auto now = Clock::now();
  std::lock_guard<std::mutex> lock(mu_);
  if (now - last_ < (printed_ ? std::chrono::seconds(5) : std::chrono::seconds(2))) return;
  last_ = now;
  printed_ = true;
  const double s = std::chrono::duration<double>(now - start_).count();
  const double f = total_ > 0 ? std::min(1.0, static_cast<double>(done) / static_cast<double>(total_)) : 0.0;
  fmt::print(stderr, "{}: {:.0f}% after {:.0f} s{}\n", what_, 100 * f, s,
             f > 0.02 ? fmt::format(", about {:.0f} s left", s * (1 - f) / f) : std::string());
}

}  // namespace run_fused

namespace {

using namespace run_fused;

fused_moe::Problem problem_of(const Tensors& in, const Params& p) {
  const auto& h = in.at("hidden");
  fused_moe::Problem pr;
  pr.tokens = h.shape[0];
  pr.model_dim = h.shape[1];
  pr.inter_dim = in.at("w2").shape[2];
  pr.experts = experts_of(in);
  pr.top_k = top_k_of(in, p);
  pr.dtype = h.dtype;
  const int32_t act = int_param(p, "activation");
  MOE_REQUIRE(act == 0 || act == 1, fmt::format("--param activation={}: must be 0 (silu) or 1 (gelu_tanh)", act));
  pr.act = static_cast<fused_moe::Activation>(act);
  const int32_t rw = int_param(p, "router_weight_on_input");
  MOE_REQUIRE(rw == 0 || rw == 1, fmt::format("--param router_weight_on_input={}: must be 0 or 1", rw));
  pr.router_weight = rw ? fused_moe::RouterWeight::OnInput : fused_moe::RouterWeight::OnOutput;
  return pr;
}

void validate_layer(const Tensors& in, const Params& p) {
  const auto& h = in.at("hidden");
  const auto& w1 = in.at("w1");
  const auto& w2 = in.at("w2");
  for (const char* name : {"w1", "w2"})
    MOE_REQUIRE(in.at(name).dtype == h.dtype, fmt::format("{} is {} but hidden is {}: hidden, w1 and w2 must share one dtype",
                                                          name, dtype_name(in.at(name).dtype), dtype_name(h.dtype)));
  const int64_t E = w1.shape[0], H = h.shape[1], I = w2.shape[2];
  MOE_REQUIRE(w2.shape[0] == E && w2.shape[1] == H,
              fmt::format("w2 has shape ({}, {}, {}), expected (E, model_dim, inter) = ({}, {}, {})", w2.shape[0],
                          w2.shape[1], w2.shape[2], E, H, I));
  MOE_REQUIRE(w1.shape[1] == 2 * I && w1.shape[2] == H,
              fmt::format("w1 has shape ({}, {}, {}), expected (E, 2*inter, model_dim) = ({}, {}, {})", w1.shape[0],
                          w1.shape[1], w1.shape[2], E, 2 * I, H));
  validate_routing(in, p, h.shape[0], experts_of(in), false);
  fused_moe::Problem pr = problem_of(in, p);
  if (pr.dtype == DType::F32) pr.dtype = DType::BF16;  // fp32: CPU reference only; the rest as the kernel's
  pr.validate();
}

// Slices of a weight tensor widened to float: from its fp32 values, or from
// the raw 16-bit values (bits_only inputs) as the reference asks for them.
ref::SliceFn weight_slices(const Tensor& t, const char* name) {
  return [&t, name](uint64_t off, std::span<float> out) {
    const size_t n = t.f.empty() ? t.bits.size() : t.f.size();
    MOE_REQUIRE(off + out.size() <= n, fmt::format("fused_moe reference: {} slice [{}, {}) beyond its {} elements", name,
                                                   off, off + out.size(), n));
    if (!t.f.empty()) {
      std::copy_n(t.f.begin() + static_cast<std::ptrdiff_t>(off), out.size(), out.begin());
      return;
    }
    for (size_t i = 0; i < out.size(); ++i)
      out[i] = t.dtype == DType::BF16 ? bf16_bits_to_f32(t.bits[off + i]) : f16_bits_to_f32(t.bits[off + i]);
  };
}

Tensors reference(const Tensors& in, const Params& p) {
  const fused_moe::Problem pr = problem_of(in, p);
  const Routed r = routed(in, p);
  ref::FusedMoeRefInputs src = ref::ref_inputs_from_host(in.at("hidden").f, {}, {}, r.weights, r.ids);
  src.w1 = weight_slices(in.at("w1"), "w1");
  src.w2 = weight_slices(in.at("w2"), "w2");
  // Progress over the weight rows of the experts the routing touches.
  std::set<int32_t> hit;
  for (int32_t e : r.ids)
    if (e >= 0 && e < pr.experts) hit.insert(e);
  const int64_t per_expert = 3 * pr.inter_dim * pr.model_dim;
  auto meter = std::make_shared<ProgressMeter>(fmt::format("fused_moe reference ({} of {} experts hit)", hit.size(), pr.experts),
                                               static_cast<int64_t>(hit.size()) * per_expert);
  for (ref::SliceFn* f : {&src.w1, &src.w2})
    *f = [inner = *f, meter](uint64_t off, std::span<float> out) {
      inner(off, out);
      meter->add(static_cast<int64_t>(out.size()));
    };
  ref::FusedMoeRefOptions opt;
  opt.inter_dtype = pr.dtype;
  auto res = ref::fused_moe_ref(pr, src, opt);
  Tensors out;
  out["out"] = float_tensor(pr.dtype, std::move(res.out), {pr.tokens, pr.model_dim});  // not rounded: the tolerance covers the output rounding
  return out;
}

Checks check(const Tensors& got, const Tensors& ref, const Tensors& in, const Params& p, bool) {
  const fused_moe::Problem pr = problem_of(in, p);
  const auto& want = ref.at("out").f;
  const Tolerance tol = ref::fused_moe_out_tolerance(pr, pr.dtype, pr.dtype, rms(want));
  return {{"out", check_close(got.at("out").f, want, tol)}};
}

#if MOE_HAVE_GPU
Tensors device(const Tensors& in, const Params& p) {
  const fused_moe::Problem pr = problem_of(in, p);
  if (pr.dtype == DType::F32) return {};  // the kernel takes bf16/fp16
  const Routed r = routed(in, p);
  gpu::Stream stream;
  const hipStream_t s = stream.get();
  auto upload16 = [](const Tensor& t) {
    gpu::DeviceBuffer<uint16_t> b(t.bits.size());
    b.upload(t.bits);
    return b;
  };
  const auto hidden = upload16(in.at("hidden")), w1 = upload16(in.at("w1")), w2 = upload16(in.at("w2"));
  gpu::DeviceBuffer<float> tw(r.weights.size());
  gpu::DeviceBuffer<int32_t> ti(r.ids.size());
  tw.upload(r.weights);
  ti.upload(r.ids);
  const fused_moe::LayerConfig cfg = fused_moe::choose_config(pr, fused_moe::device_limits());
  // Aligned routing from the CPU reference of moe_align (the layer is under test here).
  const auto aligned = fused_moe::check::align_on_host(
      align::AlignShape{pr.tokens, pr.top_k, pr.experts, cfg.block_size()}, r.ids);
  const fused_moe::AlignedRouting& view = aligned.view;
  const auto wsb = fused_moe::workspace_bytes(pr, cfg);
  gpu::DeviceBuffer<uint16_t> inter(static_cast<size_t>(wsb.intermediate / 2)), out(static_cast<size_t>(pr.tokens * pr.model_dim));
  gpu::DeviceBuffer<float> partial(static_cast<size_t>(wsb.partial / 4));
  inter.poison(0xFF, s);
  partial.poison(0xFF, s);
  out.poison(0xFF, s);
  fused_moe::Tensors t;
  t.hidden = hidden.data();
  t.w1 = w1.data();
  t.w2 = w2.data();
  t.topk_weights = tw.data();
  t.topk_ids = ti.data();
  t.out = out.data();
  auto counters = gpu::DeviceBuffer<int32_t>::zeros(fused_moe::kTileCounters);
  fused_moe::fused_moe(pr, t, view, fused_moe::Workspace{inter.data(), partial.data(), counters.data()}, cfg, s);
  MOE_GPU_CHECK(hipStreamSynchronize(s));
  Tensor o;
  o.dtype = pr.dtype;
  o.shape = {pr.tokens, pr.model_dim};
  o.bits = out.download(s);
  o.f.resize(o.bits.size());
  for (size_t i = 0; i < o.bits.size(); ++i)
    o.f[i] = pr.dtype == DType::BF16 ? bf16_bits_to_f32(o.bits[i]) : f16_bits_to_f32(o.bits[i]);
  Tensors res;
  res["out"] = std::move(o);
  return res;
}
#endif

}  // namespace

std::vector<RunKernel> fused_moe_run_kernels() {
  RunKernel k;
  k.name = "fused_moe";
  k.summary = "fused MoE layer: out = sum_j w_j W2[e_j] (act(W1_gate[e_j] x) * (W1_up[e_j] x)), bf16/fp16 (fp32: reference only)";
  k.inputs = {{"hidden", {DType::BF16, DType::F16, DType::F32}, 2, false, "(M, model_dim) activations"},
              {"w1", {DType::BF16, DType::F16, DType::F32}, 3, false, "(E, 2*inter, model_dim): gate rows, then up rows", true},
              {"w2", {DType::BF16, DType::F16, DType::F32}, 3, false, "(E, model_dim, inter)", true}};
  add_layer_common(k, validate_layer, reference, check);
#if MOE_HAVE_GPU
  k.device = device;
#endif
  return {std::move(k)};
}

}  // namespace moe
