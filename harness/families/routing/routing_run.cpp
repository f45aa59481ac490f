// `moe-harness run softmax_topk|grouped_topk|sigmoid_top1`: the routing kernels on
// a user's logits (sigmoid_top1: on the hidden states and the router weight).
#include <algorithm>
#include <limits>
#include <span>

#include <fmt/format.h>

#include "moe/error.hpp"
#include "moe/run_kernel.hpp"
#if MOE_HAVE_GPU
#include "moe/gpu.hpp"
#endif
#include "kernels/routing/routing.hpp"
#include "reference/routing/routing_ref.hpp"

namespace moe {
namespace {

const Tensor& logits_of(const Tensors& in) { return in.at("logits"); }

routing::SoftmaxTopkParams softmax_params(const Tensors& in, const Params& p) {
  const auto& l = logits_of(in);
  routing::SoftmaxTopkParams sp;
  sp.tokens = l.shape[0];
  MOE_REQUIRE(l.shape[1] <= routing::kMaxExperts, fmt::format("logits has {} columns (E <= {})", l.shape[1], routing::kMaxExperts));
  sp.experts = static_cast<int32_t>(l.shape[1]);
  sp.top_k = int_param(p, "top_k");
  sp.dtype = l.dtype;
  sp.renormalize = p.at("renormalize") != 0;
  return sp;
}

routing::GroupedTopkParams grouped_params(const Tensors& in, const Params& p) {
  const auto& l = logits_of(in);
  routing::GroupedTopkParams gp;
  gp.tokens = l.shape[0];
  MOE_REQUIRE(l.shape[1] <= routing::kMaxExperts, fmt::format("logits has {} columns (E <= {})", l.shape[1], routing::kMaxExperts));
  gp.experts = static_cast<int32_t>(l.shape[1]);
  gp.n_group = int_param(p, "n_group");
  gp.topk_group = int_param(p, "topk_group");
  gp.top_k = int_param(p, "top_k");
  gp.scoring = p.at("sigmoid") != 0 ? routing::Scoring::Sigmoid : routing::Scoring::Softmax;
  gp.renormalize = p.at("renormalize") != 0;
  gp.routed_scaling_factor = static_cast<float>(p.at("routed_scaling_factor"));
  gp.dtype = l.dtype;
  return gp;
}

Tensors topk_tensors(ref::TopkResult r) {
  Tensors out;
  Tensor w;
  w.dtype = DType::F32;
  w.shape = {r.tokens, r.cols};
  w.f = std::move(r.weights);
  out["topk_weights"] = std::move(w);
  out["topk_ids"] = i32_tensor(std::move(r.ids), {r.tokens, r.cols});
  return out;
}

// Routing outputs are checked together (weights with the documented tolerance
// of kernels/routing/routing.hpp, ids exactly): --expect needs both. The
// routing reference applies its own per-element weight bounds and does not
// report them, so the margin is known only when an id differs (infinite);
// worst is then the first mismatch.
Checks routing_checks(const ref::RoutingCheck& rc) {
  CheckResult all;
  all.passed = rc.passed;
  all.count = rc.ids.count + rc.weights.count;
  all.rel_l2 = rc.weights.rel_l2;
  all.max_abs = rc.weights.max_abs;
  all.max_rel = rc.weights.max_rel;
  all.n_outside = rc.weights.n_outside + rc.ids.n_outside;
  all.n_nonfinite = rc.weights.n_nonfinite;
  all.first_mismatches = rc.ids.passed ? rc.weights.first_mismatches : rc.ids.first_mismatches;
  all.message = rc.message;
  all.bound_rule = "ids exact; weights: the routing reference's per-element bounds (kernels/routing/routing.hpp)";
  all.margins_known = false;
  if (!all.first_mismatches.empty()) {
    const auto& m = all.first_mismatches.front();
    all.worst = {m.index, m.got, m.expected, rc.ids.passed ? std::numeric_limits<double>::quiet_NaN() : 0.0};
  }
  if (!rc.ids.passed) {
    all.margins_known = true;
    all.element_margin = std::numeric_limits<double>::infinity();
  }
  return {{"topk_weights+topk_ids", all}};
}

routing::SigmoidTop1Params top1_params(const Tensors& in, const Params& p) {
  const auto& x = in.at("x");
  const auto& w = in.at("w");
  routing::SigmoidTop1Params tp;
  tp.tokens = x.shape[0];
  tp.hidden = x.shape[1];
  MOE_REQUIRE(w.shape[0] <= routing::kMaxExperts, fmt::format("w has {} rows (E <= {})", w.shape[0], routing::kMaxExperts));
  tp.experts = static_cast<int32_t>(w.shape[0]);
  tp.dtype = x.dtype;
  const int32_t shared = int_param(p, "shared_expert");
  MOE_REQUIRE(shared == 0 || shared == 1, fmt::format("--param shared_expert={}: must be 0 or 1", shared));
  tp.shared_expert = shared != 0;
  return tp;
}

// w as the kernel reads it: (K, E), from the (E, K) router weight.
template <typename T>
std::vector<T> transpose_ek(const std::vector<T>& w, int64_t E, int64_t K) {
  std::vector<T> t(w.size());
  for (int64_t e = 0; e < E; ++e)
    for (int64_t k = 0; k < K; ++k) t[static_cast<size_t>(k * E + e)] = w[static_cast<size_t>(e * K + k)];
  return t;
}

ref::Top1Ref top1_reference(const Tensors& in, const routing::SigmoidTop1Params& tp) {
  return ref::sigmoid_top1(in.at("x").f, transpose_ek(in.at("w").f, tp.experts, tp.hidden), tp);
}

void require_both(const Tensors& got) {
  MOE_REQUIRE(got.count("topk_weights") && got.count("topk_ids"),
              "routing outputs are checked together: give --expect topk_weights=... and --expect topk_ids=...");
}

#if MOE_HAVE_GPU
const void* upload_logits(const Tensor& l, gpu::DeviceBuffer<float>& f32, gpu::DeviceBuffer<uint16_t>& b16) {
  if (l.dtype == DType::F32) {
    f32 = gpu::DeviceBuffer<float>(l.f.size());
    f32.upload(l.f);
    return f32.data();
  }
  b16 = gpu::DeviceBuffer<uint16_t>(l.bits.size());
  b16.upload(l.bits);
  return b16.data();
}

template <typename Launch>
Tensors run_topk_on_device(int64_t M, int32_t k, Launch&& launch) {
  gpu::DeviceBuffer<float> w(static_cast<size_t>(M * k));
  gpu::DeviceBuffer<int32_t> ids(static_cast<size_t>(M * k));
  w.poison();
  ids.poison();
  launch(w.data(), ids.data());
  MOE_GPU_CHECK(hipDeviceSynchronize());
  ref::TopkResult r;
  r.tokens = M;
  r.cols = k;
  r.weights = w.download();
  r.ids = ids.download();
  return topk_tensors(std::move(r));
}
#endif

}  // namespace

std::vector<RunKernel> routing_run_kernels() {
  std::vector<RunKernel> t;
  {
    RunKernel s;
    s.name = "softmax_topk";
    s.summary = "softmax over experts, top-k (Mixtral, Qwen3, gpt-oss, DeepSeek-V2 routing)";
    s.inputs = {{"logits", {DType::F32, DType::BF16, DType::F16}, 2, false, "(M, E) router logits"}};
    s.params = {{"top_k", true, 0, "k"}, {"renormalize", false, 0, "1: divide the k weights by their sum"}};
    s.outputs = {"topk_weights", "topk_ids"};
    s.expect_together = true;
    s.validate = [](const Tensors& in, const Params& p) { softmax_params(in, p).validate(); };
    s.reference = [](const Tensors& in, const Params& p) {
      return topk_tensors(ref::softmax_topk(logits_of(in).f, softmax_params(in, p)));
    };
#if MOE_HAVE_GPU
    s.device = [](const Tensors& in, const Params& p) {
      const auto sp = softmax_params(in, p);
      gpu::DeviceBuffer<float> f32;
      gpu::DeviceBuffer<uint16_t> b16;
      const void* logits = upload_logits(logits_of(in), f32, b16);
      return run_topk_on_device(sp.tokens, sp.top_k,
                                [&](float* w, int32_t* ids) { routing::softmax_topk(logits, w, ids, sp); });
    };
#endif
    s.check = [](const Tensors& got, const Tensors&, const Tensors& in, const Params& p, bool) {
      require_both(got);
      const auto sp = softmax_params(in, p);
      const auto r = ref::softmax_topk(logits_of(in).f, sp);
      return routing_checks(ref::check_softmax_topk(got.at("topk_weights").f, got.at("topk_ids").i, r, logits_of(in).f, sp));
    };
    s.output_specs = [](const Tensors& in, const Params& p) {
      const std::vector<int64_t> shape{logits_of(in).shape[0], int_param(p, "top_k")};
      return OutputSpecs{{"topk_weights", {DType::F32, shape}}, {"topk_ids", {DType::I32, shape}}};
    };
    s.from_model = [](const ModelConfig& m, Params& p) {
      MOE_REQUIRE(m.routing.type == RoutingType::Softmax,
                  fmt::format("model {} routes with {}, not softmax top-k", m.name, routing_type_name(m.routing.type)));
      p.emplace("top_k", m.top_k);
      p.emplace("renormalize", m.routing.renormalize ? 1 : 0);
    };
    t.push_back(std::move(s));
  }
  {
    RunKernel g;
    g.name = "grouped_topk";
    g.summary = "grouped top-k with optional score-correction bias (DeepSeek-V3, Kimi-K2 routing)";
    g.inputs = {{"logits", {DType::F32, DType::BF16, DType::F16}, 2, false, "(M, E) router logits"},
                {"bias", {DType::F32}, 1, true, "(E,) e_score_correction_bias (selection only)"}};
    g.params = {{"top_k", true, 0, "k"},
                {"n_group", false, 1, "expert groups"},
                {"topk_group", false, 1, "groups kept"},
                {"sigmoid", false, 1, "1: sigmoid scores, 0: softmax"},
                {"renormalize", false, 1, "1: divide the k weights by their sum"},
                {"routed_scaling_factor", false, 1.0, "weights multiplied by this", false}};
    g.outputs = {"topk_weights", "topk_ids"};
    g.expect_together = true;
    g.validate = [](const Tensors& in, const Params& p) {
      const auto gp = grouped_params(in, p);
      gp.validate();
      if (in.count("bias"))
        MOE_REQUIRE(in.at("bias").shape[0] == gp.experts,
                    fmt::format("bias has {} entries, logits {} experts", in.at("bias").shape[0], gp.experts));
    };
    auto bias_of = [](const Tensors& in) { return in.count("bias") ? std::span<const float>(in.at("bias").f) : std::span<const float>{}; };
    g.reference = [bias_of](const Tensors& in, const Params& p) {
      return topk_tensors(ref::grouped_topk(logits_of(in).f, bias_of(in), grouped_params(in, p)));
    };
#if MOE_HAVE_GPU
    g.device = [](const Tensors& in, const Params& p) {
      const auto gp = grouped_params(in, p);
      gpu::DeviceBuffer<float> f32, bias;
      gpu::DeviceBuffer<uint16_t> b16;
      const void* logits = upload_logits(logits_of(in), f32, b16);
      if (in.count("bias")) {
        bias = gpu::DeviceBuffer<float>(in.at("bias").f.size());
        bias.upload(in.at("bias").f);
      }
      const float* bp = in.count("bias") ? bias.data() : nullptr;
      return run_topk_on_device(gp.tokens, gp.top_k,
                                [&](float* w, int32_t* ids) { routing::grouped_topk(logits, bp, w, ids, gp); });
    };
#endif
    g.check = [bias_of](const Tensors& got, const Tensors&, const Tensors& in, const Params& p, bool) {
      require_both(got);
      const auto gp = grouped_params(in, p);
      const auto r = ref::grouped_topk(logits_of(in).f, bias_of(in), gp);
      return routing_checks(ref::check_grouped_topk(got.at("topk_weights").f, got.at("topk_ids").i, r, logits_of(in).f, gp));
    };
    g.output_specs = [](const Tensors& in, const Params& p) {
      const std::vector<int64_t> shape{logits_of(in).shape[0], int_param(p, "top_k")};
      return OutputSpecs{{"topk_weights", {DType::F32, shape}}, {"topk_ids", {DType::I32, shape}}};
    };
    g.from_model = [](const ModelConfig& m, Params& p) {
      MOE_REQUIRE(m.routing.type == RoutingType::GroupedTopk,
                  fmt::format("model {} routes with {}, not grouped top-k", m.name, routing_type_name(m.routing.type)));
      p.emplace("top_k", m.top_k);
      p.emplace("n_group", m.routing.n_group);
      p.emplace("topk_group", m.routing.topk_group);
      p.emplace("sigmoid", m.routing.scoring == "sigmoid" ? 1 : 0);
      p.emplace("renormalize", m.routing.renormalize ? 1 : 0);
      p.emplace("routed_scaling_factor", m.routing.routed_scaling_factor);
    };
    t.push_back(std::move(g));
  }
  {
    RunKernel s;
    s.name = "sigmoid_top1";
    s.summary = "router GEMM + sigmoid + top-1 (Llama 4 routing), optionally with the fused shared expert column";
    s.inputs = {{"x", {DType::BF16, DType::F16}, 2, false, "(M, hidden) hidden states"},
                {"w", {DType::BF16, DType::F16}, 2, false, "(E, hidden) router weight (nn.Linear layout), x's dtype"}};
    s.params = {{"shared_expert", false, 0, "1: a second output column: id E, weight 1 (the shared expert)"}};
    s.outputs = {"topk_weights", "topk_ids"};
    s.expect_together = true;
    s.validate = [](const Tensors& in, const Params& p) {
      const auto& x = in.at("x");
      const auto& w = in.at("w");
      MOE_REQUIRE(w.dtype == x.dtype, fmt::format("w is {} but x is {}: they must share one dtype", dtype_name(w.dtype), dtype_name(x.dtype)));
      MOE_REQUIRE(w.shape[1] == x.shape[1], fmt::format("w has {} columns, x {}: both are (., hidden)", w.shape[1], x.shape[1]));
      top1_params(in, p).validate();
    };
    s.reference = [](const Tensors& in, const Params& p) { return topk_tensors(top1_reference(in, top1_params(in, p)).out); };
#if MOE_HAVE_GPU
    s.device = [](const Tensors& in, const Params& p) {
      const auto tp = top1_params(in, p);
      gpu::DeviceBuffer<uint16_t> x(in.at("x").bits.size()), w(in.at("w").bits.size());
      x.upload(in.at("x").bits);
      w.upload(transpose_ek(in.at("w").bits, tp.experts, tp.hidden));
      const size_t ws_bytes = routing::sigmoid_top1_workspace_bytes(tp);
      gpu::DeviceBuffer<unsigned char> ws(ws_bytes > 0 ? ws_bytes : 16);
      if (ws_bytes > 0) routing::sigmoid_top1_workspace_init(ws.data(), ws_bytes, nullptr);
      return run_topk_on_device(tp.tokens, tp.out_cols(), [&](float* wt, int32_t* ids) {
        routing::sigmoid_top1(x.data(), w.data(), wt, ids, ws_bytes > 0 ? ws.data() : nullptr, ws_bytes, tp, {}, nullptr);
      });
    };
#endif
    s.check = [](const Tensors& got, const Tensors&, const Tensors& in, const Params& p, bool) {
      require_both(got);
      const auto tp = top1_params(in, p);
      return routing_checks(ref::check_sigmoid_top1(got.at("topk_weights").f, got.at("topk_ids").i, top1_reference(in, tp), tp));
    };
    s.output_specs = [](const Tensors& in, const Params& p) {
      const auto tp = top1_params(in, p);
      const std::vector<int64_t> shape{tp.tokens, tp.out_cols()};
      return OutputSpecs{{"topk_weights", {DType::F32, shape}}, {"topk_ids", {DType::I32, shape}}};
    };
    t.push_back(std::move(s));
  }
  return t;
}

}  // namespace moe
