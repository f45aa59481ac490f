// moe_align_block_size benchmark: (E, top_k) of the models of the "align" sweep of
// configs/model_configs.json at its token counts M, block 64 and 128.
//
// BM_align       default configuration; graph-replayed batches of 20 launches
//                (launch gaps hidden: the kernel time) - the figure against targets.
// BM_align_eager the same launches issued back to back without a graph, so the
//                launch gaps show (DeepSeek-V3 only).
// BM_align_path  each path's own default configuration (choose(s, lim, path)):
//                path 1 SingleBlock, 2 MultiBlock, 3 Fused, at the model shapes.
// BM_align_cfg   forced paths/sizes for tuning (path 1 single block: warps, stage
//                in shared memory (0/1); paths 2 multi block and 3 fused: slots per
//                block, rank warps).
// Inputs stay in L2 (the routing kernel has just written them); bytes = ids read
// once + every output element written once.
#include <map>
#include <tuple>

#include "bench_common.hpp"
#include "kernels/moe_align/moe_align.hpp"
#include "reference/moe_align/moe_align_ref.hpp"

namespace {

using moe::align::AlignLaunchConfig;
using moe::align::AlignPath;
using moe::align::AlignShape;

// Softmax top-k routing ids, generated once per (M, E, top_k).
const std::vector<int32_t>& routing_ids(const AlignShape& s) {
  static std::map<std::tuple<int64_t, int32_t, int32_t>, std::vector<int32_t>> cache;
  auto key = std::make_tuple(s.num_tokens, s.num_experts, s.top_k);
  auto it = cache.find(key);
  if (it == cache.end())
    it = cache.emplace(key, moe::ref::make_align_ids(s, moe::ref::AlignIds::Softmax, 0)).first;
  return it->second;
}

void run(benchmark::State& state, const AlignShape& s, AlignLaunchConfig cfg, bool graph) {
  const auto lim = moe::align::AlignDeviceLimits::current();
  const std::string why = cfg.invalid_reason(s, lim);
  if (!why.empty()) {
    state.SkipWithError(why.c_str());
    return;
  }
  const auto& ids = routing_ids(s);
  const int64_t cap = moe::align::align_capacity(s), blocks = moe::align::align_max_blocks(s);
  moe::gpu::DeviceBuffer<int32_t> d_ids(ids.size()), sorted(static_cast<size_t>(cap)),
      eids(static_cast<size_t>(blocks)), num(1);
  d_ids.upload(ids);
  moe::align::AlignWorkspace ws(cfg.workspace_bytes(s));
  const moe::align::AlignOutputs out{sorted.data(), eids.data(), num.data()};
  const double bytes = 4.0 * (static_cast<double>(s.num_slots()) + static_cast<double>(cap) +
                              static_cast<double>(blocks) + 1.0);
  moe::bench::run_gpu_benchmark(
      state, [&](hipStream_t st) { moe::align::moe_align_block_size(d_ids.data(), nullptr, s, out, ws, st, cfg); },
      {bytes, 0}, {.batch = 20, .graph = graph, .flush_l2 = false});
  // Correctness of what was timed (outside the timed region).
  const auto want = moe::ref::expand_to_capacity(moe::ref::moe_align_block_size(s, ids), s);
  const auto chk = moe::ref::compare_align(want, sorted.download(), eids.download(), num.download()[0]);
  if (!chk.passed) state.SkipWithError(("wrong result: " + chk.message).c_str());
  state.counters["M"] = static_cast<double>(s.num_tokens);
  state.counters["E"] = s.num_experts;
  state.counters["top_k"] = s.top_k;
  state.counters["block"] = s.block_size;
  state.counters["path"] = static_cast<int>(cfg.path);
  state.counters["grid"] = cfg.num_blocks;
  state.counters["rank_warps"] = cfg.rank_warps;
  state.counters["launches"] = cfg.path == AlignPath::MultiBlock ? 2 : 1;
  state.counters["stage"] = cfg.stage ? 1 : 0;
  state.counters["slots_per_block"] = static_cast<double>(cfg.slots_per_block);
  state.counters["num_post"] = want.num_tokens_post_padded;
}

AlignShape shape_of(const benchmark::State& state) {
  return AlignShape{state.range(0), static_cast<int32_t>(state.range(2)), static_cast<int32_t>(state.range(1)),
                    static_cast<int32_t>(state.range(3))};
}

void BM_align(benchmark::State& state) {
  const AlignShape s = shape_of(state);
  run(state, s, AlignLaunchConfig::choose(s, moe::align::AlignDeviceLimits::current()), true);
}

void BM_align_eager(benchmark::State& state) {
  const AlignShape s = shape_of(state);
  run(state, s, AlignLaunchConfig::choose(s, moe::align::AlignDeviceLimits::current()), false);
}

void BM_align_path(benchmark::State& state) {
  const AlignShape s = shape_of(state);
  run(state, s, AlignLaunchConfig::choose(s, moe::align::AlignDeviceLimits::current(),
                                          static_cast<AlignPath>(state.range(4))),
      true);
}

void BM_align_cfg(benchmark::State& state) {
  const AlignShape s = shape_of(state);
  const auto lim = moe::align::AlignDeviceLimits::current();
  const auto path = static_cast<AlignPath>(state.range(4));
  AlignLaunchConfig cfg = AlignLaunchConfig::choose(s, lim, path);
  if (path == AlignPath::SingleBlock) {
    cfg.rank_warps = static_cast<int>(state.range(5));
    cfg.stage = state.range(6) != 0;
  } else {  // MultiBlock and Fused
    cfg.slots_per_block = state.range(5);
    cfg.num_blocks = static_cast<int>((s.num_slots() + cfg.slots_per_block - 1) / cfg.slots_per_block);
    cfg.rank_warps = static_cast<int>(state.range(6));
  }
  run(state, s, cfg, true);
}

// (E, top_k) of each model of the "align" sweep of configs/model_configs.json, at
// its token counts, block 64 and 128.
void model_args(benchmark::internal::Benchmark* b, const std::vector<moe::SweepPoint>& points) {
  b->ArgNames({"M", "E", "k", "block"});
  for (int64_t bs : {64, 128})
    for (const auto& pt : points) b->Args({pt.M, pt.model.experts, pt.model.top_k, bs});
}

// A DeepSeek-V3-sized shape (E 256, top_k 8) at the sweep's token counts.
void eager_args(benchmark::internal::Benchmark* b, const std::vector<int64_t>& Ms) {
  b->ArgNames({"M", "E", "k", "block"});
  for (int64_t M : Ms) b->Args({M, 256, 8, 64});
}

// The sweep's points up to M 16384, each path.
void path_args(benchmark::internal::Benchmark* b, const std::vector<moe::SweepPoint>& points) {
  b->ArgNames({"M", "E", "k", "block", "path"});
  for (const auto& pt : points) {
    const int64_t M = pt.M, E = pt.model.experts, k = pt.model.top_k;
    if (M > 16384) continue;
    for (int64_t path : {1, 2, 3}) {
      if (path == 1 && M * k > 4096) continue;
      b->Args({M, E, k, 64, path});
    }
  }
}

// Path 1 (single block): rank warps and the shared-memory stage.
void cfg_args_single(benchmark::internal::Benchmark* b) {
  b->ArgNames({"M", "E", "k", "block", "path", "warps", "stage"});
  for (int64_t M : {64, 256, 1024})
    for (int64_t w : {8, 16, 32})
      for (int64_t stage : {0, 1}) b->Args({M, 256, 8, 64, 1, w, stage});
}

// Paths 2 (multi block) and 3 (fused): slots per block and rank warps.
void cfg_args_multi(benchmark::internal::Benchmark* b) {
  b->ArgNames({"M", "E", "k", "block", "path", "slots", "rank_warps"});
  for (int64_t M : {256, 1024, 4096, 16384})
    for (int64_t spb : {256, 512, 1024, 2048})
      for (int64_t w : {8, 16}) b->Args({M, 256, 8, 64, 2, spb, w});
  for (int64_t M : {64, 256, 1024, 4096})
    for (int64_t spb : {128, 512, 1024, 2048})
      for (int64_t w : {4, 8, 16}) b->Args({M, 256, 8, 64, 3, spb, w});
}

void register_points(const moe::ModelTable& table) {
  const std::vector<moe::SweepPoint> points = table.points("align");
  auto* b = benchmark::RegisterBenchmark("BM_align", BM_align);
  model_args(b, points);
  b->UseManualTime()->Iterations(100)->Unit(benchmark::kMicrosecond);
  b = benchmark::RegisterBenchmark("BM_align_eager", BM_align_eager);
  eager_args(b, table.sweep_tokens("align"));
  b->UseManualTime()->Iterations(100)->Unit(benchmark::kMicrosecond);
  b = benchmark::RegisterBenchmark("BM_align_path", BM_align_path);
  path_args(b, points);
  b->UseManualTime()->Iterations(100)->Unit(benchmark::kMicrosecond);
  b = benchmark::RegisterBenchmark("BM_align_cfg", BM_align_cfg);
  cfg_args_single(b);
  b->UseManualTime()->Iterations(50)->Unit(benchmark::kMicrosecond);
  b = benchmark::RegisterBenchmark("BM_align_cfg", BM_align_cfg);
  cfg_args_multi(b);
  b->UseManualTime()->Iterations(50)->Unit(benchmark::kMicrosecond);
}

}  // namespace

MOE_BENCH_MAIN_WITH_MODELS(register_points);
