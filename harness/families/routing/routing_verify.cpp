// Verify family "routing": golden CPU cases (the references against PyTorch
// outputs in data/routing/golden_routing.json, made by
// data/routing/make_golden.py) and GPU cases (each kernel against its
// reference on generated inputs; --quick runs a subset).
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "kernels/routing/routing.hpp"
#include "moe/error.hpp"
#include "moe/json_numbers.hpp"
#include "moe/registry.hpp"
#include "reference/routing/routing_ref.hpp"
#include "harness/families/routing/routing_runner.hpp"

namespace moe {

namespace {

using nlohmann::json;
namespace rr = ref::routing_run;

DType golden_dtype(const json& c) { return parse_dtype(c.value("dtype", std::string("fp32"))); }

CaseResult run_golden(const json& c) {
  CaseResult r;
  const std::string kind = c.at("kind");
  auto i64 = [&](const char* key) { return json_integer<int64_t>(c.at(key), key); };
  auto i32 = [&](const char* key) { return json_integer<int32_t>(c.at(key), key); };
  if (kind == "softmax_topk") {
    routing::SoftmaxTopkParams p{.tokens = i64("M"), .experts = i32("E"), .top_k = i32("k"),
                                 .dtype = golden_dtype(c), .renormalize = c.at("renormalize")};
    const auto logits = c.at("logits").get<std::vector<float>>();
    const auto gw = c.at("weights").get<std::vector<float>>();
    const auto gi = json_integers<int32_t>(c.at("ids"), "ids");
    const auto ref = ref::softmax_topk(logits, p);
    const auto chk = ref::check_softmax_topk(gw, gi, ref, logits, p);  // golden in the role of "got"
    r.passed = chk.passed;
    r.message = chk.message;
    r.metrics = {{"max_rel", chk.weights.max_rel}};
  } else if (kind == "grouped_topk") {
    routing::GroupedTopkParams p{.tokens = i64("M"),
                                 .experts = i32("E"),
                                 .n_group = i32("n_group"),
                                 .topk_group = i32("topk_group"),
                                 .top_k = i32("k"),
                                 .scoring = routing::parse_scoring(c.at("scoring")),
                                 .renormalize = c.at("renormalize"),
                                 .routed_scaling_factor = c.at("scale"),
                                 .dtype = golden_dtype(c)};
    const auto logits = c.at("logits").get<std::vector<float>>();
    std::vector<float> bias;
    if (c.contains("bias") && !c.at("bias").is_null()) bias = c.at("bias").get<std::vector<float>>();
    const auto gw = c.at("weights").get<std::vector<float>>();
    const auto gi = json_integers<int32_t>(c.at("ids"), "ids");
    const auto ref = ref::grouped_topk(logits, bias, p);
    const auto chk = ref::check_grouped_topk(gw, gi, ref, logits, p);
    r.passed = chk.passed;
    r.message = chk.message;
    r.metrics = {{"max_rel", chk.weights.max_rel}};
  } else if (kind == "sigmoid_top1") {
    routing::SigmoidTop1Params p{.tokens = i64("M"), .hidden = i64("K"), .experts = i32("E"),
                                 .dtype = golden_dtype(c), .shared_expert = c.at("shared_expert")};
    const auto x = c.at("x").get<std::vector<float>>();
    const auto w = c.at("w").get<std::vector<float>>();
    const auto gw = c.at("weights").get<std::vector<float>>();
    const auto gi = json_integers<int32_t>(c.at("ids"), "ids");
    const auto ref = ref::sigmoid_top1(x, w, p);
    const CheckResult ids = check_exact(gi, ref.out.ids);
    const CheckResult ws = check_close(gw, ref.out.weights, {.atol = 1e-7, .rtol = 1e-6, .max_rel_l2 = 1e-6});
    r.passed = ids.passed && ws.passed;
    r.message = fmt::format("sigmoid_top1: ids {} | weights {}", ids.message, ws.message);
  } else {
    r.message = fmt::format("unknown golden kind '{}'", kind);
  }
  return r;
}

VerifyCase gpu_case(std::string name, json params, std::function<rr::RunResult()> fn) {
  VerifyCase vc;
  vc.kernel = "routing";
  vc.name = std::move(name);
  vc.needs_gpu = true;
  vc.params = std::move(params);
  vc.run = [fn = std::move(fn)]() {
    CaseResult r;
#if MOE_HAVE_GPU
    const rr::RunResult rr_ = fn();
    r.passed = rr_.passed();
    r.message = rr_.message;
    r.metrics = {{"near_ties", rr_.check.near_ties}, {"weights_max_rel", rr_.check.weights.max_rel}};
#else
    (void)fn;
    r = skipped_without_gpu_backend();
#endif
    return r;
  };
  return vc;
}

std::vector<VerifyCase> routing_cases(const VerifyOptions& o) {
  std::vector<VerifyCase> v;
  // ---- golden (CPU) ----
  const std::string path = o.data_dir + "/routing/golden_routing.json";
  std::ifstream f(path);
  if (!f) {
    VerifyCase vc;
    vc.kernel = "routing";
    vc.name = "golden/missing";
    vc.run = [path]() {
      CaseResult r;
      r.message = fmt::format("golden file {} not found (run data/routing/make_golden.py where PyTorch is installed)",
                              path);
      return r;
    };
    v.push_back(std::move(vc));
  } else {
    // A file that does not parse, or a case without a name, stays one failing
    // case: the sweep goes on and its results are written.
    try {
      const json doc = json::parse(f);
      require_bounded_numbers(doc, path);
      const json& cases = doc.at("cases");
      MOE_REQUIRE(cases.is_array(), fmt::format("{}: /cases must be an array", path));
      for (size_t i = 0; i < cases.size(); ++i) {
        const json& c = cases[i];
        VerifyCase vc;
        vc.kernel = "routing";
        const json* name = c.is_object() && c.contains("name") ? &c["name"] : nullptr;
        vc.name = fmt::format("golden/{}", name && name->is_string() ? name->get<std::string>() : fmt::format("#{}", i));
        if (c.is_object() && c.contains("kind")) vc.params = {{"kind", c["kind"]}};
        vc.run = [c, path, i]() {
          try {
            return run_golden(c);
          } catch (const json::exception& e) {
            CaseResult r;
            r.message = fmt::format("{}: /cases/{}: {}", path, i, e.what());
            return r;
          }
        };
        v.push_back(std::move(vc));
      }
    } catch (const std::exception& e) {
      VerifyCase vc;
      vc.kernel = "routing";
      vc.name = "golden/load";
      vc.run = [msg = fmt::format("golden file {} did not load: {}", path, e.what())]() {
        CaseResult r;
        r.message = msg;
        return r;
      };
      v.push_back(std::move(vc));
    }
  }

  // ---- GPU ----
  // The same cases (names, params) in every build; without a GPU backend they
  // are listed and skip. `model`: the configs/model_configs.json model whose
  // routing shape (E, top_k, groups, scale, hidden size) the case uses.
  [[maybe_unused]] const uint64_t s = o.seed;
  using routing::Scoring;
  using routing::Top1Impl;
  // A run function only where the kernels (and rr::run_*) are compiled.
#if MOE_HAVE_GPU
#define MOE_ROUTING_RUN(...) std::function<rr::RunResult()>(__VA_ARGS__)
#else
#define MOE_ROUTING_RUN(...) std::function<rr::RunResult()>()
#endif
  auto with_model = [](json params, const char* model) {
    if (model) params["model"] = model;  // --where model=NAME
    return params;
  };
  struct Sm {
    const char* name;
    int64_t M;
    int E, k;
    DType dt;
    bool renorm;
    rr::Pattern pat;
    bool quick;
    const char* model;
  };
  // Cases of a model take its shape (E, top_k; groups and scale; hidden size)
  // from configs/model_configs.json; 0 marks those fields below.
  const std::vector<Sm> sms = {
      {"softmax/mixtral_e8_k2_bf16", 4097, 0, 0, DType::BF16, false, rr::Pattern::Normal, true, "mixtral_8x7b"},
      {"softmax/qwen3_e128_k8_fp32", 4097, 0, 0, DType::F32, true, rr::Pattern::Normal, true, "qwen3_235b"},
      {"softmax/e512_k32_fp16", 129, 512, 32, DType::F16, false, rr::Pattern::Normal, false, nullptr},
      {"softmax/e3_k3_specials", 200, 3, 3, DType::F32, true, rr::Pattern::Specials, true, nullptr},
      {"softmax/e60_k4_ties_bf16", 1000, 60, 4, DType::BF16, false, rr::Pattern::Ties, false, nullptr},
      {"softmax/e160_k8_specials_bf16", 333, 160, 8, DType::BF16, true, rr::Pattern::Specials, false, nullptr},
  };
  for (Sm c : sms) {
    if (o.quick && !c.quick) continue;
    if (c.model) {
      const ModelConfig& m = o.models.model(c.model);
      c.E = m.experts;
      c.k = m.top_k;
    }
    [[maybe_unused]] routing::SoftmaxTopkParams p{
        .tokens = c.M, .experts = c.E, .top_k = c.k, .dtype = c.dt, .renormalize = c.renorm};
    v.push_back(gpu_case(c.name, with_model({{"M", c.M}, {"E", c.E}, {"k", c.k}, {"dtype", dtype_name(c.dt)}}, c.model),
                         MOE_ROUTING_RUN([p, s, pat = c.pat]() { return rr::run_softmax_topk(p, {}, s + 11, pat); })));
  }
  struct Gr {
    const char* name;
    int64_t M;
    int E, ng, tg, k;
    Scoring sc;
    float scale;
    int bias;
    DType dt;
    rr::Pattern pat;
    bool quick;
    const char* model;
  };
  const std::vector<Gr> grs = {
      {"grouped/deepseek_v3_fp32", 4097, 0, 0, 0, 0, Scoring::Sigmoid, 0, 1, DType::F32, rr::Pattern::Normal, true,
       "deepseek_v3"},
      {"grouped/deepseek_v3_bf16_ties", 1000, 0, 0, 0, 0, Scoring::Sigmoid, 0, 1, DType::BF16, rr::Pattern::Ties, true,
       "deepseek_v3"},
      {"grouped/deepseek_v3_specials", 333, 0, 0, 0, 0, Scoring::Sigmoid, 0, 2, DType::F32, rr::Pattern::Specials,
       false, "deepseek_v3"},
      {"grouped/softmax_e64_g8_nobias", 1000, 64, 8, 3, 6, Scoring::Softmax, 1.0f, 0, DType::F32, rr::Pattern::Normal,
       false, nullptr},
      {"grouped/e160_g8_smem_path", 777, 160, 8, 2, 5, Scoring::Sigmoid, 1.0f, 1, DType::F16, rr::Pattern::Normal,
       true, nullptr},
  };
  for (Gr c : grs) {
    if (o.quick && !c.quick) continue;
    if (c.model) {
      const ModelConfig& m = o.models.model(c.model);
      c.E = m.experts;
      c.ng = m.routing.n_group;
      c.tg = m.routing.topk_group;
      c.k = m.top_k;
      c.scale = static_cast<float>(m.routing.routed_scaling_factor);
    }
    [[maybe_unused]] routing::GroupedTopkParams p{.tokens = c.M, .experts = c.E, .n_group = c.ng, .topk_group = c.tg,
                                                  .top_k = c.k, .scoring = c.sc, .renormalize = true,
                                                  .routed_scaling_factor = c.scale, .dtype = c.dt};
    v.push_back(gpu_case(
        c.name, with_model({{"M", c.M}, {"E", c.E}, {"n_group", c.ng}, {"topk_group", c.tg}, {"k", c.k}}, c.model),
        MOE_ROUTING_RUN([p, s, pat = c.pat, b = c.bias]() { return rr::run_grouped_topk(p, {}, s + 13, pat, b); })));
  }
  struct T1 {
    const char* name;
    int64_t M, K;
    int E;
    DType dt;
    bool shared;
    Top1Impl impl;
    rr::Pattern pat;
    bool quick;
    const char* model;
  };
  const std::vector<T1> t1s = {
      {"sigmoid_top1/llama4_scout_m1", 1, 0, 0, DType::BF16, true, Top1Impl::Auto, rr::Pattern::Normal, true,
       "llama4_scout"},
      {"sigmoid_top1/llama4_scout_m129", 129, 0, 0, DType::BF16, true, Top1Impl::Auto, rr::Pattern::Normal, true,
       "llama4_scout"},
      {"sigmoid_top1/llama4_scout_m4097", 4097, 0, 0, DType::BF16, false, Top1Impl::Auto, rr::Pattern::Normal, false,
       "llama4_scout"},
      {"sigmoid_top1/simt_m129", 129, 0, 0, DType::BF16, true, Top1Impl::Simt, rr::Pattern::Normal, true,
       "llama4_scout"},
      {"sigmoid_top1/e160_k1000_fp16", 300, 1000, 160, DType::F16, false, Top1Impl::Auto, rr::Pattern::Normal, false,
       nullptr},
      {"sigmoid_top1/dupcols_ties", 1000, 512, 16, DType::BF16, false, Top1Impl::Auto, rr::Pattern::DupCols, false,
       nullptr},
      {"sigmoid_top1/nan_inf_rows", 200, 256, 16, DType::BF16, true, Top1Impl::Auto, rr::Pattern::Specials, false,
       nullptr},
  };
  for (T1 c : t1s) {
    if (o.quick && !c.quick) continue;
    if (c.model) {
      const ModelConfig& m = o.models.model(c.model);
      c.K = m.model_dim;
      c.E = m.experts;
    }
    [[maybe_unused]] routing::SigmoidTop1Params p{
        .tokens = c.M, .hidden = c.K, .experts = c.E, .dtype = c.dt, .shared_expert = c.shared};
    v.push_back(gpu_case(c.name,
                         with_model({{"M", c.M}, {"K", c.K}, {"E", c.E}, {"impl", routing::top1_impl_name(c.impl)}},
                                    c.model),
                         MOE_ROUTING_RUN([p, s, impl = c.impl, pat = c.pat]() {
                           return rr::run_sigmoid_top1(p, {.impl = impl}, s + 17, pat);
                         })));
  }
#undef MOE_ROUTING_RUN
  return v;
}

}  // namespace

KernelFamily make_routing_family() {
  KernelFamily f;
  f.name = "routing";
  f.summary = "MoE routing: softmax top-k, DeepSeek-V3 grouped top-k, sigmoid top-1 fused with the router GEMM";
  f.impls = {"softmax_topk", "grouped_topk", "sigmoid_top1_tensor_core", "sigmoid_top1_simt"};
  f.dtypes = {"fp32", "bf16", "fp16"};
  f.cases = routing_cases;
  return f;
}

}  // namespace moe
