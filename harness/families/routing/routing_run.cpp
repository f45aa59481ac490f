// `moe-harness run softmax_topk|grouped_topk`: the routing kernels on a user's logits.
#include <algorithm>
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
// of kernels/routing/routing.hpp, ids exactly): --expect needs both.
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
  return {{"topk_weights+topk_ids", all}};
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
  return t;
}

}  // namespace moe
