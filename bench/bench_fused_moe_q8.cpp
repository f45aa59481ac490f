// Benchmarks of the quantized fused MoE layer, bf16 side by side: for
// the models and token counts M of the "layer" sweep of configs/model_configs.json,
// the bf16 layer (kernels/fused_moe) and then every quantized scheme, each
// the full layer (GPU align + activation quantizer + stage 1 + intermediate
// quantizer + stage 2 + reduce), graph-replayed. Inputs as bench_fused_moe
// (bf16, fan-in scaled normals, softmax top-k or MOE_BENCH_ROUTING's, seed 0); the quantized weights are
// those normals quantized on the device (kernels/quant, scheme's granularity).
//
// Names: BM_bf16_layer/<model>/M:<M>, BM_q8_layer/<scheme>/<model>/M:<M>; with
// MOE_Q8_TILE_SWEEP=1 in the environment also BM_q8_tile/<scheme>/<model>/M:<M>/
// tile:<name>/split:<s>[/persistent:<0|1>, the ws tiles both ways] for M in
// {1, 16, 64, 256} (MOE_Q8_TILE_SWEEP_M=1024,4096 for others) and scheme fp8_tensor
// (MOE_Q8_TILE_SWEEP_SCHEMES=fp8_tensor,fp8_block for others): both stages on the compiled
// tile <name> (kQ8TileShapes; names: kernels/fused_moe/tile.hpp) and stage-2 split-K s, to
// compare tiles where the chooser decides.
// Counters (besides bench_common's us, GBps, TFLOPs, pct_read_bw, pct_bf16_flops):
//   floor_us        weight bytes actually touched (hit experts: codes + scales for
//                   q8, 16-bit for bf16) + activations, over the measured read bandwidth
//   pct_floor       floor_us / us * 100 (q8: the fp8 bandwidth floor, half the bf16 bytes)
//   bf16_us         the bf16 layer's time at the same point (same process, same card)
//   ratio_vs_bf16   us / bf16_us (vLLM's fp8/bf16: 0.55-0.90); speedup_vs_bf16 = 1/ratio
//   experts_hit, block_m, split_k
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "bench_common.hpp"
#include "kernels/common/common_kernels.hpp"
#include "kernels/fused_moe/fused_moe.hpp"
#include "kernels/fused_moe_q8/fused_moe_q8.hpp"
#include "kernels/moe_align/moe_align.hpp"
#include "moe/inputs.hpp"
#include "moe/model_config.hpp"
#include "harness/families/fused_moe_q8/fused_moe_q8_runner.hpp"

namespace {

using namespace moe;
using fused_moe_q8::Scheme;

using Model = moe::ModelConfig;

fused_moe::Problem problem_for(const Model& m, int64_t M) {
  fused_moe::Problem p;
  p.tokens = M;
  p.model_dim = m.model_dim;
  p.inter_dim = m.inter_dim;
  p.experts = m.experts;
  p.top_k = m.top_k;
  return p;
}

// Weights of one model (bf16, or one scheme's codes) stay on the device while its points run.
struct Weights {
  std::string model;  // name of the model these weights are of
  int kind = -1;  // -1 bf16, else Scheme
  gpu::DeviceBuffer<uint16_t> w1, w2;
  gpu::DeviceBuffer<uint8_t> q1, q2;
  gpu::DeviceBuffer<float> s1, s2;
};
Weights& weights_for(const Model& m, int kind) {
  static Weights w;
  if (w.model != m.name || w.kind != kind) {
    w = Weights{};
    const InputSpec s = layer_input_spec(m, 1);
    if (kind < 0) {
      w.w1 = gpu::DeviceBuffer<uint16_t>(static_cast<size_t>(s.w1_elems()));
      w.w2 = gpu::DeviceBuffer<uint16_t>(static_cast<size_t>(s.w2_elems()));
      kernels::fill_normal(w.w1.data(), s.dtype, w.w1.size(), s.seed, rng::Stream::W1, 0, s.scale(rng::Stream::W1), nullptr);
      kernels::fill_normal(w.w2.data(), s.dtype, w.w2.size(), s.seed, rng::Stream::W2, 0, s.scale(rng::Stream::W2), nullptr);
    } else {
      fused_moe_q8::Q8Problem qp;
      qp.base = problem_for(m, 1);
      qp.scheme = static_cast<Scheme>(kind);
      fused_moe_q8::check::make_q8_weight(qp.w1_quant(s.dtype), s, rng::Stream::W1, w.q1, w.s1);
      fused_moe_q8::check::make_q8_weight(qp.w2_quant(s.dtype), s, rng::Stream::W2, w.q2, w.s2);
    }
    MOE_GPU_CHECK(hipDeviceSynchronize());
    w.model = m.name;
    w.kind = kind;
  }
  return w;
}

std::map<std::pair<std::string, int64_t>, double>& bf16_times() {
  static std::map<std::pair<std::string, int64_t>, double> t;
  return t;
}

// Routing, align buffers and activations of one point (shared by bf16 and q8).
struct Common {
  int64_t experts_hit = 0;
  gpu::DeviceBuffer<uint16_t> hidden, out;
  gpu::DeviceBuffer<float> topk_weights;
  gpu::DeviceBuffer<int32_t> topk_ids, sorted, expert_ids, num_post;
  gpu::DeviceBuffer<int32_t> counters = gpu::DeviceBuffer<int32_t>::zeros(fused_moe::kTileCounters);
  align::AlignShape ashape;
  align::AlignLaunchConfig acfg;
  align::AlignWorkspace aws;
  fused_moe::AlignedRouting r;
  Common(const Model& m, int64_t M, int block_size) {
    const InputSpec s = bench::layer_spec(m, M);
    const Routing routing = make_routing(s);
    experts_hit = static_cast<int64_t>(std::set<int32_t>(routing.topk_ids.begin(), routing.topk_ids.end()).size());
    hidden = gpu::DeviceBuffer<uint16_t>(static_cast<size_t>(s.hidden_elems()));
    kernels::fill_normal(hidden.data(), s.dtype, hidden.size(), s.seed, rng::Stream::Hidden, 0, 1.0f, nullptr);
    out = gpu::DeviceBuffer<uint16_t>(static_cast<size_t>(M * m.model_dim));
    topk_weights = gpu::DeviceBuffer<float>(routing.topk_weights.size());
    topk_ids = gpu::DeviceBuffer<int32_t>(routing.topk_ids.size());
    topk_weights.upload(routing.topk_weights);
    topk_ids.upload(routing.topk_ids);
    ashape = align::AlignShape{M, m.top_k, m.experts, block_size};
    acfg = align::AlignLaunchConfig::choose(ashape, align::AlignDeviceLimits::current());
    aws.reserve(acfg.workspace_bytes(ashape));
    sorted = gpu::DeviceBuffer<int32_t>(static_cast<size_t>(align::align_capacity(ashape)));
    expert_ids = gpu::DeviceBuffer<int32_t>(static_cast<size_t>(std::max<int64_t>(1, align::align_max_blocks(ashape))));
    num_post = gpu::DeviceBuffer<int32_t>(1);
    r = fused_moe::AlignedRouting{sorted.data(), expert_ids.data(), num_post.data(), static_cast<int64_t>(sorted.size()),
                                  block_size};
  }
  void align_now(hipStream_t s) {
    align::moe_align_block_size(topk_ids.data(), nullptr, ashape,
                                align::AlignOutputs{sorted.data(), expert_ids.data(), num_post.data()}, aws, s, acfg);
  }
};

double read_gbps() {
  const auto& ctx = bench::device_context();
  return ctx.ceilings.read_gbps > 0 ? ctx.ceilings.read_gbps : 3000.0;
}

void run_bf16(benchmark::State& state, const Model& m, int64_t M) {
  const fused_moe::Problem p = problem_for(m, M);
  const fused_moe::LayerConfig cfg = fused_moe::choose_config(p, fused_moe::device_limits());
  Weights& w = weights_for(m, -1);
  Common c(m, M, cfg.block_size());
  const auto wsb = fused_moe::workspace_bytes(p, cfg);
  gpu::DeviceBuffer<uint16_t> inter(static_cast<size_t>(wsb.intermediate / 2));
  gpu::DeviceBuffer<float> partial(static_cast<size_t>(wsb.partial / 4));
  const fused_moe::Tensors t{c.hidden.data(), w.w1.data(), w.w2.data(), c.topk_weights.data(), c.topk_ids.data(),
                             c.out.data()};
  const double wbytes = static_cast<double>(c.experts_hit) * 3.0 * m.inter_dim * m.model_dim * 2.0;
  const bench::Work work{wbytes + 2.0 * M * m.model_dim * 2.0, p.flops()};
  bench::run_gpu_benchmark(
      state,
      [&](hipStream_t s) {
        c.align_now(s);
        fused_moe::fused_moe(p, t, c.r, fused_moe::Workspace{inter.data(), partial.data(), c.counters.data()}, cfg, s);
      },
      work, {.batch = 3, .graph = true, .flush_l2 = false});
  const double us = state.counters["us"];
  bf16_times()[{m.name, M}] = us;
  const double floor = work.bytes / (read_gbps() * 1e9) * 1e6;
  state.counters["floor_us"] = floor;
  state.counters["pct_floor"] = us > 0 ? 100.0 * floor / us : 0.0;
  state.counters["experts_hit"] = static_cast<double>(c.experts_hit);
  state.counters["M"] = static_cast<double>(M);
  state.SetLabel(cfg.to_string());
}

// shape < 0: the chooser's config; else both stages on that compiled shape with
// stage-2 split-K `split`, persistent as the config rule says (persistent < 0) or
// forced off (0) / on (1).
void run_q8(benchmark::State& state, const Model& m, int64_t M, Scheme scheme, int shape = -1, int split = 1,
            int persistent = -1) {
  fused_moe_q8::Q8Problem p;
  p.base = problem_for(m, M);
  p.scheme = scheme;
  const fused_moe_q8::Q8DeviceLimits lim = fused_moe_q8::q8_device_limits();
  if (!fused_moe_q8::is_int8(scheme) && !lim.fp8_mma) {
    state.SkipWithError("fp8 MMA not available on this build/device");
    return;
  }
  fused_moe_q8::Q8LayerConfig cfg = fused_moe_q8::choose_q8_config(p, lim);
  if (shape >= 0) {
    cfg = fused_moe_q8::q8_config_for_shape(p, lim, shape);
    cfg.stage2.split_k = split;
    if (persistent >= 0) cfg.stage1.persistent = cfg.stage2.persistent = persistent == 1;
    const fused_moe::TileShape& t = fused_moe_q8::kQ8TileShapes[shape];
    if (!cfg.is_valid(scheme) || (t.wgmma && !lim.wgmma) ||
        fused_moe_q8::q8_tile_smem_bytes(t) > lim.max_smem_per_block) {
      state.SkipWithError("tile not valid or not available here");
      return;
    }
  }
  Weights& w = weights_for(m, static_cast<int>(scheme));
  Common c(m, M, cfg.block_size());
  const auto sz = fused_moe_q8::workspace_sizes(p, cfg);
  gpu::DeviceBuffer<uint8_t> a1(static_cast<size_t>(sz.a1)), a2(static_cast<size_t>(sz.a2));
  gpu::DeviceBuffer<float> a1s(static_cast<size_t>(sz.a1_scale)), a2s(static_cast<size_t>(sz.a2_scale));
  gpu::DeviceBuffer<uint16_t> inter(static_cast<size_t>(sz.intermediate));
  gpu::DeviceBuffer<float> partial(static_cast<size_t>(sz.partial));
  quant::Workspace qws(1);
  fused_moe_q8::Q8Tensors t;
  t.hidden = c.hidden.data();
  t.w1 = w.q1.data();
  t.w1_scale = w.s1.data();
  t.w2 = w.q2.data();
  t.w2_scale = w.s2.data();
  t.topk_weights = c.topk_weights.data();
  t.topk_ids = c.topk_ids.data();
  t.out = c.out.data();
  const fused_moe_q8::Q8Workspace ws{a1.data(),    a1s.data(),     inter.data(),     a2.data(),
                                      a2s.data(),   partial.data(), c.counters.data()};
  const bench::Work work{p.weight_bytes(c.experts_hit) + 2.0 * M * m.model_dim * 2.0, p.base.flops()};
  bench::run_gpu_benchmark(
      state,
      [&](hipStream_t s) {
        c.align_now(s);
        fused_moe_q8::fused_moe_q8(p, t, c.r, ws, qws, cfg, s, quant::CheckMode::Deferred);
      },
      work, {.batch = 3, .graph = true, .flush_l2 = false});
  qws.check(p.a1_quant(), nullptr);
  const double us = state.counters["us"];
  const double floor = work.bytes / (read_gbps() * 1e9) * 1e6;
  state.counters["floor_us"] = floor;
  state.counters["pct_floor"] = us > 0 ? 100.0 * floor / us : 0.0;
  state.counters["experts_hit"] = static_cast<double>(c.experts_hit);
  state.counters["M"] = static_cast<double>(M);
  state.counters["block_m"] = cfg.block_size();
  state.counters["split_k"] = cfg.stage2.split_k;
  if (auto it = bf16_times().find({m.name, M}); it != bf16_times().end() && us > 0) {
    state.counters["bf16_us"] = it->second;
    state.counters["ratio_vs_bf16"] = us / it->second;
    state.counters["speedup_vs_bf16"] = it->second / us;
  }
  state.SetLabel(cfg.to_string());
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i)
    if (i == s.size() || s[i] == ',') {
      if (i > start) out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  return out;
}

// The "layer" sweep of configs/model_configs.json.
void register_points(const ModelTable& table) {
  const std::vector<int64_t> Ms = table.sweep_tokens("layer");
  const std::vector<Model> models = table.sweep_models("layer");
  for (const Model& m : models) {
    for (int64_t M : Ms)
      benchmark::RegisterBenchmark(fmt::format("BM_bf16_layer/{}/M:{}", m.name, M).c_str(),
                                   [m, M](benchmark::State& st) { run_bf16(st, m, M); })
          ->UseManualTime()
          ->Unit(benchmark::kMicrosecond)
          ->Iterations(10);
    for (Scheme s : fused_moe_q8::kAllSchemes)
      for (int64_t M : Ms)
        benchmark::RegisterBenchmark(
            fmt::format("BM_q8_layer/{}/{}/M:{}", fused_moe_q8::scheme_name(s), m.name, M).c_str(),
            [m, M, s](benchmark::State& st) { run_q8(st, m, M, s); })
            ->UseManualTime()
            ->Unit(benchmark::kMicrosecond)
            ->Iterations(10);
  }
  std::vector<int64_t> sweep_ms{1, 16, 64, 256};
  if (const char* ms = std::getenv("MOE_Q8_TILE_SWEEP_M"); ms && *ms) {  // e.g. "1024,4096"
    sweep_ms.clear();
    for (const auto& tok : split_list(ms)) sweep_ms.push_back(std::stoll(tok));
  }
  std::vector<Scheme> sweep_schemes{Scheme::Fp8Tensor};
  if (const char* ss = std::getenv("MOE_Q8_TILE_SWEEP_SCHEMES"); ss && *ss) {  // e.g. "fp8_tensor,fp8_block"
    sweep_schemes.clear();
    for (const auto& tok : split_list(ss)) sweep_schemes.push_back(fused_moe_q8::parse_scheme(tok));
  }
  if (const char* sweep = std::getenv("MOE_Q8_TILE_SWEEP"); sweep && std::string(sweep) == "1")
    for (Scheme scheme : sweep_schemes)
      for (const Model& m : models)
        for (int64_t M : sweep_ms)
          for (int shape = 0; shape < fused_moe_q8::kNumQ8TileShapes; ++shape)
            for (int split : {1, 2, 4}) {
              const fused_moe::TileShape& t = fused_moe_q8::kQ8TileShapes[shape];
              const std::string name = fmt::format("BM_q8_tile/{}/{}/M:{}/tile:{}/split:{}",
                                                   fused_moe_q8::scheme_name(scheme), m.name, M, t.name(), split);
              // The ws tiles both ways: one block (or cluster) per tile (pair), and a
              // persistent grid whose producer fills the ring for the next tile during the
              // epilogue.
              const bool both = t.ws;
              for (int pers : both ? std::vector<int>{0, 1} : std::vector<int>{-1})
                benchmark::RegisterBenchmark(
                    (pers < 0 ? name : fmt::format("{}/persistent:{}", name, pers)).c_str(),
                    [m, M, scheme, shape, split, pers](benchmark::State& st) {
                      run_q8(st, m, M, scheme, shape, split, pers);
                    })
                    ->UseManualTime()
                    ->Unit(benchmark::kMicrosecond)
                    ->Iterations(10);
            }
}

}  // namespace

MOE_BENCH_MAIN_WITH_MODELS(register_points);
