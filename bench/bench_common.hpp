// Shared GPU timing for the Google Benchmark executables.
//
// Each benchmark iteration: (optionally) evict L2 by writing a scratch buffer of
// 2x the L2 size, untimed; then record an event, replay a graph of `batch`
// back-to-back launches (or launch them directly when graph=false), record an
// event. Iteration time = elapsed / batch, fed to Google Benchmark as manual
// time. With flush_l2 and batch=1 every timed launch starts with a cold L2.
//
// Counters set on every benchmark (names are what reports read):
//   us              median time per launch (µs)
//   GBps            declared bytes / median time
//   TFLOPs          declared FLOPs / median time
//   pct_read_bw     GBps as % of this device's measured read bandwidth
//   pct_bf16_flops  TFLOPs as % of this device's measured dense bf16 GEMM rate
// Benchmarks add their own (M, E, top_k, ...) with state.counters.
//
// Environment (set by `moe-harness bench`, usable by hand):
//   MOE_DEVICE=N             GPU index (default 0)
//   MOE_BENCH_NO_CEILINGS=1  skip the ceiling measurement (% counters are 0)
//   MOE_BENCH_FLUSH_L2=0|1   override every benchmark's flush_l2 choice
//                            (1: evict L2 before each timed replay; 0: never)
//   MOE_TUNED_CONFIG=PATH    tuned-config table (configs/tuned_fmoe.csv format)
//                            that tuned_table_from_env() reads once; unset or
//                            empty: the heuristic only. Recorded in the JSON context.
//   MOE_MODEL_CONFIGS=PATH   models and sweeps the benchmark points come from;
//                            unset or empty: configs/model_configs.json under the
//                            current folder, else under the source tree (as the
//                            CLI finds it). Unreadable: one-line error, exit 2.
//   MOE_BENCH_ROUTING=DIST   the layer benchmarks' routing (softmax, balanced, zipf,
//                            one; unset or empty: softmax). balanced gives every
//                            expert the same rows, so no m-block is partly filled
//                            where M*top_k is a multiple of experts*block_m: what
//                            the padding costs is softmax's time minus balanced's.
//                            Another value: one-line error, exit 2. Recorded in the
//                            JSON context.
#pragma once
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include "git_revision.h"
#include "moe/fused_moe_tuning.hpp"
#include "moe/device.hpp"
#include "moe/error.hpp"
#include "moe/gpu.hpp"
#include "moe/inputs.hpp"
#include "moe/model_config.hpp"

namespace moe::bench {

struct DeviceContext {
  DeviceInfo info;
  Ceilings ceilings;
};

// Device 0 (or $MOE_DEVICE), its ceilings measured once per process
// ($MOE_BENCH_NO_CEILINGS=1 skips the measurement; % counters are then 0).
inline const DeviceContext& device_context() {
  static const DeviceContext ctx = [] {
    DeviceContext c;
    const auto devs = list_devices();
    if (devs.empty()) throw Error("no GPU visible");
    const char* d = std::getenv("MOE_DEVICE");
    const int idx = d ? std::atoi(d) : 0;
    if (idx < 0 || idx >= static_cast<int>(devs.size())) throw InputError(fmt::format("MOE_DEVICE={} out of range", idx));
    MOE_GPU_CHECK(hipSetDevice(idx));
    c.info = devs[static_cast<size_t>(idx)];
    const char* skip = std::getenv("MOE_BENCH_NO_CEILINGS");
    if (!(skip && std::string(skip) == "1")) c.ceilings = measure_ceilings(idx);
    return c;
  }();
  return ctx;
}

// What one launch must move and compute at minimum (each input read once, each
// output written once; useful FLOPs only).
struct Work {
  double bytes = 0;
  double flops = 0;
};

struct TimingOptions {
  int batch = 20;         // launches per timed replay
  bool graph = true;      // capture the batch into a graph (hides launch gaps)
  bool flush_l2 = false;  // evict L2 before each timed replay
};

class L2Flusher {
 public:
  explicit L2Flusher(int64_t l2_bytes) : buf_(static_cast<size_t>(std::max<int64_t>(l2_bytes, 1 << 20) * 2)) {}
  void flush(hipStream_t s) { MOE_GPU_CHECK(hipMemsetAsync(buf_.data(), ++v_ & 0xff, buf_.bytes(), s)); }

 private:
  gpu::DeviceBuffer<unsigned char> buf_;
  int v_ = 0;
};

inline void run_gpu_benchmark_impl(benchmark::State& state, const std::function<void(hipStream_t)>& launch,
                                   const Work& work, const TimingOptions& opt, const DeviceContext& ctx);

// Runs the Google Benchmark loop for `launch`, which enqueues one kernel
// invocation (or one whole layer) on the given stream.
inline void run_gpu_benchmark(benchmark::State& state, const std::function<void(hipStream_t)>& launch,
                              const Work& work, const TimingOptions& opt = {}) {
  const DeviceContext& ctx = device_context();
  TimingOptions topt = opt;
  if (const char* f = std::getenv("MOE_BENCH_FLUSH_L2"); f && *f) topt.flush_l2 = std::string(f) == "1";
  return run_gpu_benchmark_impl(state, launch, work, topt, ctx);
}

inline void run_gpu_benchmark_impl(benchmark::State& state, const std::function<void(hipStream_t)>& launch,
                                   const Work& work, const TimingOptions& opt, const DeviceContext& ctx) {
  gpu::Stream stream;
  hipStream_t s = stream.get();
  const int batch = std::max(1, opt.batch);
  // Only benchmarks that flush pay for the 2x-L2 scratch buffer.
  std::optional<L2Flusher> flusher;
  if (opt.flush_l2) flusher.emplace(ctx.info.l2_bytes);

  // Warm-up outside the timed region: module load, first-touch, graph capture.
  launch(s);
  MOE_GPU_CHECK(hipGetLastError());
  stream.sync();
  hipGraph_t graph = nullptr;
  hipGraphExec_t exec = nullptr;
  if (opt.graph) {
    MOE_GPU_CHECK(hipStreamBeginCapture(s, hipStreamCaptureModeThreadLocal));
    for (int i = 0; i < batch; ++i) launch(s);
    MOE_GPU_CHECK(hipStreamEndCapture(s, &graph));
    MOE_GPU_CHECK(hipGraphInstantiate(&exec, graph, nullptr, nullptr, 0));
    MOE_GPU_CHECK(hipGraphLaunch(exec, s));
    stream.sync();
  }
  auto replay = [&] {
    if (opt.graph) {
      MOE_GPU_CHECK(hipGraphLaunch(exec, s));
    } else {
      for (int i = 0; i < batch; ++i) launch(s);
    }
  };

  gpu::Event start, stop;
  std::vector<double> per_launch_us;
  for (auto _ : state) {
    if (flusher) flusher->flush(s);
    start.record(s);
    replay();
    stop.record(s);
    stop.sync();
    const double us = static_cast<double>(stop.ms_since(start)) * 1e3 / batch;
    per_launch_us.push_back(us);
    state.SetIterationTime(us * 1e-6);
  }
  MOE_GPU_CHECK(hipGetLastError());
  if (exec) MOE_GPU_CHECK(hipGraphExecDestroy(exec));
  if (graph) MOE_GPU_CHECK(hipGraphDestroy(graph));
  if (per_launch_us.empty()) return;

  std::sort(per_launch_us.begin(), per_launch_us.end());
  const double med = per_launch_us[per_launch_us.size() / 2];
  const double gbps = work.bytes / (med * 1e-6) / 1e9;
  const double tflops = work.flops / (med * 1e-6) / 1e12;
  state.counters["us"] = med;
  state.counters["us_min"] = per_launch_us.front();
  state.counters["GBps"] = gbps;
  state.counters["TFLOPs"] = tflops;
  state.counters["bytes"] = work.bytes;
  state.counters["flops"] = work.flops;
  state.counters["pct_read_bw"] = ctx.ceilings.read_gbps > 0 ? 100.0 * gbps / ctx.ceilings.read_gbps : 0.0;
  state.counters["pct_bf16_flops"] =
      ctx.ceilings.bf16_tflops && *ctx.ceilings.bf16_tflops > 0 ? 100.0 * tflops / *ctx.ceilings.bf16_tflops : 0.0;
  state.counters["batch"] = batch;
  state.counters["graph"] = opt.graph ? 1 : 0;
  state.counters["flush_l2"] = opt.flush_l2 ? 1 : 0;
}

// The table of $MOE_TUNED_CONFIG (empty when unset), read on first use, for
// benchmarks to pass to fused_moe::select_config.
inline const TunedTable& tuned_table_from_env() {
  static const TunedTable table = [] {
    const char* tc = std::getenv("MOE_TUNED_CONFIG");
    return tc && *tc ? TunedTable::load_or_empty(tc, fused_moe::tuned_impls()) : TunedTable{};
  }();
  return table;
}

// $MOE_MODEL_CONFIGS, else configs/model_configs.json (current folder, then the source tree).
inline std::string model_configs_path() {
  const char* p = std::getenv("MOE_MODEL_CONFIGS");
  return p && *p ? std::string(p) : find_config_file("model_configs.json", MOE_SOURCE_DIR);
}

// $MOE_BENCH_ROUTING (unset or empty: softmax); InputError naming the variable for another value.
inline RoutingDist routing_from_env() {
  const char* r = std::getenv("MOE_BENCH_ROUTING");
  if (!r || !*r) return RoutingDist::Softmax;
  try {
    return parse_routing_dist(r);
  } catch (const InputError& e) {
    throw InputError(fmt::format("MOE_BENCH_ROUTING: {}", e.what()));
  }
}

// The layer benchmarks' inputs: layer_input_spec with the routing of $MOE_BENCH_ROUTING.
inline InputSpec layer_spec(const ModelConfig& m, int64_t M) {
  InputSpec s = layer_input_spec(m, M);
  s.routing = routing_from_env();
  return s;
}

// Registers a bench executable's points from the parsed model table.
using RegisterPoints = void (*)(const ModelTable&);

// main() for bench executables: registers the points of `register_points` (if
// any) from the model table, adds device, ceilings and git revision to the
// JSON context; exits 77 with a reason when there is no GPU.
inline int bench_main(int argc, char** argv, RegisterPoints register_points = nullptr) {
  // Registered before anything else: listing needs the points, and an unreadable
  // table is bad input (exit 2) in every mode. Benchmarks keep copies of what they use.
  if (register_points) {
    try {
      register_points(load_model_table(model_configs_path()));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "error: %s\n", e.what());
      return 2;
    }
  }
  // --benchmark_list_tests needs no device (moe-harness bench lists first).
  bool listing = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--benchmark_list_tests" || a == "--benchmark_list_tests=true" || a == "--benchmark_list_tests=1")
      listing = true;
  }
  benchmark::Initialize(&argc, argv);
  if (listing) {
    benchmark::RunSpecifiedBenchmarks();
    return 0;
  }
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  try {
    // The tuned table first: a bad file is bad input (exit 2), not a skip.
    const char* tc = std::getenv("MOE_TUNED_CONFIG");
    const std::string tuned = tc ? tc : "";
    (void)tuned_table_from_env();
    benchmark::AddCustomContext("moe_tuned_config", tuned.empty() ? "none (heuristic)" : tuned);
    const char* fl = std::getenv("MOE_BENCH_FLUSH_L2");
    benchmark::AddCustomContext("moe_flush_l2", fl && *fl ? fl : "per benchmark");
    benchmark::AddCustomContext("moe_routing", std::string(routing_dist_name(routing_from_env())));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
  try {
    const DeviceContext& ctx = device_context();
    benchmark::AddCustomContext("moe_device", ctx.info.name);
    benchmark::AddCustomContext("moe_arch", ctx.info.arch);
    benchmark::AddCustomContext("moe_sm_count", std::to_string(ctx.info.sm_count));
    benchmark::AddCustomContext("moe_driver_version", std::to_string(ctx.info.driver_version));
    benchmark::AddCustomContext("moe_runtime_version", std::to_string(ctx.info.runtime_version));
    benchmark::AddCustomContext("moe_read_gbps", fmt::format("{:.1f}", ctx.ceilings.read_gbps));
    benchmark::AddCustomContext("moe_copy_gbps", fmt::format("{:.1f}", ctx.ceilings.copy_gbps));
    const auto rate = [](const std::optional<double>& v) { return v ? fmt::format("{:.1f}", *v) : std::string("n/a"); };
    benchmark::AddCustomContext("moe_bf16_tflops", rate(ctx.ceilings.bf16_tflops));
    benchmark::AddCustomContext("moe_fp8_tflops", rate(ctx.ceilings.fp8_tflops));
    benchmark::AddCustomContext("moe_int8_tops", rate(ctx.ceilings.int8_tops));
    benchmark::AddCustomContext("moe_git_revision", MOE_GIT_REVISION);
    benchmark::AddCustomContext("moe_backend", gpu_backend());
  } catch (const std::exception& e) {
    std::printf("SKIP: %s\n", e.what());
    return 77;
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace moe::bench

#define MOE_BENCH_MAIN()                                                       \
  int main(int argc, char** argv) { return ::moe::bench::bench_main(argc, argv); }

// main() of an executable whose points come from configs/model_configs.json.
#define MOE_BENCH_MAIN_WITH_MODELS(register_points)                            \
  int main(int argc, char** argv) { return ::moe::bench::bench_main(argc, argv, register_points); }
