// Sanity benchmark of the timing machinery itself: a 16-byte-load read probe and
// a device-to-device copy, whose GBps must land near the measured ceilings.
#include "bench_common.hpp"
#include "kernels/common/common_kernels.hpp"

namespace {

void BM_read_probe(benchmark::State& state) {
  const uint64_t bytes = static_cast<uint64_t>(state.range(0)) << 20;
  moe::gpu::DeviceBuffer<unsigned char> src(bytes);
  moe::gpu::DeviceBuffer<uint32_t> sink(4096);
  MOE_GPU_CHECK(hipMemset(src.data(), 1, bytes));
  const int blocks = moe::bench::device_context().info.sm_count * 4;
  moe::bench::run_gpu_benchmark(
      state, [&](hipStream_t s) { moe::kernels::read_probe(src.data(), bytes, sink.data(), blocks, s); },
      {static_cast<double>(bytes), 0}, {.batch = 5, .graph = true, .flush_l2 = true});
  state.counters["MiB"] = static_cast<double>(state.range(0));
}
BENCHMARK(BM_read_probe)->Arg(1)->Arg(64)->Arg(1024)->UseManualTime()->Unit(benchmark::kMicrosecond);

void BM_copy(benchmark::State& state) {
  const uint64_t bytes = static_cast<uint64_t>(state.range(0)) << 20;
  moe::gpu::DeviceBuffer<unsigned char> a(bytes), b(bytes);
  moe::bench::run_gpu_benchmark(
      state,
      [&](hipStream_t s) { MOE_GPU_CHECK(hipMemcpyAsync(b.data(), a.data(), bytes, hipMemcpyDeviceToDevice, s)); },
      {2.0 * static_cast<double>(bytes), 0}, {.batch = 5, .graph = true, .flush_l2 = true});
  state.counters["MiB"] = static_cast<double>(state.range(0));
}
BENCHMARK(BM_copy)->Arg(1024)->UseManualTime()->Unit(benchmark::kMicrosecond);

}  // namespace

MOE_BENCH_MAIN();
