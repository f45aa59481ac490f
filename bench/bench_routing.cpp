// Routing benchmarks: the routing step of each model of the "routing" sweep of
// configs/model_configs.json over its token counts M, by the model's routing type
// (its experts, top_k, groups and scale from the same file):
//   softmax         softmax top-k, renormalize, fp32 logits (mixtral_8x7b, qwen3_235b)
//   grouped_topk    grouped top-k, sigmoid + bias, fp32 logits (deepseek_v3)
//   sigmoid_top1    sigmoid top-1 fused with the router GEMM, x (M, model_dim) bf16,
//                   w (model_dim, E) bf16, shared expert column (llama4_scout)
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
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "bench_common.hpp"
#include "kernels/common/common_kernels.hpp"
#include "kernels/routing/routing.hpp"

namespace {

using namespace moe;
namespace rt = moe::routing;

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

void run_grouped(benchmark::State& state, const ModelConfig& m, int block_threads, Mode mode) {
  const int64_t M = state.range(0);
  const int E = m.experts, k = m.top_k;
  const rt::GroupedTopkParams p{.tokens = M, .experts = E, .n_group = m.routing.n_group,
                                .topk_group = m.routing.topk_group, .top_k = k,
                                .scoring = m.routing.scoring == "sigmoid" ? rt::Scoring::Sigmoid : rt::Scoring::Softmax,
                                .renormalize = m.routing.renormalize,
                                .routed_scaling_factor = static_cast<float>(m.routing.routed_scaling_factor),
                                .dtype = DType::F32};
  const double in_bytes = static_cast<double>(M) * E * 4;
  const int copies = mode.warm ? 1 : copies_for(in_bytes);
  Rotating in(in_bytes, copies, DType::F32, static_cast<size_t>(M * E), 43, rng::Stream::Logits, 1.0f);
  gpu::DeviceBuffer<float> bias(static_cast<size_t>(E));
  kernels::fill_normal(bias.data(), DType::F32, static_cast<size_t>(E), 44, rng::Stream::Bias, 0, 0.1f, nullptr);
  gpu::DeviceBuffer<float> w(static_cast<size_t>(M * k));
  gpu::DeviceBuffer<int32_t> ids(static_cast<size_t>(M * k));
  int i = 0;
  bench::run_gpu_benchmark(
      state,
      [&](hipStream_t s) {
        rt::grouped_topk(in.get(i++), bias.data(), w.data(), ids.data(), p, {.block_threads = block_threads}, s);
      },
      {in_bytes + static_cast<double>(M) * k * 8, 0}, timing(copies, mode));
  state.counters["block_threads"] = block_threads;
  state.counters["E"] = E;
  state.counters["k"] = k;
  state.counters["copies"] = copies;
  add_targets(state, M, read_floor_us(in_bytes));
}

void run_top1(benchmark::State& state, const ModelConfig& m, int k_splits, Mode mode) {
  const int64_t M = state.range(0);
  const int64_t K = m.model_dim;
  const int E = m.experts;
  const rt::SigmoidTop1Params p{
      .tokens = M, .hidden = K, .experts = E, .dtype = DType::BF16, .shared_expert = m.shared.count > 0};
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

// Each iteration is one timed graph replay of `batch` launches; 50 replays per point.
void common(benchmark::internal::Benchmark* b) {
  b->UseManualTime()->Unit(benchmark::kMicrosecond)->Iterations(50);
}
void softmax_cfgs(benchmark::internal::Benchmark* b, std::vector<int64_t> lanes) {
  b->ArgNames({"M", "lanes", "threads"});
  for (int64_t m : {16384, 65536})
    for (int64_t l : lanes)
      for (int64_t t : {128, 256, 512}) b->Args({m, l, t});
  common(b);
}

// BM_<model>/M:<M> at every M of the "routing" sweep, BM_<model>_warm at M <= 256.
void register_model(const ModelConfig& m, const std::vector<int64_t>& Ms, const std::function<void(benchmark::State&, Mode)>& run) {
  auto* b = benchmark::RegisterBenchmark(("BM_" + m.name).c_str(), [run](benchmark::State& st) { run(st, {}); });
  b->ArgName("M");
  for (int64_t M : Ms) b->Arg(M);
  common(b);
  b = benchmark::RegisterBenchmark(("BM_" + m.name + "_warm").c_str(),
                                   [run](benchmark::State& st) { run(st, {.warm = true}); });
  b->ArgName("M");
  for (int64_t M : Ms)
    if (M <= 256) b->Arg(M);
  common(b);
}

void register_points(const ModelTable& table) {
  const std::vector<int64_t> Ms = table.sweep_tokens("routing");
  for (const ModelConfig& m : table.sweep_models("routing")) {
    switch (m.routing.type) {
      case RoutingType::Softmax:
        register_model(m, Ms, [m](benchmark::State& st, Mode mode) {
          run_softmax(st, m.experts, m.top_k, DType::F32, {}, mode);
        });
        break;
      case RoutingType::GroupedTopk:
        register_model(m, Ms, [m](benchmark::State& st, Mode mode) { run_grouped(st, m, 256, mode); });
        break;
      case RoutingType::SigmoidTop1:
        register_model(m, Ms, [m](benchmark::State& st, Mode mode) { run_top1(st, m, 0, mode); });
        break;
    }
  }
  // Launch-config and precision experiments on particular models (their shapes from the table).
  const ModelConfig& mixtral = table.model("mixtral_8x7b");
  const ModelConfig& qwen = table.model("qwen3_235b");
  const ModelConfig& deepseek = table.model("deepseek_v3");
  const ModelConfig& llama4 = table.model("llama4_scout");
  auto* b = benchmark::RegisterBenchmark("BM_qwen3_235b_bf16", [q = qwen](benchmark::State& st) {
    run_softmax(st, q.experts, q.top_k, DType::BF16);
  });
  b->ArgName("M");
  for (int64_t M : Ms) b->Arg(M);
  common(b);
  // range(1) lanes per token, range(2) block threads
  for (const auto& [m, lanes] : {std::pair{mixtral, std::vector<int64_t>{1, 2}}, std::pair{qwen, std::vector<int64_t>{16, 32}}})
    softmax_cfgs(benchmark::RegisterBenchmark(("BM_" + m.name + "_cfg").c_str(),
                                              [m = m](benchmark::State& st) {
                                                run_softmax(st, m.experts, m.top_k, DType::F32,
                                                            {.lanes_per_row = static_cast<int>(st.range(1)),
                                                             .block_threads = static_cast<int>(st.range(2))});
                                              }),
                 lanes);
  b = benchmark::RegisterBenchmark("BM_deepseek_v3_cfg", [m = deepseek](benchmark::State& st) {
    run_grouped(st, m, static_cast<int>(st.range(1)), {});
  });
  b->ArgNames({"M", "threads"});
  for (int64_t M : {16384, 65536})
    for (int64_t t : {64, 128, 256, 512}) b->Args({M, t});
  common(b);
  b = benchmark::RegisterBenchmark("BM_llama4_scout_splits", [m = llama4](benchmark::State& st) {
    run_top1(st, m, static_cast<int>(st.range(1)), {});
  });
  b->ArgNames({"M", "splits"});
  for (int64_t M : {1, 16, 64, 256, 1024})
    for (int64_t sp : {1, 2, 4, 8, 16, 40}) b->Args({M, sp});
  common(b);
}

}  // namespace

MOE_BENCH_MAIN_WITH_MODELS(register_points);
