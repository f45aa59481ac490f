// Quantizer benchmarks: bf16 activations (M, model_dim) of the models and token
// counts of the "quant" sweep of configs/model_configs.json, for the schemes the
// quantized MoE uses: fp8 per-tensor (two passes), fp8 per-token, fp8 per-token-group
// (128, DeepSeek-V3), int8 per-token.
//
// bytes = the minimum a quantizer must move: read x once (2 B/elem), write codes
// (1 B/elem) and scales (4 B each) — so GBps / pct_read_bw state efficiency against
// one pass over the data (the per-tensor scheme reads x twice by construction).
// Inputs and outputs rotate over enough copies to exceed 2x L2 (at most 16), so
// large-M points stream from HBM; small-M points are latency-bound either way.
// Timing: bench_common.hpp (CUDA-graph replay of `batch` launches, GPU events).
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "kernels/common/common_kernels.hpp"
#include "kernels/quant/quant.hpp"

namespace {

using namespace moe;
using namespace moe::quant;

struct Scheme {
  const char* name;
  QuantProblem (*make)(int64_t M, int64_t K);
};

const Scheme kSchemes[] = {
    {"fp8_per_tensor", [](int64_t M, int64_t K) { return fp8_per_tensor(M, K, DType::BF16, Fp8Format::E4M3FN); }},
    {"fp8_per_token", [](int64_t M, int64_t K) { return fp8_per_token(M, K, DType::BF16, Fp8Format::E4M3FN); }},
    {"fp8_per_token_group128",
     [](int64_t M, int64_t K) { return fp8_per_token_group(M, K, DType::BF16, Fp8Format::E4M3FN, 128); }},
    {"int8_per_token", [](int64_t M, int64_t K) { return int8_per_token(M, K, DType::BF16); }},
};

void run_point(benchmark::State& state, const QuantProblem& p, const std::string& model) {
  const auto& ctx = bench::device_context();
  const int64_t n = p.numel();
  const double in_bytes = static_cast<double>(n) * 2.0;
  const int copies = static_cast<int>(
      std::clamp<double>(std::ceil(2.0 * static_cast<double>(ctx.info.l2_bytes) / in_bytes), 1.0, 16.0));
  std::vector<gpu::DeviceBuffer<uint16_t>> xs;
  std::vector<gpu::DeviceBuffer<uint8_t>> qs;
  std::vector<gpu::DeviceBuffer<float>> ss;
  for (int c = 0; c < copies; ++c) {
    xs.emplace_back(static_cast<size_t>(n));
    qs.emplace_back(static_cast<size_t>(n));
    ss.emplace_back(static_cast<size_t>(p.num_scales()));
    kernels::fill_normal(xs.back().data(), DType::BF16, static_cast<uint64_t>(n), 1234 + static_cast<uint64_t>(c),
                         rng::Stream::Hidden, 0, 1.0f, nullptr);
  }
  MOE_GPU_CHECK(hipDeviceSynchronize());
  Workspace ws(1);
  int next = 0;
  auto launch = [&](hipStream_t s) {
    const int c = next;
    next = (next + 1) % copies;
    quantize(p, xs[static_cast<size_t>(c)].data(), qs[static_cast<size_t>(c)].data(), ss[static_cast<size_t>(c)].data(),
             ws, s, CheckMode::Deferred);
  };
  const int batch = std::max(copies, 8);
  bench::run_gpu_benchmark(state, launch, {p.min_bytes(), 0.0}, {.batch = batch, .graph = true, .flush_l2 = false});
  // Inputs are finite: the deferred status must be clean.
  gpu::Stream s;
  ws.check(p, s.get());
  state.counters["M"] = static_cast<double>(p.shape.rows);
  state.counters["K"] = static_cast<double>(p.shape.cols);
  state.counters["copies"] = copies;
  state.SetLabel("model=" + model + " scheme=" + std::string(p.summary()));
}

// Rows of model_dim: the "quant" sweep of configs/model_configs.json.
void register_points(const ModelTable& table) {
  const std::vector<ModelConfig> models = table.sweep_models("quant");
  const std::vector<int64_t> Ms = table.sweep_tokens("quant");
  for (const auto& m : models)
    for (const auto& sc : kSchemes)
      for (int64_t M : Ms) {
        const QuantProblem p = sc.make(M, m.model_dim);
        benchmark::RegisterBenchmark(
            fmt::format("quant/{}/{}/M:{}", m.name, sc.name, M).c_str(),
            [p, model = m.name](benchmark::State& st) { run_point(st, p, model); })
            ->UseManualTime()
            ->Iterations(200)  // each one is a graph of `batch` launches; auto-iteration took 12 s a point
            ->Unit(benchmark::kMicrosecond);
      }
}

}  // namespace

MOE_BENCH_MAIN_WITH_MODELS(register_points);
