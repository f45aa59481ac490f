// Benchmarks of the fused MoE layer: the full layer (GPU align +
// stage 1 + stage 2 + reduce) and each part, graph-replayed (5 launches per
// replay, like ../shared/anchors/torch_moe_layer.py), for the models and token
// counts M of the "layer" sweep of configs/model_configs.json.
// Inputs: bf16, weights randn/sqrt(fan_in) (ValueDist::FanIn), softmax top-k
// routing (MOE_BENCH_ROUTING for another, bench_common.hpp), seed 0.
//
// Names: BM_fused_moe_{layer,align,stage1,stage2,reduce}/<model>/M:<M>
//        BM_fused_moe_sweep/<model>/M:<M>/tile:<name>  (every compiled tile; names: kernels/fused_moe/tile.hpp)
//        BM_fused_moe_sweep/<model>/M:<M>/tile:<name>/persistent:1  (wgmma_ws tiles on a persistent grid)
// Counters (besides bench_common's us, GBps, TFLOPs, pct_read_bw, pct_bf16_flops):
//   experts_hit, floor_bw_us (weight bytes of the hit experts + activations / read
//   bandwidth), floor_flop_us (FLOPs / dense bf16 rate), floor_us (the larger),
//   pct_floor (floor_us / us * 100), block_m, split_k, persistent.
// The label holds the tile config.
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "kernels/common/common_kernels.hpp"
#include "kernels/fused_moe/fused_moe.hpp"
#include "kernels/moe_align/moe_align.hpp"
#include "moe/inputs.hpp"
#include "moe/model_config.hpp"
#include "reference/moe_align/moe_align_ref.hpp"

namespace {

using namespace moe;
using namespace moe::fused_moe;

using Model = moe::ModelConfig;

// The weights of one model stay on the device while its benchmarks run.
struct Weights {
  std::string model;  // name of the model these weights are of
  gpu::DeviceBuffer<uint16_t> w1, w2;
};
Weights& weights_for(const Model& m) {
  static Weights w;
  if (w.model != m.name) {
    w.w1.reset();
    w.w2.reset();
    const InputSpec s = layer_input_spec(m, 1);
    w.w1 = gpu::DeviceBuffer<uint16_t>(static_cast<size_t>(s.w1_elems()));
    w.w2 = gpu::DeviceBuffer<uint16_t>(static_cast<size_t>(s.w2_elems()));
    kernels::fill_normal(w.w1.data(), s.dtype, w.w1.size(), s.seed, rng::Stream::W1, 0, s.scale(rng::Stream::W1), nullptr);
    kernels::fill_normal(w.w2.data(), s.dtype, w.w2.size(), s.seed, rng::Stream::W2, 0, s.scale(rng::Stream::W2), nullptr);
    MOE_GPU_CHECK(hipDeviceSynchronize());
    w.model = m.name;
  }
  return w;
}

// Everything of one (model, M, config) point.
struct Point {
  Problem p;
  LayerConfig cfg;
  int64_t experts_hit = 0;
  gpu::DeviceBuffer<uint16_t> hidden, inter, out;
  gpu::DeviceBuffer<float> topk_weights, partial;
  gpu::DeviceBuffer<int32_t> topk_ids, sorted, expert_ids, num_post;
  gpu::DeviceBuffer<int32_t> counters = gpu::DeviceBuffer<int32_t>::zeros(kTileCounters);
  align::AlignShape ashape;
  align::AlignLaunchConfig acfg;
  align::AlignWorkspace aws;
  Tensors t;
  AlignedRouting r;

  // persistent: -1 the chooser's (or the shape's default), else 0/1 for both stages.
  Point(const Model& m, int64_t M, int shape, int persistent = -1) {
    const InputSpec s = bench::layer_spec(m, M);
    Weights& w = weights_for(m);
    p.tokens = M;
    p.model_dim = m.model_dim;
    p.inter_dim = m.inter_dim;
    p.experts = m.experts;
    p.top_k = m.top_k;
    // Default points: the tuned table ($MOE_TUNED_CONFIG, see bench_common.hpp), else the heuristic.
    if (shape < 0) {
      const ChosenConfig ch = select_config(p, device_limits(), &bench::tuned_table_from_env());
      cfg = ch.cfg;
      source = ch.source;
    } else {
      cfg = config_for_shape(p, device_limits(), shape);
    }
    if (persistent >= 0) cfg.stage1.persistent = cfg.stage2.persistent = persistent == 1;
    const Routing routing = make_routing(s);
    experts_hit = static_cast<int64_t>(std::set<int32_t>(routing.topk_ids.begin(), routing.topk_ids.end()).size());
    hidden = gpu::DeviceBuffer<uint16_t>(static_cast<size_t>(s.hidden_elems()));
    kernels::fill_normal(hidden.data(), s.dtype, hidden.size(), s.seed, rng::Stream::Hidden, 0, 1.0f, nullptr);
    topk_weights = gpu::DeviceBuffer<float>(routing.topk_weights.size());
    topk_ids = gpu::DeviceBuffer<int32_t>(routing.topk_ids.size());
    topk_weights.upload(routing.topk_weights);
    topk_ids.upload(routing.topk_ids);
    const auto wsb = workspace_bytes(p, cfg);
    inter = gpu::DeviceBuffer<uint16_t>(static_cast<size_t>(wsb.intermediate / 2));
    partial = gpu::DeviceBuffer<float>(static_cast<size_t>(wsb.partial / 4));
    out = gpu::DeviceBuffer<uint16_t>(static_cast<size_t>(M * m.model_dim));
    ashape = align::AlignShape{M, m.top_k, m.experts, cfg.block_size()};
    acfg = align::AlignLaunchConfig::choose(ashape, align::AlignDeviceLimits::current());
    aws.reserve(acfg.workspace_bytes(ashape));
    sorted = gpu::DeviceBuffer<int32_t>(static_cast<size_t>(align::align_capacity(ashape)));
    expert_ids = gpu::DeviceBuffer<int32_t>(static_cast<size_t>(std::max<int64_t>(1, align::align_max_blocks(ashape))));
    num_post = gpu::DeviceBuffer<int32_t>(1);
    t = Tensors{hidden.data(), w.w1.data(), w.w2.data(), topk_weights.data(), topk_ids.data(), out.data()};
    r = AlignedRouting{sorted.data(), expert_ids.data(), num_post.data(), static_cast<int64_t>(sorted.size()),
                       cfg.block_size()};
    align_now(nullptr);
    MOE_GPU_CHECK(hipDeviceSynchronize());
    // Timings are meaningless on wrong routing: check the align kernel once.
    const auto want = ref::expand_to_capacity(ref::moe_align_block_size(ashape, routing.topk_ids), ashape);
    const auto chk = ref::compare_align(want, sorted.download(), expert_ids.download(), num_post.download()[0]);
    align_ok = chk.passed;
    align_msg = chk.message;
  }
  std::string source = "sweep";  // config source: tuned:exact | tuned:nearest | heuristic | sweep
  bool align_ok = false;
  std::string align_msg;
  void align_now(hipStream_t s) {
    align::moe_align_block_size(topk_ids.data(), nullptr, ashape,
                                align::AlignOutputs{sorted.data(), expert_ids.data(), num_post.data()}, aws, s, acfg);
  }
  void layer(hipStream_t s) {
    align_now(s);
    moe::fused_moe::fused_moe(p, t, r, Workspace{inter.data(), partial.data(), counters.data()}, cfg, s);
  }
  double weight_bytes(bool w1, bool w2) const {
    const double per = static_cast<double>(p.inter_dim) * static_cast<double>(p.model_dim) * 2.0;
    return static_cast<double>(experts_hit) * ((w1 ? 2 * per : 0) + (w2 ? per : 0));
  }
};

enum class Part { Layer, Align, Stage1, Stage2, Reduce };

void set_floor_counters(benchmark::State& state, const Point& pt, const bench::Work& w) {
  const auto& ctx = bench::device_context();
  const double us = state.counters["us"];
  const double read = ctx.ceilings.read_gbps > 0 ? ctx.ceilings.read_gbps : 3000.0;
  const double rate = ctx.ceilings.bf16_tflops && *ctx.ceilings.bf16_tflops > 0 ? *ctx.ceilings.bf16_tflops : 790.0;
  const double fbw = w.bytes / (read * 1e9) * 1e6;
  const double ffl = w.flops / (rate * 1e12) * 1e6;
  const double floor = std::max(fbw, ffl);
  state.counters["floor_bw_us"] = fbw;
  state.counters["floor_flop_us"] = ffl;
  state.counters["floor_us"] = floor;
  state.counters["pct_floor"] = us > 0 ? 100.0 * floor / us : 0.0;
  state.counters["M"] = static_cast<double>(pt.p.tokens);
  state.counters["experts_hit"] = static_cast<double>(pt.experts_hit);
  state.counters["block_m"] = pt.cfg.block_size();
  state.counters["split_k"] = pt.cfg.stage2.split_k;
  state.counters["persistent"] = pt.cfg.stage1.persistent ? 1 : 0;
  state.SetLabel(pt.cfg.to_string() + " source=" + pt.source);
}

void run_point(benchmark::State& state, const Model& m, int64_t M, Part part, int shape, int persistent = -1) {
  if (shape >= 0 && kTileShapes[shape].wgmma && !device_limits().wgmma) {
    state.SkipWithError(("wgmma tile " + kTileShapes[shape].name() + ": not an sm_90a build").c_str());
    return;
  }
  Point pt(m, M, shape, persistent);
  if (!pt.align_ok) {
    state.SkipWithError(("moe_align output differs from its reference: " + pt.align_msg).c_str());
    return;
  }
  const double act_bytes = static_cast<double>(M) * static_cast<double>(m.model_dim) * 2.0;  // hidden or out
  const double inter_bytes = static_cast<double>(pt.p.slots()) * static_cast<double>(m.inter_dim) * 2.0;
  const double partial_bytes = static_cast<double>(pt.p.slots()) * static_cast<double>(m.model_dim) * 4.0 * pt.cfg.stage2.split_k;
  bench::Work w;
  std::function<void(hipStream_t)> launch;
  switch (part) {
    case Part::Layer:
      // Minimum traffic of the layer: weights of the hit experts, hidden in, out.
      w = {pt.weight_bytes(true, true) + 2 * act_bytes, pt.p.flops()};
      launch = [&](hipStream_t s) { pt.layer(s); };
      break;
    case Part::Align:
      w = {static_cast<double>(pt.p.slots()) * 4.0 + static_cast<double>(pt.sorted.size()) * 4.0, 0};
      launch = [&](hipStream_t s) { pt.align_now(s); };
      break;
    case Part::Stage1:
      w = {pt.weight_bytes(true, false) + act_bytes + inter_bytes, pt.p.flops() * 2.0 / 3.0};
      launch = [&](hipStream_t s) {
        launch_stage1(pt.p, pt.t, pt.r, pt.inter.data(), pt.cfg.stage1, s, pt.counters.data());
      };
      break;
    case Part::Stage2:
      w = {pt.weight_bytes(false, true) + inter_bytes + partial_bytes, pt.p.flops() / 3.0};
      launch = [&](hipStream_t s) {
        launch_stage2(pt.p, pt.t, pt.r, pt.inter.data(), pt.partial.data(), pt.cfg.stage2, s, pt.counters.data() + 1);
      };
      break;
    case Part::Reduce:
      w = {partial_bytes + act_bytes, 0};
      launch = [&](hipStream_t s) { launch_reduce(pt.p, pt.t, pt.partial.data(), pt.cfg.stage2.split_k, s); };
      break;
  }
  bench::run_gpu_benchmark(state, launch, w, {.batch = 5, .graph = true, .flush_l2 = false});
  set_floor_counters(state, pt, w);
}

// The "layer" sweep of configs/model_configs.json.
void register_points(const ModelTable& table) {
  const char* parts[] = {"layer", "align", "stage1", "stage2", "reduce"};
  const std::vector<SweepPoint> points = table.points("layer");
  for (const SweepPoint& pt : points)
    for (int pi = 0; pi < 5; ++pi) {
      const Part part = static_cast<Part>(pi);
      benchmark::RegisterBenchmark(
          fmt::format("BM_fused_moe_{}/{}/M:{}", parts[pi], pt.model.name, pt.M).c_str(),
          [m = pt.model, M = pt.M, part](benchmark::State& st) { run_point(st, m, M, part, -1); })
          ->UseManualTime()
          ->Unit(benchmark::kMicrosecond)
          ->Iterations(20);
    }
  // Config sweep of the full layer (feeds the heuristic and the tuning table).
  // The wgmma_ws tiles also on a persistent grid (the producer fills the ring for the
  // next tile during the epilogue; a cluster's blocks walk their tile pairs).
  for (const SweepPoint& pt : points)
    for (int s = 0; s < kNumTileShapes; ++s)
      for (int pers : kTileShapes[s].ws ? std::vector<int>{-1, 1} : std::vector<int>{-1}) {
        const std::string name = fmt::format("BM_fused_moe_sweep/{}/M:{}/tile:{}", pt.model.name, pt.M, kTileShapes[s].name());
        benchmark::RegisterBenchmark((pers < 0 ? name : name + "/persistent:1").c_str(),
                                     [m = pt.model, M = pt.M, s, pers](benchmark::State& st) {
                                       run_point(st, m, M, Part::Layer, s, pers);
                                     })
            ->UseManualTime()
            ->Unit(benchmark::kMicrosecond)
            ->Iterations(10);
      }
}

}  // namespace

MOE_BENCH_MAIN_WITH_MODELS(register_points);
