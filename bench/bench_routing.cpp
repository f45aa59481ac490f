// Routing benchmarks: the routing step of four models over M tokens.
//   deepseek_v3     grouped top-k, E=256, 8 groups keep 4, k=8, sigmoid + bias, x2.5, fp32 logits
//   mixtral_8x7b    softmax top-k, E=8, k=2, renormalize, fp32 logits
//   qwen3_235b      softmax top-k, E=128, k=8, renormalize, fp32 logits
//   llama4_scout    sigmoid top-1 fused with the router GEMM, x (M, 5120) bf16,
//                   w (5120, 16) bf16, shared expert column
// Each timed replay is a CUDA graph of `batch` launches that rotate over
// enough input copies to cover 2x L2 (so large-M points read from DRAM), after
// an L2 flush (bench/bench_common.hpp). Counters beyond bench_common's:
//   floor_us    logits (or x + w) bytes / measured read bandwidth; for the
//               fused GEMM the larger of that and FLOPs / measured bf16 rate
//   x_floor     us / floor_us
//   target_us   4 for M <= 256, 1.5 * floor_us for M >= 16384 (0: no target)
//   target_met  1 / 0 (-1: no target at this M)
// Variants: *_warm (M <= 256): one input, no L2 flush, batch 20 -- the logits
// are L2-resident, as right after the router GEMM. *_cfg: launch-config sweeps
// at large M (softmax lanes per token x block size; grouped block size);
// llama4_scout_splits: K-split sweep at small M.
#include <algorithm>
#include <cmath>
#include <vector>

#include "bench_common.hpp"
#include "kernels/common/common_kernels.hpp"
#include "kernels/routing/routing.hpp"

namespace {

using namespace moe;
namespace rt = moe::routing;

const std::vector<int64_t> kTokens = {1, 16, 64, 256, 1024, 4096, 16384, 65536};

// Enough copies of an input of `bytes` to cover 2x L2 (at least 1, at most 256).
int copies_for(double bytes) {
  const double l2 = static_cast<double>(bench::device_context().info.l2_bytes);
  const int n = static_cast<int>(std::ceil(2.0 * std::max(l2, 1.0) / std::max(bytes, 1.0)));
  return std::clamp(n, 1, 256);
}

struct Rotating {
  std::vector<gpu::DeviceBuffer<unsigned char>> bufs;
  Rotating(double bytes_each, int copies, DType dt, size_t elems, uint64_t seed, rng::Stream st, float scale) {
    for (int i = 0; i < copies; ++i) {
      bufs.emplace_back(static_cast<size_t>(bytes_each));
      kernels::fill_normal(bufs.back().data(), dt, elems, seed + static_cast<uint64_t>(i), st, 0, scale, nullptr);
    }
    MOE_GPU_CHECK(hipDeviceSynchronize());
  }
  void* get(int i) { return bufs[static_cast<size_t>(i) % bufs.size()].data(); }
};

void add_targets(benchmark::State& state, int64_t M, double floor_us) {
  if (state.counters.find("us") == state.counters.end()) return;
  const double us = state.counters["us"];
  state.counters["M"] = static_cast<double>(M);
  state.counters["floor_us"] = floor_us;
  state.counters["x_floor"] = floor_us > 0 ? us / floor_us : 0.0;
  double target = 0;
  if (M <= 256) target = 4.0;
  if (M >= 16384) target = 1.5 * floor_us;
  state.counters["target_us"] = target;
  state.counters["target_met"] = target > 0 ? (us <= target ? 1.0 : 0.0) : -1.0;
}

double read_floor_us(double bytes) {
  const double bw = bench::device_context().ceilings.read_gbps;
  return bw > 0 ? bytes / (bw * 1e9) * 1e6 : 0.0;
}

struct Mode {
  bool warm = false;  // one input copy, no L2 flush
};

bench::TimingOptions timing(int copies, Mode mode) {
  if (mode.warm) return {.batch = 20, .graph = true, .flush_l2 = false};
  return {.batch = std::max(20, copies), .graph = true, .flush_l2 = true};
}

void run_softmax(benchmark::State& state, int E, int k, DType dt, rt::SoftmaxTopkConfig cfg_in = {},
                 Mode mode = {}) {
  const int64_t M = state.range(0);
  const rt::SoftmaxTopkParams p{.tokens = M, .experts = E, .top_k = k, .dtype = dt, .renormalize = true};
  const double in_bytes = static_cast<double>(M) * E * static_cast<double>(dtype_size(dt));
  const int copies = mode.warm ? 1 : copies_for(in_bytes);
  Rotating in(in_bytes, copies, dt, static_cast<size_t>(M * E), 42, rng::Stream::Logits, 1.0f);
  gpu::DeviceBuffer<float> w(static_cast<size_t>(M * k));
  gpu::DeviceBuffer<int32_t> ids(static_cast<size_t>(M * k));
  const rt::SoftmaxTopkConfig cfg = cfg_in.resolved(p);
  int i = 0;
  const double out_bytes = static_cast<double>(M) * k * 8.0;
  bench::run_gpu_benchmark(
      state, [&](hipStream_t s) { rt::softmax_topk(in.get(i++), w.data(), ids.data(), p, cfg, s); },
      {in_bytes + out_bytes, 0}, timing(copies, mode));
  state.counters["E"] = E;
  state.counters["k"] = k;
  state.counters["copies"] = copies;
  state.counters["lanes_per_row"] = cfg.lanes_per_row;
  state.counters["block_threads"] = cfg.block_threads;
  add_targets(state, M, read_floor_us(in_bytes));
}

void BM_mixtral_8x7b(benchmark::State& state) { run_softmax(state, 8, 2, DType::F32); }
void BM_qwen3_235b(benchmark::State& state) { run_softmax(state, 128, 8, DType::F32); }
void BM_qwen3_235b_bf16(benchmark::State& state) { run_softmax(state, 128, 8, DType::BF16); }
void BM_mixtral_8x7b_warm(benchmark::State& state) { run_softmax(state, 8, 2, DType::F32, {}, {.warm = true}); }
void BM_qwen3_235b_warm(benchmark::State& state) { run_softmax(state, 128, 8, DType::F32, {}, {.warm = true}); }
// range(1) lanes per token, range(2) block threads
void BM_mixtral_8x7b_cfg(benchmark::State& state) {
  run_softmax(state, 8, 2, DType::F32,
              {.lanes_per_row = static_cast<int>(state.range(1)), .block_threads = static_cast<int>(state.range(2))});
}
void BM_qwen3_235b_cfg(benchmark::State& state) {
  run_softmax(state, 128, 8, DType::F32,
              {.lanes_per_row = static_cast<int>(state.range(1)), .block_threads = static_cast<int>(state.range(2))});
}

void run_deepseek(benchmark::State& state, int block_threads, Mode mode) {
  const int64_t M = state.range(0);
  const rt::GroupedTopkParams p{.tokens = M, .experts = 256, .n_group = 8, .topk_group = 4, .top_k = 8,
                                .scoring = rt::Scoring::Sigmoid, .renormalize = true,
                                .routed_scaling_factor = 2.5f, .dtype = DType::F32};
  const double in_bytes = static_cast<double>(M) * 256 * 4;
  const int copies = mode.warm ? 1 : copies_for(in_bytes);
  Rotating in(in_bytes, copies, DType::F32, static_cast<size_t>(M * 256), 43, rng::Stream::Logits, 1.0f);
  gpu::DeviceBuffer<float> bias(256);
  kernels::fill_normal(bias.data(), DType::F32, 256, 44, rng::Stream::Bias, 0, 0.1f, nullptr);
  gpu::DeviceBuffer<float> w(static_cast<size_t>(M * 8));
  gpu::DeviceBuffer<int32_t> ids(static_cast<size_t>(M * 8));
  int i = 0;
  bench::run_gpu_benchmark(
      state,
      [&](hipStream_t s) {
        rt::grouped_topk(in.get(i++), bias.data(), w.data(), ids.data(), p, {.block_threads = block_threads}, s);
      },
      {in_bytes + static_cast<double>(M) * 8 * 8, 0}, timing(copies, mode));
  state.counters["block_threads"] = block_threads;
  state.counters["E"] = 256;
  state.counters["k"] = 8;
  state.counters["copies"] = copies;
  add_targets(state, M, read_floor_us(in_bytes));
}

void BM_deepseek_v3(benchmark::State& state) { run_deepseek(state, 256, {}); }
void BM_deepseek_v3_warm(benchmark::State& state) { run_deepseek(state, 256, {.warm = true}); }
void BM_deepseek_v3_cfg(benchmark::State& state) { run_deepseek(state, static_cast<int>(state.range(1)), {}); }

void run_llama4(benchmark::State& state, int k_splits, Mode mode) {
  const int64_t M = state.range(0);
  constexpr int64_t K = 5120;
  constexpr int E = 16;
  const rt::SigmoidTop1Params p{.tokens = M, .hidden = K, .experts = E, .dtype = DType::BF16, .shared_expert = true};
  const double x_bytes = static_cast<double>(M) * K * 2, w_bytes = static_cast<double>(K) * E * 2;
  const int copies = mode.warm ? 1 : copies_for(x_bytes + w_bytes);
  Rotating xs(x_bytes, copies, DType::BF16, static_cast<size_t>(M * K), 45, rng::Stream::Hidden, 1.0f);
  Rotating ws(w_bytes, copies, DType::BF16, static_cast<size_t>(K * E), 46, rng::Stream::RouterWeight,
              static_cast<float>(1.0 / std::sqrt(static_cast<double>(K))));
  gpu::DeviceBuffer<float> ow(static_cast<size_t>(M * 2));
  gpu::DeviceBuffer<int32_t> oid(static_cast<size_t>(M * 2));
  const rt::SigmoidTop1Config cfg{.k_splits = k_splits};
  const rt::SigmoidTop1Plan pl = rt::sigmoid_top1_plan(p, cfg);
  gpu::DeviceBuffer<unsigned char> work(pl.workspace_bytes > 0 ? pl.workspace_bytes : 16);
  rt::sigmoid_top1_workspace_init(work.data(), pl.workspace_bytes, nullptr);
  int i = 0;
  const double flops = 2.0 * static_cast<double>(M) * K * E;
  bench::run_gpu_benchmark(
      state,
      [&](hipStream_t s) {
        const int j = i++;
        rt::sigmoid_top1(xs.get(j), ws.get(j), ow.data(), oid.data(), pl.workspace_bytes ? work.data() : nullptr,
                         pl.workspace_bytes, p, cfg, s);
      },
      {x_bytes + w_bytes + static_cast<double>(M) * 16, flops}, timing(copies, mode));
  const auto& ctx = bench::device_context();
  double floor_us = read_floor_us(x_bytes + w_bytes);
  if (ctx.ceilings.bf16_tflops && *ctx.ceilings.bf16_tflops > 0)
    floor_us = std::max(floor_us, flops / (*ctx.ceilings.bf16_tflops * 1e12) * 1e6);
  state.counters["E"] = E;
  state.counters["K"] = static_cast<double>(K);
  state.counters["splits"] = pl.splits;
  state.counters["tensor_cores"] = pl.impl == rt::Top1Impl::TensorCore ? 1 : 0;
  state.counters["copies"] = copies;
  add_targets(state, M, floor_us);
}

void BM_llama4_scout(benchmark::State& state) { run_llama4(state, 0, {}); }
void BM_llama4_scout_warm(benchmark::State& state) { run_llama4(state, 0, {.warm = true}); }
void BM_llama4_scout_splits(benchmark::State& state) { run_llama4(state, static_cast<int>(state.range(1)), {}); }

// Each iteration is one timed graph replay of `batch` launches; 50 replays per point.
void common(benchmark::internal::Benchmark* b) {
  b->UseManualTime()->Unit(benchmark::kMicrosecond)->Iterations(50);
}
void all_m(benchmark::internal::Benchmark* b) {
  b->ArgName("M");
  for (int64_t m : kTokens) b->Arg(m);
  common(b);
}
void small_m(benchmark::internal::Benchmark* b) {
  b->ArgName("M");
  for (int64_t m : {1, 16, 64, 256}) b->Arg(m);
  common(b);
}
void softmax_cfgs(benchmark::internal::Benchmark* b, std::vector<int64_t> lanes) {
  b->ArgNames({"M", "lanes", "threads"});
  for (int64_t m : {16384, 65536})
    for (int64_t l : lanes)
      for (int64_t t : {128, 256, 512}) b->Args({m, l, t});
  common(b);
}

BENCHMARK(BM_deepseek_v3)->Apply(all_m);
BENCHMARK(BM_mixtral_8x7b)->Apply(all_m);
BENCHMARK(BM_qwen3_235b)->Apply(all_m);
BENCHMARK(BM_qwen3_235b_bf16)->Apply(all_m);
BENCHMARK(BM_llama4_scout)->Apply(all_m);
BENCHMARK(BM_deepseek_v3_warm)->Apply(small_m);
BENCHMARK(BM_mixtral_8x7b_warm)->Apply(small_m);
BENCHMARK(BM_qwen3_235b_warm)->Apply(small_m);
BENCHMARK(BM_llama4_scout_warm)->Apply(small_m);
BENCHMARK(BM_mixtral_8x7b_cfg)->Apply([](benchmark::internal::Benchmark* b) { softmax_cfgs(b, {1, 2}); });
BENCHMARK(BM_qwen3_235b_cfg)->Apply([](benchmark::internal::Benchmark* b) { softmax_cfgs(b, {16, 32}); });
BENCHMARK(BM_deepseek_v3_cfg)->Apply([](benchmark::internal::Benchmark* b) {
  b->ArgNames({"M", "threads"});
  for (int64_t m : {16384, 65536})
    for (int64_t t : {64, 128, 256, 512}) b->Args({m, t});
  common(b);
});
BENCHMARK(BM_llama4_scout_splits)->Apply([](benchmark::internal::Benchmark* b) {
  b->ArgNames({"M", "splits"});
  for (int64_t m : {1, 16, 64, 256, 1024})
    for (int64_t sp : {1, 2, 4, 8, 16, 40}) b->Args({m, sp});
  common(b);
});

}  // namespace

MOE_BENCH_MAIN();
