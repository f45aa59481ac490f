// moe-harness run KERNEL: run one kernel on the user's tensors (.npy files),
// write the outputs as .npy, and check them against the CPU reference.
//
//   moe-harness run moe_align --in topk_ids=ids.npy --param num_experts=256
//       --param block_size=128 [--expect sorted_token_ids=theirs.npy ...] --out-dir out/
//   moe-harness run grouped_topk --model deepseek_v3 --in logits=router_logits.npy
//       --in bias=e_score_correction_bias.npy --out-dir out/
// --model NAME fills the routing parameters from configs/model_configs.json
// (explicit --param values win).
//
// Writes out/ref_<output>.npy (CPU reference), out/gpu_<output>.npy (the GPU
// kernel, in a GPU build with a device present) and out/run.json (what ran and
// every check). Checks: GPU kernel vs reference, and each --expect file vs
// reference. Exit 0 when every check passes, 1 on a mismatch, 2 on bad input.
// bf16 inputs: '<u2' arrays of bf16 bit patterns (see moe/npy.hpp).
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "moe/atomic_file.hpp"
#include "moe/check.hpp"
#include "moe/device.hpp"
#include "moe/error.hpp"
#include "moe/model_config.hpp"
#include "moe/npy.hpp"
#include "moe/report.hpp"

#if __has_include("reference/routing/routing_ref.hpp")
#include "reference/routing/routing_ref.hpp"
#define MOE_RUN_HAVE_ROUTING 1
#else
#define MOE_RUN_HAVE_ROUTING 0
#endif
#if MOE_HAVE_GPU
#include "moe/gpu.hpp"
#endif

#if __has_include("reference/moe_align/moe_align_ref.hpp")
#include "reference/moe_align/moe_align_ref.hpp"
#define MOE_RUN_HAVE_ALIGN 1
#else
#define MOE_RUN_HAVE_ALIGN 0
#endif

namespace moe::cli {
namespace {

// ---- the per-kernel table -------------------------------------------------------

struct Tensor {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<float> f;    // float dtypes, widened
  std::vector<int32_t> i;  // I32
  std::vector<uint16_t> bits;  // BF16/F16: the raw 16-bit values as read
  int64_t numel() const {
    int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
  }
};
using Tensors = std::map<std::string, Tensor>;
using Params = std::map<std::string, double>;
using Checks = std::vector<std::pair<std::string, CheckResult>>;  // (output(s), result)

struct InputSpec {
  std::string name;
  std::vector<DType> dtypes;  // accepted
  int rank = 1;
  bool optional = false;
  std::string doc;
};
struct ParamSpec {
  std::string name;
  bool required = false;
  double dflt = 0;
  std::string doc;
  bool integer = true;
};

struct RunKernel {
  std::string name;
  std::string summary;
  std::vector<InputSpec> inputs;
  std::vector<ParamSpec> params;
  std::vector<std::string> outputs;
  // Checks shapes and relations between inputs and params (InputError).
  std::function<void(const Tensors&, const Params&)> validate;
  std::function<Tensors(const Tensors&, const Params&)> reference;
  // The GPU kernel; null when this build has none for the kernel.
  std::function<Tensors(const Tensors&, const Params&)> device;
  // Compares outputs (all of them from the GPU; the --expect subset from a
  // user) with the reference; `external` marks user files (may follow a looser
  // layout, documented per kernel).
  std::function<Checks(const Tensors& got, const Tensors& ref, const Tensors& in, const Params&, bool external)> check;
  // Fills parameters from a model config (--model); explicit --param wins.
  std::function<void(const ModelConfig&, Params&)> from_model;
};

int32_t ip(const Params& p, const char* k) { return static_cast<int32_t>(p.at(k)); }

Tensor i32_tensor(std::vector<int32_t> v, std::vector<int64_t> shape) {
  Tensor t;
  t.dtype = DType::I32;
  t.shape = std::move(shape);
  t.i = std::move(v);
  return t;
}

#if MOE_RUN_HAVE_ALIGN
align::AlignShape align_shape(const Tensors& in, const Params& p) {
  const auto& ids = in.at("topk_ids");
  MOE_REQUIRE(ids.shape[1] <= align::kMaxTopK, fmt::format("topk_ids has {} columns (top_k <= {})", ids.shape[1], align::kMaxTopK));
  return align::AlignShape{ids.shape[0], static_cast<int32_t>(ids.shape[1]), ip(p, "num_experts"), ip(p, "block_size")};
}

// sorted_token_ids: exact for our kernel (the contract orders slots within an
// expert); for an --expect file, the first num_tokens_post_padded entries must
// hold the same multiset per expert segment (other implementations order slots
// within an expert differently, which no consumer depends on); longer arrays
// (another library's capacity) are allowed, entries past the end are ignored.
CheckResult compare_align_output(const std::string& out, const Tensor& got, const Tensor& ref, const Tensors& refs,
                                 const Params& p, bool external) {
  if (!external) return check_exact(got.i, ref.i);
  const int64_t n = ref.numel();
  if (got.numel() < n) {
    CheckResult r;
    r.passed = false;
    r.message = fmt::format("FAIL: {} has {} elements, the reference {}", out, got.numel(), n);
    return r;
  }
  std::vector<int32_t> g(got.i.begin(), got.i.begin() + n), e = ref.i;
  if (out == "sorted_token_ids") {
    const auto& eids = refs.at("expert_ids").i;
    const int64_t bs = ip(p, "block_size");
    size_t b = 0;
    while (b < eids.size()) {
      size_t b2 = b;
      while (b2 < eids.size() && eids[b2] == eids[b]) ++b2;
      const auto lo = static_cast<int64_t>(b) * bs, hi = static_cast<int64_t>(b2) * bs;
      std::sort(g.begin() + lo, g.begin() + hi);
      std::sort(e.begin() + lo, e.begin() + hi);
      b = b2;
    }
  }
  CheckResult r = check_exact(g, e);
  if (r.passed && out == "sorted_token_ids") r.message += " (as a set per expert segment)";
  return r;
}

Checks check_align(const Tensors& got, const Tensors& ref, const Tensors&, const Params& p, bool external) {
  Checks out;
  for (const auto& [name, t] : got) out.emplace_back(name, compare_align_output(name, t, ref.at(name), ref, p, external));
  return out;
}
#endif

#if MOE_RUN_HAVE_ROUTING
const Tensor& logits_of(const Tensors& in) { return in.at("logits"); }

routing::SoftmaxTopkParams softmax_params(const Tensors& in, const Params& p) {
  const auto& l = logits_of(in);
  routing::SoftmaxTopkParams sp;
  sp.tokens = l.shape[0];
  MOE_REQUIRE(l.shape[1] <= routing::kMaxExperts, fmt::format("logits has {} columns (E <= {})", l.shape[1], routing::kMaxExperts));
  sp.experts = static_cast<int32_t>(l.shape[1]);
  sp.top_k = ip(p, "top_k");
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
  gp.n_group = ip(p, "n_group");
  gp.topk_group = ip(p, "topk_group");
  gp.top_k = ip(p, "top_k");
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
#endif

const std::vector<RunKernel>& run_kernels() {
  static const std::vector<RunKernel> table = [] {
    std::vector<RunKernel> t;
#if MOE_RUN_HAVE_ALIGN
    RunKernel k;
    k.name = "moe_align";
    k.summary = "moe_align_block_size: sort top-k slots by expert, pad each expert to block_size";
    k.inputs = {{"topk_ids", {DType::I32}, 2, false, "(M, top_k) expert of each slot, in [-1, E); int32 or int64"},
                {"expert_map", {DType::I32}, 1, true, "(E,) global -> local expert id or -1"}};
    k.params = {{"num_experts", true, 0, "E, number of (global) experts"},
                {"block_size", false, 128, "power of two in [16, 256]"}};
    k.outputs = {"sorted_token_ids", "expert_ids", "num_tokens_post_padded"};
    k.validate = [](const Tensors& in, const Params& p) {
      const auto& ids = in.at("topk_ids");
      const auto shape = align_shape(in, p);
      shape.validate();
      std::span<const int32_t> map;
      if (in.count("expert_map")) {
        MOE_REQUIRE(in.at("expert_map").shape[0] == shape.num_experts,
                    fmt::format("expert_map has {} entries, num_experts is {}", in.at("expert_map").shape[0],
                                shape.num_experts));
        map = in.at("expert_map").i;
      }
      align::validate_align_ids(shape, ids.i, map);
    };
    k.reference = [](const Tensors& in, const Params& p) {
      const auto shape = align_shape(in, p);
      std::span<const int32_t> map;
      if (in.count("expert_map")) map = in.at("expert_map").i;
      auto r = ref::moe_align_block_size(shape, in.at("topk_ids").i, map);
      Tensors out;
      const auto n = static_cast<int64_t>(r.sorted_token_ids.size()), b = static_cast<int64_t>(r.expert_ids.size());
      out["sorted_token_ids"] = i32_tensor(std::move(r.sorted_token_ids), {n});
      out["expert_ids"] = i32_tensor(std::move(r.expert_ids), {b});
      out["num_tokens_post_padded"] = i32_tensor({r.num_tokens_post_padded}, {1});
      return out;
    };
#if MOE_HAVE_GPU
    k.device = [](const Tensors& in, const Params& p) {
      const auto shape = align_shape(in, p);
      std::span<const int32_t> map;
      if (in.count("expert_map")) map = in.at("expert_map").i;
      auto r = align::run_align_on_device(shape, in.at("topk_ids").i, map);
      // Trim the capacity layout to the valid prefix, like the reference; the
      // tail beyond it must hold the sentinel / -1 (checked here).
      const int32_t n = r.num_tokens_post_padded;
      MOE_REQUIRE(n >= 0 && n <= static_cast<int64_t>(r.sorted_token_ids.size()) && n % shape.block_size == 0,
                  fmt::format("GPU kernel returned num_tokens_post_padded = {}", n));
      for (size_t j = n; j < r.sorted_token_ids.size(); ++j)
        if (r.sorted_token_ids[j] != shape.sentinel())
          throw Error(fmt::format("GPU sorted_token_ids[{}] = {} past the end (want sentinel {})", j,
                                  r.sorted_token_ids[j], shape.sentinel()));
      for (size_t j = n / shape.block_size; j < r.expert_ids.size(); ++j)
        if (r.expert_ids[j] != -1)
          throw Error(fmt::format("GPU expert_ids[{}] = {} past the end (want -1)", j, r.expert_ids[j]));
      Tensors out;
      out["sorted_token_ids"] = i32_tensor({r.sorted_token_ids.begin(), r.sorted_token_ids.begin() + n}, {n});
      const int64_t nb = n / shape.block_size;
      out["expert_ids"] = i32_tensor({r.expert_ids.begin(), r.expert_ids.begin() + nb}, {nb});
      out["num_tokens_post_padded"] = i32_tensor({n}, {1});
      return out;
    };
#endif
    k.check = check_align;
    t.push_back(std::move(k));
#endif
#if MOE_RUN_HAVE_ROUTING
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
#endif
    return t;
  }();
  return table;
}

// ---- the command ------------------------------------------------------------------

struct Opts {
  std::string kernel;
  std::vector<std::string> in, expect, params;
  std::string out_dir;
  std::string model, model_configs;
  std::string tuned_config;
  bool cpu_only = false;
  bool list = false;
};
Opts o;

std::pair<std::string, std::string> split_eq(const std::string& s, const char* flag) {
  const auto eq = s.find('=');
  MOE_REQUIRE(eq != std::string::npos && eq > 0 && eq + 1 < s.size(),
              fmt::format("{} '{}': expected name=value", flag, s));
  return {s.substr(0, eq), s.substr(eq + 1)};
}

std::string dtype_list(const std::vector<DType>& v) {
  std::string s;
  for (auto d : v) s += fmt::format("{}{} ('{}')", s.empty() ? "" : ", ", dtype_name(d), npy_descr(d));
  return s;
}

Tensor load_tensor(const std::string& path, const std::string& what, const std::vector<DType>& accepted, int rank) {
  NpyArray a = read_npy(path);
  if (std::find(accepted.begin(), accepted.end(), a.dtype) == accepted.end()) {
    // float inputs accept any float encoding; int inputs only int32/int64.
    const bool want_float = std::any_of(accepted.begin(), accepted.end(), [](DType d) { return d != DType::I32; });
    if (!(want_float && a.dtype != DType::I32))
      throw InputError(fmt::format("{}: {} must be {}, got {} ('{}')", path, what, dtype_list(accepted),
                                   dtype_name(a.dtype), npy_descr(a.dtype)));
  }
  if (a.rank() != rank)
    throw InputError(fmt::format("{}: {} must have rank {}, got shape {}", path, what, rank, a.shape_str()));
  for (auto d : a.shape) MOE_REQUIRE(d > 0, fmt::format("{}: {} has an empty dimension, shape {}", path, what, a.shape_str()));
  Tensor t;
  t.dtype = a.dtype;
  t.shape = a.shape;
  if (a.dtype == DType::I32) {
    t.i = a.to_i32();
  } else {
    t.f = a.to_f32();
    if (a.dtype != DType::F32) {
      t.bits.resize(a.bytes.size() / 2);
      std::memcpy(t.bits.data(), a.bytes.data(), a.bytes.size());
    }
  }
  return t;
}

void save_tensor(const std::string& path, const Tensor& t) {
  if (t.dtype == DType::I32) write_npy_i32(path, t.shape, t.i);
  else write_npy_float_as(path, t.dtype, t.shape, t.f);
}

int run_run(const CommonOptions& c) {
  const auto& table = run_kernels();
  if (o.list || o.kernel.empty()) {
    fmt::print("kernels runnable on .npy inputs:\n");
    for (const auto& k : table) {
      fmt::print("  {}: {}{}\n", k.name, k.summary, k.device ? "" : " [CPU reference only in this build]");
      for (const auto& i : k.inputs)
        fmt::print("    --in {}=FILE.npy  rank {}, {}{}: {}\n", i.name, i.rank, dtype_list(i.dtypes),
                   i.optional ? ", optional" : "", i.doc);
      for (const auto& p : k.params)
        fmt::print("    --param {}={}  {}{}\n", p.name, p.integer ? "N" : "X", p.doc,
                   p.required ? " (required)" : fmt::format(" (default {})", p.dflt));
      if (k.from_model) fmt::print("    --model NAME  parameters from configs/model_configs.json\n");
      fmt::print("    outputs: {}\n", fmt::join(k.outputs, ", "));
    }
    if (table.empty()) fmt::print("  (none: no kernel reference is built in)\n");
    return o.kernel.empty() && !o.list ? 2 : 0;
  }
  const RunKernel* kp = nullptr;
  for (const auto& k : table)
    if (k.name == o.kernel) kp = &k;
  if (!kp) {
    std::vector<std::string> names;
    for (const auto& k : table) names.push_back(k.name);
    throw InputError(fmt::format("run: unknown kernel '{}' (runnable: {})", o.kernel, names.empty() ? "none" : fmt::format("{}", fmt::join(names, ", "))));
  }
  const RunKernel& k = *kp;
  MOE_REQUIRE(!o.out_dir.empty(), "run: --out-dir is required");
  {
    std::error_code ec;
    std::filesystem::create_directories(o.out_dir, ec);
    MOE_REQUIRE(!ec && std::filesystem::is_directory(o.out_dir),
                fmt::format("run: --out-dir {}: cannot create the folder{}", o.out_dir, ec ? ": " + ec.message() : ""));
    check_output_target(o.out_dir + "/run.json");
  }

  // Parameters.
  Params params;
  for (const auto& s : o.params) {
    auto [name, value] = split_eq(s, "--param");
    const auto it = std::find_if(k.params.begin(), k.params.end(), [&](const ParamSpec& p) { return p.name == name; });
    MOE_REQUIRE(it != k.params.end(), fmt::format("run {}: unknown --param '{}'", k.name, name));
    MOE_REQUIRE(!params.count(name), fmt::format("run {}: --param {} given twice", k.name, name));
    double v = 0;
    const auto r = std::from_chars(value.data(), value.data() + value.size(), v);
    MOE_REQUIRE(r.ec == std::errc() && r.ptr == value.data() + value.size() && std::isfinite(v),
                fmt::format("run {}: --param {}={}: expected a number", k.name, name, value));
    MOE_REQUIRE(!it->integer || (v == std::floor(v) && std::fabs(v) < 1e15),
                fmt::format("run {}: --param {}={}: expected an integer", k.name, name, value));
    params[name] = v;
  }
  if (!o.model.empty()) {
    MOE_REQUIRE(k.from_model, fmt::format("run {}: --model is not supported for this kernel", k.name));
    const std::string path =
        o.model_configs.empty() ? find_config_file("model_configs.json", MOE_SOURCE_DIR) : o.model_configs;
    k.from_model(find_model(load_model_configs(path), o.model), params);
  }
  for (const auto& p : k.params) {
    if (params.count(p.name)) continue;
    MOE_REQUIRE(!p.required, fmt::format("run {}: --param {}=N{} is required ({})", k.name, p.name,
                                         k.from_model ? " (or --model)" : "", p.doc));
    params[p.name] = p.dflt;
  }
  // Inputs.
  Tensors in;
  for (const auto& s : o.in) {
    auto [name, path] = split_eq(s, "--in");
    const auto it = std::find_if(k.inputs.begin(), k.inputs.end(), [&](const InputSpec& i) { return i.name == name; });
    MOE_REQUIRE(it != k.inputs.end(), fmt::format("run {}: unknown input '{}'", k.name, name));
    MOE_REQUIRE(!in.count(name), fmt::format("run {}: --in {} given twice", k.name, name));
    in[name] = load_tensor(path, name, it->dtypes, it->rank);
  }
  for (const auto& i : k.inputs)
    MOE_REQUIRE(i.optional || in.count(i.name), fmt::format("run {}: missing --in {}=FILE.npy", k.name, i.name));
  std::map<std::string, std::string> expect_paths;
  for (const auto& s : o.expect) {
    auto [name, path] = split_eq(s, "--expect");
    MOE_REQUIRE(std::find(k.outputs.begin(), k.outputs.end(), name) != k.outputs.end(),
                fmt::format("run {}: --expect {}: not an output (outputs: {})", k.name, name, fmt::join(k.outputs, ", ")));
    expect_paths[name] = path;
  }
  k.validate(in, params);
  // Kernels with tuned configs (fused_moe) look them up in this table.
  const nlohmann::json tuned = activate_tuned_config(o.tuned_config);

  nlohmann::json doc{{"tool", "moe-harness run"}, {"version", MOE_VERSION}, {"kernel", k.name}, {"model", o.model},
                     {"backend", gpu_backend()},  {"params", params},      {"checks", nlohmann::json::array()}};
  for (const auto& [name, t] : in) doc["inputs"][name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}};
  doc["tuned_config"] = tuned;

  const Tensors ref = k.reference(in, params);
  for (const auto& [name, t] : ref) save_tensor(o.out_dir + "/ref_" + name + ".npy", t);
  int failures = 0;
  auto record = [&](const std::string& against, const std::string& output, const CheckResult& r) {
    fmt::print("{} {} vs reference: {}\n", r.passed ? "PASS" : "FAIL", against + " " + output, r.message);
    auto j = r.to_json();
    j["against"] = against;
    j["output"] = output;
    doc["checks"].push_back(j);
    if (!r.passed) ++failures;
  };
  // The GPU kernel, when this build has one and a device is present.
  const bool have_device = !list_devices().empty();
  if (k.device && have_device && !o.cpu_only) {
#if MOE_HAVE_GPU
    MOE_GPU_CHECK(hipSetDevice(c.device));
#endif
    const Tensors got = k.device(in, params);
    for (const auto& [name, t] : got) save_tensor(o.out_dir + "/gpu_" + name + ".npy", t);
    for (const auto& [what, r] : k.check(got, ref, in, params, false)) record("gpu", what, r);
    doc["device"] = list_devices().at(static_cast<size_t>(c.device)).to_json();
  } else {
    const std::string why = o.cpu_only ? "--cpu-only" : !k.device ? "this build has no GPU kernel for it" : "no GPU visible";
    fmt::print("run {}: GPU kernel not run ({})\n", k.name, why);
    doc["gpu_skipped"] = why;
  }
  (void)c;
  if (!expect_paths.empty()) {
    Tensors theirs;
    std::string files;
    for (const auto& [name, path] : expect_paths) {
      const auto& r = ref.at(name);
      theirs[name] = load_tensor(path, name, {r.dtype}, static_cast<int>(r.shape.size()));
      files += (files.empty() ? "" : "+") + path;
    }
    for (const auto& [what, r] : k.check(theirs, ref, in, params, true)) record(files, what, r);
  }
  if (doc["checks"].empty()) fmt::print("run {}: nothing to check against (no GPU run, no --expect); reference outputs written\n", k.name);
  doc["passed"] = failures == 0;
  write_file_atomic(o.out_dir + "/run.json", doc.dump(2) + "\n");
  fmt::print("run {}: outputs in {} ({} check(s), {} failed)\n", k.name, o.out_dir, doc["checks"].size(), failures);
  return failures > 0 ? 1 : 0;
}

}  // namespace

void register_run(CLI::App& app, std::vector<Command>& out) {
  auto* sub = app.add_subcommand("run", "Run one kernel on .npy inputs, write .npy outputs, check against the reference");
  sub->add_option("kernel", o.kernel, "Kernel (see run --list)");
  sub->add_option("--in", o.in, "Input tensor name=FILE.npy (repeatable); bf16 as '<u2' bit patterns");
  sub->add_option("--param", o.params, "Parameter name=value (repeatable)");
  sub->add_option("--model", o.model, "Take the kernel's parameters from this model's config (see moe-harness list)");
  sub->add_option("--model-configs", o.model_configs, "Model configs file (default: configs/model_configs.json)");
  sub->add_option("--expect", o.expect, "Output name=FILE.npy to check against the reference (repeatable)");
  sub->add_option("--out-dir", o.out_dir, "Folder for ref_*.npy, gpu_*.npy and run.json");
  add_tuned_config_option(sub, o.tuned_config);
  sub->add_flag("--cpu-only", o.cpu_only, "Do not run the GPU kernel");
  sub->add_flag("--list", o.list, "List the runnable kernels, their inputs and parameters");
  out.push_back({sub, run_run});
}

}  // namespace moe::cli
