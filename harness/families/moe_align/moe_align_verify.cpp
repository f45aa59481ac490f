// Verify family "moe_align": the reference against the golden vectors in
// data/moe_align (CPU, no GPU needed), and the HIP kernels against the reference
// on generated routing (GPU; a short subset with VerifyOptions::quick).
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "kernels/moe_align/moe_align.hpp"
#include "moe/registry.hpp"
#include "reference/moe_align/moe_align_ref.hpp"

namespace moe {
namespace {

struct GpuCase {
  int64_t M;
  int32_t E;
  int32_t k;
  int32_t bs;
  ref::AlignIds ids;
  double masked;
  bool half_remote;
  align::AlignPath path;
  std::string model;  // configs/model_configs.json name where E, top_k are a model's; "" otherwise
};

const char* path_name(align::AlignPath p) {
  switch (p) {
    case align::AlignPath::Auto: return "auto";
    case align::AlignPath::SingleBlock: return "single_block";
    case align::AlignPath::MultiBlock: return "multi_block";
    case align::AlignPath::Fused: return "fused";
  }
  return "?";
}

std::vector<GpuCase> gpu_cases(const ModelTable& models, bool quick) {
  using ref::AlignIds;
  using P = align::AlignPath;
  std::vector<GpuCase> v;
  // Models' (experts, top_k) at block 64: the "align" sweep of configs/model_configs.json.
  for (const SweepPoint& pt : models.points("align", quick))
    v.push_back({pt.M, pt.model.experts, pt.model.top_k, 64, AlignIds::Softmax, 0.0, false, P::Auto, pt.model.name});
  // Edges: big E, one expert, most experts empty, half-remote map, masked ids, both paths.
  v.push_back({16, 4096, 8, 256, AlignIds::Uniform, 0.0, false, P::Auto, ""});
  v.push_back({4096, 256, 8, 64, AlignIds::OneExpert, 0.0, false, P::Auto, ""});
  v.push_back({2256, 1024, 6, 32, AlignIds::FewExperts, 0.1, false, P::Auto, ""});
  v.push_back({256, 256, 8, 128, AlignIds::Softmax, 0.05, true, P::MultiBlock, ""});
  v.push_back({4096, 256, 8, 64, AlignIds::Softmax, 0.0, true, P::SingleBlock, ""});
  if (!quick) {
    for (int64_t M : {3, 7, 2256, 131072})
      for (int32_t E : {1, 2, 160, 257, 384, 512, 4096}) {
        const int32_t k = std::min<int32_t>(E, M >= 131072 ? 8 : 6);
        v.push_back({M, E, k, 16 << (E % 5), E >= 384 ? AlignIds::Uniform : AlignIds::Softmax, 0.05, E % 2 == 0,
                     P::Auto, ""});
      }
    v.push_back({131072, 4096, 64, 256, AlignIds::OneExpert, 0.0, false, P::Auto, ""});
    v.push_back({65536, 256, 16, 16, AlignIds::Zipf, 0.0, true, P::Auto, ""});
  }
  return v;
}

std::vector<VerifyCase> align_cases(const VerifyOptions& o) {
  std::vector<VerifyCase> out;
  // Golden vectors: one CPU case per file; a file that does not load is a failing
  // case of its own (named after the file), and the others still run.
  auto failing = [&](std::string name, std::string msg) {
    VerifyCase vc;
    vc.kernel = "moe_align";
    vc.name = std::move(name);
    vc.run = [msg = std::move(msg)] { return CaseResult{false, false, "error: " + msg, nlohmann::json::object()}; };
    out.push_back(std::move(vc));
  };
  std::vector<std::string> files;
  try {
    files = ref::align_golden_files(o.data_dir);
  } catch (const std::exception& e) {
    failing("golden/load", e.what());
  }
  for (const auto& file : files) {
    ref::AlignGoldenCase g;
    try {
      g = ref::load_align_golden_file(file);
    } catch (const std::exception& e) {
      failing("golden/" + std::filesystem::path(file).stem().string(), e.what());
      continue;
    }
    VerifyCase vc;
    vc.kernel = "moe_align";
    vc.name = "golden/" + g.name;
    vc.params = {{"M", g.shape.num_tokens}, {"E", g.shape.num_experts}, {"top_k", g.shape.top_k},
                 {"block_size", g.shape.block_size}, {"expert_map", !g.expert_map.empty()},
                 {"expect_error", g.expect_error}, {"generator", g.generator}};
    vc.run = [g = std::move(g)]() {
      const auto r = ref::check_align_golden(g);
      CaseResult cr;
      cr.passed = r.passed;
      cr.message = r.message;
      return cr;
    };
    out.push_back(std::move(vc));
  }

  for (const GpuCase& c : gpu_cases(o.models, o.quick)) {
    VerifyCase vc;
    vc.kernel = "moe_align";
    vc.needs_gpu = true;
    // A model's cases carry its name: two models may share (E, top_k).
    vc.name = fmt::format("gpu/{}M{}_E{}_k{}_b{}_{}{}{}_{}", c.model.empty() ? "" : "model/" + c.model + "_", c.M, c.E,
                          c.k, c.bs, ref::align_ids_name(c.ids), c.masked > 0 ? "_masked" : "",
                          c.half_remote ? "_halfremote" : "", path_name(c.path));
    vc.params = {{"M", c.M}, {"E", c.E}, {"top_k", c.k}, {"block_size", c.bs}, {"ids", ref::align_ids_name(c.ids)},
                 {"masked", c.masked}, {"expert_map", c.half_remote}, {"path", path_name(c.path)}};
    if (!c.model.empty()) vc.params["model"] = c.model;  // --where model=NAME
    const uint64_t seed = o.seed * 1000003u + static_cast<uint64_t>(c.M * 131 + c.E * 7 + c.k);
    vc.run = [c, seed]() {
      CaseResult cr;
#if MOE_HAVE_GPU
      const align::AlignShape s{c.M, c.k, c.E, c.bs};
      const auto ids = ref::make_align_ids(s, c.ids, seed, c.masked);
      const auto map = c.half_remote ? ref::make_half_remote_map(c.E, seed) : std::vector<int32_t>{};
      const auto want = ref::expand_to_capacity(ref::moe_align_block_size(s, ids, map), s);
      const auto got = align::run_align_on_device(s, ids, map, c.path);
      const auto chk = ref::compare_align(want, got.sorted_token_ids, got.expert_ids, got.num_tokens_post_padded);
      cr.passed = chk.passed && got.status == 0;
      cr.message = got.status == 0 ? chk.message : fmt::format("FAIL: device status {} (expected 0)", got.status);
      cr.metrics = {{"path", path_name(got.config.path)},
                    {"num_blocks", got.config.num_blocks},
                    {"rank_warps", got.config.rank_warps},
                    {"num_tokens_post_padded", got.num_tokens_post_padded},
                    {"capacity", align::align_capacity(s)}};
#else
      (void)c;
      (void)seed;
      cr = skipped_without_gpu_backend();
#endif
      return cr;
    };
    out.push_back(std::move(vc));
  }
  return out;
}

}  // namespace

KernelFamily make_moe_align_family() {
  KernelFamily f;
  f.name = "moe_align";
  f.summary = "moe_align_block_size: sort top-k slots by expert, pad each expert to block_size (deterministic)";
  f.impls = {"single_block", "multi_block"};
  f.dtypes = {"i32"};
  f.cases = align_cases;
  return f;
}

}  // namespace moe
