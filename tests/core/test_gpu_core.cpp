// GPU foundation tests: CPU/GPU RNG parity, every call of the HIP subset in
// hip_compat_cuda.hpp (on HIP: the real HIP runtime), the MOE_GPU_CHECK macro,
// DeviceBuffer, Stream/Event, device query and measured ceilings.
// main() is tests/gpu_main.cpp: exits 77 (SKIP) where no GPU is visible.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "gpu_core_kernels.hpp"
#include "kernels/common/common_kernels.hpp"
#include "moe/device.hpp"
#include "moe/error.hpp"
#include "moe/gpu.hpp"
#include "moe/inputs.hpp"

#if MOE_HAVE_GPU

using moe::gpu::DeviceBuffer;

namespace {

// Clears a non-sticky error left by a deliberate failure.
void clear_error() { (void)hipGetLastError(); }

}  // namespace

TEST_CASE("rng parity: kernels::fill_normal equals moe::fill_host bit for bit") {
  moe::gpu::Stream stream;
  const uint64_t n = (uint64_t{1} << 20) + 37;  // odd size, > one grid-stride pass for small grids
  // A nonzero offset, and one whose range crosses 2^32 (the index's high word).
  for (uint64_t offset : {uint64_t{123457}, (uint64_t{1} << 32) - 500000}) {
    for (moe::DType dt : {moe::DType::F32, moe::DType::BF16, moe::DType::F16}) {
      moe::InputSpec spec;
      spec.shape = {16, 1536, 512, 8, 2};
      spec.dtype = dt;
      spec.values = moe::ValueDist::FanIn;  // scale 1/sqrt(1536): not a power of two
      spec.seed = 0x5eed0000deadbeefull;
      const auto which = moe::rng::Stream::W1;
      INFO("dtype " << moe::dtype_name(dt) << " offset " << offset);
      if (dt == moe::DType::F32) {
        DeviceBuffer<float> d(n);
        d.poison(0xFF, stream.get());
        moe::kernels::fill_normal(d.data(), dt, n, spec.seed, which, offset, spec.scale(which), stream.get());
        const auto got = d.download(stream.get());
        std::vector<float> want(n);
        moe::fill_host(spec, which, offset, want);
        size_t bad = 0, first = n;
        for (size_t i = 0; i < n; ++i) {
          if (moe::f32_bits(got[i]) != moe::f32_bits(want[i])) {
            if (!bad) first = i;
            ++bad;
          }
        }
        INFO("first differing index " << first);
        CHECK(bad == 0);
      } else {
        DeviceBuffer<uint16_t> d(n);
        d.poison(0xFF, stream.get());
        moe::kernels::fill_normal(d.data(), dt, n, spec.seed, which, offset, spec.scale(which), stream.get());
        const auto got = d.download(stream.get());
        std::vector<uint16_t> want(n);
        moe::fill_host_bits16(spec, which, offset, want);
        size_t bad = 0, first = n;
        for (size_t i = 0; i < n; ++i) {
          if (got[i] != want[i]) {
            if (!bad) first = i;
            ++bad;
          }
        }
        INFO("first differing index " << first);
        CHECK(bad == 0);
      }
    }
  }
  // Plain normal (scale 1), and a second stream: also bit-exact.
  DeviceBuffer<float> d(4096);
  moe::kernels::fill_normal(d.data(), moe::DType::F32, 4096, 7, moe::rng::Stream::Hidden, 0, 1.0f, stream.get());
  const auto got = d.download(stream.get());
  for (size_t i = 0; i < got.size(); ++i)
    REQUIRE(moe::f32_bits(got[i]) == moe::f32_bits(moe::rng::normal(7, moe::rng::Stream::Hidden, i)));
  // Integer dtype is rejected on the host, before any launch.
  CHECK_THROWS_AS(moe::kernels::fill_normal(d.data(), moe::DType::I32, 16, 0, moe::rng::Stream::Test, 0, 1.0f,
                                            stream.get()),
                  moe::InputError);
}

TEST_CASE("runtime: device count, selection, properties, attributes, versions") {
  int n = 0;
  MOE_GPU_CHECK(hipGetDeviceCount(&n));
  REQUIRE(n >= 1);
  CHECK(n == moe::gpu::device_count());
  MOE_GPU_CHECK(hipSetDevice(0));
  int cur = -1;
  MOE_GPU_CHECK(hipGetDevice(&cur));
  CHECK(cur == 0);
  hipDeviceProp_t p{};
  MOE_GPU_CHECK(hipGetDeviceProperties(&p, 0));
  CHECK(std::strlen(p.name) > 0);
  CHECK(p.multiProcessorCount > 0);
  CHECK((p.warpSize == 32 || p.warpSize == 64));
  int v = 0;
  MOE_GPU_CHECK(hipDeviceGetAttribute(&v, hipDeviceAttributeMultiprocessorCount, 0));
  CHECK(v == p.multiProcessorCount);
  MOE_GPU_CHECK(hipDeviceGetAttribute(&v, hipDeviceAttributeL2CacheSize, 0));
  CHECK(v > 0);
  CHECK(v == p.l2CacheSize);
  MOE_GPU_CHECK(hipDeviceGetAttribute(&v, hipDeviceAttributeMaxSharedMemoryPerBlock, 0));
  CHECK(v >= 48 * 1024);
  // Clock and bus attributes: CUDA 13 removed them from cudaDeviceProp, the
  // attribute query still answers.
  MOE_GPU_CHECK(hipDeviceGetAttribute(&v, hipDeviceAttributeClockRate, 0));
  CHECK(v > 0);
  MOE_GPU_CHECK(hipDeviceGetAttribute(&v, hipDeviceAttributeMemoryClockRate, 0));
  CHECK(v > 0);
  MOE_GPU_CHECK(hipDeviceGetAttribute(&v, hipDeviceAttributeMemoryBusWidth, 0));
  CHECK(v >= 64);
  int drv = 0, rt = 0;
  MOE_GPU_CHECK(hipDriverGetVersion(&drv));
  MOE_GPU_CHECK(hipRuntimeGetVersion(&rt));
  CHECK(drv > 0);
  CHECK(rt > 0);
  size_t free_b = 0, total_b = 0;
  MOE_GPU_CHECK(hipMemGetInfo(&free_b, &total_b));
  CHECK(total_b > (size_t{1} << 30));
  CHECK(free_b <= total_b);
  CHECK(free_b > 0);
  MOE_GPU_CHECK(hipDeviceSynchronize());
  int ws = 0;
  MOE_GPU_CHECK(moe::test::device_warp_size(&ws));
  CHECK(ws == p.warpSize);
}

TEST_CASE("runtime: malloc, memcpy in every direction, memset, pinned host memory") {
  const size_t n = 100003;
  std::vector<float> h(n), back(n, 0.0f);
  for (size_t i = 0; i < n; ++i) h[i] = static_cast<float>(i) * 0.5f - 7.0f;
  float *a = nullptr, *b = nullptr;
  MOE_GPU_CHECK(hipMalloc(&a, n * sizeof(float)));
  MOE_GPU_CHECK(hipMalloc(&b, n * sizeof(float)));
  REQUIRE(a != nullptr);
  MOE_GPU_CHECK(hipMemcpy(a, h.data(), n * sizeof(float), hipMemcpyHostToDevice));
  MOE_GPU_CHECK(hipMemcpy(b, a, n * sizeof(float), hipMemcpyDeviceToDevice));
  MOE_GPU_CHECK(hipMemcpy(back.data(), b, n * sizeof(float), hipMemcpyDeviceToHost));
  CHECK(back == h);
  // hipMemcpyDefault infers the direction from the pointers.
  std::fill(back.begin(), back.end(), 0.0f);
  MOE_GPU_CHECK(hipMemcpy(back.data(), a, n * sizeof(float), hipMemcpyDefault));
  CHECK(back == h);
  // memset sets bytes: 0x3F3F3F3F as a float.
  MOE_GPU_CHECK(hipMemset(b, 0x3F, n * sizeof(float)));
  MOE_GPU_CHECK(hipMemcpy(back.data(), b, n * sizeof(float), hipMemcpyDeviceToHost));
  CHECK(std::all_of(back.begin(), back.end(), [](float x) { return moe::f32_bits(x) == 0x3F3F3F3Fu; }));
  // Async variants on a created stream, with pinned host memory.
  float* pinned = nullptr;
  MOE_GPU_CHECK(hipHostMalloc(&pinned, n * sizeof(float), 0));
  REQUIRE(pinned != nullptr);
  hipStream_t s{};
  MOE_GPU_CHECK(hipStreamCreate(&s));
  MOE_GPU_CHECK(hipMemsetAsync(a, 0, n * sizeof(float), s));
  MOE_GPU_CHECK(hipMemcpyAsync(b, h.data(), n * sizeof(float), hipMemcpyHostToDevice, s));
  MOE_GPU_CHECK(moe::test::launch_add(b, static_cast<int64_t>(n), 1.0f, 256, s));
  MOE_GPU_CHECK(hipMemcpyAsync(pinned, b, n * sizeof(float), hipMemcpyDeviceToHost, s));
  MOE_GPU_CHECK(hipStreamSynchronize(s));
  for (size_t i = 0; i < n; ++i) REQUIRE(pinned[i] == h[i] + 1.0f);
  MOE_GPU_CHECK(hipMemcpyAsync(pinned, a, n * sizeof(float), hipMemcpyDeviceToHost, s));
  MOE_GPU_CHECK(hipStreamSynchronize(s));
  CHECK(std::all_of(pinned, pinned + n, [](float x) { return x == 0.0f; }));
  MOE_GPU_CHECK(hipStreamDestroy(s));
  MOE_GPU_CHECK(hipHostFree(pinned));
  MOE_GPU_CHECK(hipFree(a));
  MOE_GPU_CHECK(hipFree(b));
  MOE_GPU_CHECK(hipFree(nullptr));  // freeing null is allowed
}

TEST_CASE("runtime: stream-ordered malloc and free") {
  const size_t n = 4099;
  hipStream_t s{};
  MOE_GPU_CHECK(hipStreamCreateWithFlags(&s, hipStreamNonBlocking));
  float* a = nullptr;
  MOE_GPU_CHECK(hipMallocAsync(&a, n * sizeof(float), s));
  REQUIRE(a != nullptr);
  MOE_GPU_CHECK(hipMemsetAsync(a, 0, n * sizeof(float), s));
  MOE_GPU_CHECK(moe::test::launch_add(a, static_cast<int64_t>(n), 2.5f, 256, s));
  std::vector<float> back(n, 0.0f);
  MOE_GPU_CHECK(hipMemcpyAsync(back.data(), a, n * sizeof(float), hipMemcpyDeviceToHost, s));
  MOE_GPU_CHECK(hipFreeAsync(a, s));
  MOE_GPU_CHECK(hipStreamSynchronize(s));
  CHECK(std::all_of(back.begin(), back.end(), [](float x) { return x == 2.5f; }));
  MOE_GPU_CHECK(hipStreamDestroy(s));
}

TEST_CASE("runtime: streams with flags, events and elapsed time") {
  hipStream_t s{};
  MOE_GPU_CHECK(hipStreamCreateWithFlags(&s, hipStreamNonBlocking));
  hipEvent_t e0{}, e1{};
  MOE_GPU_CHECK(hipEventCreate(&e0));
  MOE_GPU_CHECK(hipEventCreate(&e1));
  DeviceBuffer<float> x(1 << 20);
  MOE_GPU_CHECK(hipEventRecord(e0, s));
  for (int r = 0; r < 10; ++r) MOE_GPU_CHECK(moe::test::launch_add(x.data(), 1 << 20, 1.0f, 256, s));
  MOE_GPU_CHECK(hipEventRecord(e1, s));
  MOE_GPU_CHECK(hipEventSynchronize(e1));
  float ms = -1;
  MOE_GPU_CHECK(hipEventElapsedTime(&ms, e0, e1));
  CHECK(ms >= 0.0f);
  MOE_GPU_CHECK(hipStreamSynchronize(s));
  MOE_GPU_CHECK(hipEventDestroy(e0));
  MOE_GPU_CHECK(hipEventDestroy(e1));
  MOE_GPU_CHECK(hipStreamDestroy(s));
  // The RAII wrappers.
  moe::gpu::Stream st;
  moe::gpu::Event a, b;
  x.poison(0, st.get());  // zero
  a.record(st.get());
  MOE_GPU_CHECK(moe::test::launch_add(x.data(), 1 << 20, 2.5f, 128, st.get()));
  b.record(st.get());
  b.sync();
  CHECK(b.ms_since(a) >= 0.0f);
  st.sync();
  const auto v = x.download(st.get());
  CHECK(std::all_of(v.begin(), v.end(), [](float f) { return f == 2.5f; }));
}

TEST_CASE("runtime: graph capture and replay") {
  moe::gpu::Stream st;
  const int64_t n = 5000;
  DeviceBuffer<float> x(static_cast<size_t>(n));
  x.poison(0, st.get());
  st.sync();
  hipGraph_t g{};
  hipGraphExec_t ge{};
  MOE_GPU_CHECK(hipStreamBeginCapture(st.get(), hipStreamCaptureModeThreadLocal));
  for (int k = 0; k < 3; ++k) MOE_GPU_CHECK(moe::test::launch_add(x.data(), n, 1.0f, 256, st.get()));
  MOE_GPU_CHECK(hipStreamEndCapture(st.get(), &g));
  // Nothing ran during capture.
  auto v = x.download(st.get());
  CHECK(std::all_of(v.begin(), v.end(), [](float f) { return f == 0.0f; }));
  MOE_GPU_CHECK(hipGraphInstantiate(&ge, g, nullptr, nullptr, 0));
  for (int r = 0; r < 4; ++r) MOE_GPU_CHECK(hipGraphLaunch(ge, st.get()));
  st.sync();
  v = x.download(st.get());
  CHECK(std::all_of(v.begin(), v.end(), [](float f) { return f == 12.0f; }));  // 4 replays x 3 adds
  MOE_GPU_CHECK(hipGraphExecDestroy(ge));
  MOE_GPU_CHECK(hipGraphDestroy(g));
  // Global capture mode as well.
  MOE_GPU_CHECK(hipStreamBeginCapture(st.get(), hipStreamCaptureModeGlobal));
  MOE_GPU_CHECK(moe::test::launch_add(x.data(), n, -12.0f, 64, st.get()));
  MOE_GPU_CHECK(hipStreamEndCapture(st.get(), &g));
  MOE_GPU_CHECK(hipGraphInstantiate(&ge, g, nullptr, nullptr, 0));
  MOE_GPU_CHECK(hipGraphLaunch(ge, st.get()));
  st.sync();
  v = x.download(st.get());
  CHECK(std::all_of(v.begin(), v.end(), [](float f) { return f == 0.0f; }));
  MOE_GPU_CHECK(hipGraphExecDestroy(ge));
  MOE_GPU_CHECK(hipGraphDestroy(g));
}

TEST_CASE("runtime: error codes and enum types of the subset") {
  // The named codes are real, distinct error values with names.
  for (hipError_t e : {hipErrorNoDevice, hipErrorInsufficientDriver, hipErrorNotReady}) {
    CHECK(e != hipSuccess);
    CHECK(std::string(hipGetErrorName(e)).find("Error") != std::string::npos);
  }
  CHECK(hipErrorNoDevice != hipErrorNotReady);
  const hipMemcpyKind kinds[] = {hipMemcpyHostToDevice, hipMemcpyDeviceToHost, hipMemcpyDeviceToDevice, hipMemcpyDefault};
  CHECK(kinds[0] != kinds[1]);
  const hipStreamCaptureMode modes[] = {hipStreamCaptureModeGlobal, hipStreamCaptureModeThreadLocal};
  CHECK(modes[0] != modes[1]);
  const hipFuncAttribute fa = hipFuncAttributeMaxDynamicSharedMemorySize;
  const hipDeviceAttribute_t da = hipDeviceAttributeMultiprocessorCount;
  CHECK(static_cast<int>(fa) >= 0);
  CHECK(static_cast<int>(da) >= 0);
}

TEST_CASE("runtime: function attributes and occupancy") {
  MOE_GPU_CHECK(moe::test::set_add_max_dynamic_smem(48 * 1024));
  int blocks = 0;
  MOE_GPU_CHECK(moe::test::add_occupancy(&blocks, 256));
  CHECK(blocks >= 1);
  int big = 0;
  MOE_GPU_CHECK(moe::test::add_occupancy(&big, 1024));
  CHECK(big >= 1);
  CHECK(big <= blocks);
}

TEST_CASE("runtime: a bad launch is reported by hipGetLastError, then cleared") {
  clear_error();
  DeviceBuffer<float> x(16);
  const hipError_t e = moe::test::launch_bad_config(x.data(), nullptr);
  CHECK(e != hipSuccess);
  CHECK(std::string(hipGetErrorName(e)).size() > 0);
  CHECK(std::string(hipGetErrorString(e)).size() > 0);
  // Launch-configuration errors are not sticky: the next query is clean and the
  // device keeps working.
  CHECK(hipGetLastError() == hipSuccess);
  CHECK(hipPeekAtLastError() == hipSuccess);
  MOE_GPU_CHECK(moe::test::launch_add(x.data(), 16, 1.0f, 16, nullptr));
  MOE_GPU_CHECK(hipDeviceSynchronize());
  // Through MOE_GPU_CHECK a bad launch becomes a GpuError.
  CHECK_THROWS_AS(MOE_GPU_CHECK(moe::test::launch_bad_config(x.data(), nullptr)), moe::GpuError);
  clear_error();
}

TEST_CASE("MOE_GPU_CHECK throws GpuError naming the call, file and line") {
  void* p = nullptr;
  const int line = __LINE__ + 2;
  try {
    MOE_GPU_CHECK(hipMalloc(&p, size_t{1} << 50));  // 1 PiB
    FAIL("hipMalloc of 1 PiB succeeded");
  } catch (const moe::GpuError& e) {
    const std::string m = e.what();
    INFO(m);
    CHECK(m.find("hipMalloc(&p, size_t{1} << 50)") != std::string::npos);
    CHECK(m.find("test_gpu_core.cpp:" + std::to_string(line)) != std::string::npos);
    CHECK(m.find("failed") != std::string::npos);
    CHECK(e.code() != 0);
    CHECK(m.find('\n') == std::string::npos);
  }
  clear_error();
  // GpuError is a moe::Error (the CLI maps it to exit code 1, not 2).
  CHECK_THROWS_AS(MOE_GPU_CHECK(hipSetDevice(100000)), moe::Error);
  clear_error();
  // A DeviceBuffer too large to allocate throws and leaks nothing.
  CHECK_THROWS_AS(DeviceBuffer<double>(size_t{1} << 48), moe::GpuError);
  clear_error();
  // After the failures the device still works.
  DeviceBuffer<int> ok(8);
  ok.poison(0);
  const auto v = ok.download();
  CHECK(std::all_of(v.begin(), v.end(), [](int x) { return x == 0; }));
}

TEST_CASE("DeviceBuffer: poison, upload, download, move, bounds") {
  moe::gpu::Stream st;
  DeviceBuffer<float> f(1001);
  CHECK(f.size() == 1001);
  CHECK(f.bytes() == 1001 * sizeof(float));
  f.poison(0xFF, st.get());
  auto fv = f.download(st.get());
  CHECK(std::all_of(fv.begin(), fv.end(), [](float x) { return std::isnan(x); }));
  DeviceBuffer<int32_t> i(77);
  i.poison(0xFF, st.get());
  const auto iv = i.download(st.get());
  CHECK(std::all_of(iv.begin(), iv.end(), [](int32_t x) { return x == -1; }));
  DeviceBuffer<uint16_t> h(33);
  h.poison(0xFF, st.get());
  const auto hv = h.download(st.get());
  CHECK(std::all_of(hv.begin(), hv.end(), [](uint16_t x) {
    return std::isnan(moe::bf16_bits_to_f32(x)) && std::isnan(moe::f16_bits_to_f32(x));
  }));
  // Upload then download round-trips; a partial upload leaves the tail alone.
  std::vector<float> src(1001);
  for (size_t k = 0; k < src.size(); ++k) src[k] = static_cast<float>(k);
  f.upload(src, st.get());
  CHECK(f.download(st.get()) == src);
  f.poison(0xFF, st.get());
  f.upload(src.data(), 10, st.get());
  fv = f.download(st.get());
  CHECK(fv[9] == 9.0f);
  CHECK(std::isnan(fv[10]));
  // Too large an upload is an input error, checked before any copy.
  std::vector<float> big(1002);
  CHECK_THROWS_AS(f.upload(big, st.get()), moe::InputError);
  // Move construction and assignment transfer ownership.
  float* raw = f.data();
  DeviceBuffer<float> g(std::move(f));
  CHECK(g.data() == raw);
  CHECK(f.data() == nullptr);
  CHECK(f.size() == 0);
  DeviceBuffer<float> k2(5);
  k2 = std::move(g);
  CHECK(k2.data() == raw);
  CHECK(k2.size() == 1001);
  CHECK(k2.download(st.get())[9] == 9.0f);
  // Empty buffers are fine.
  DeviceBuffer<float> empty;
  CHECK(empty.size() == 0);
  CHECK(empty.download().empty());
  empty.poison();
  DeviceBuffer<float> zero(0);
  CHECK(zero.data() == nullptr);
  k2.reset();
  CHECK(k2.data() == nullptr);
}

TEST_CASE("device query and measured ceilings") {
  const auto devs = moe::list_devices();
  REQUIRE(!devs.empty());
  CHECK(std::string(moe::gpu_backend()) != "none");
  for (const auto& d : devs) {
    CHECK(d.index >= 0);
    CHECK(d.backend == moe::gpu_backend());
    CHECK(!d.name.empty());
    CHECK((d.arch.rfind("sm_", 0) == 0 || d.arch.rfind("gfx", 0) == 0));
    CHECK(d.sm_count > 0);
    CHECK((d.warp_size == 32 || d.warp_size == 64));
    CHECK(d.total_mem_bytes > (int64_t{1} << 30));
    CHECK(d.l2_bytes > 0);
    CHECK(d.max_smem_per_block >= 48 * 1024);
    CHECK(d.driver_version > 0);
    CHECK(d.runtime_version > 0);
    const auto j = d.to_json();
    CHECK(j["sm_count"] == d.sm_count);
    CHECK(j["name"] == d.name);
    MESSAGE("GPU " << d.index << ": " << d.name << " " << d.arch << ", " << d.sm_count << " SMs/CUs, L2 "
                   << d.l2_bytes / 1048576.0 << " MiB");
  }
  const auto c = moe::measure_ceilings(0);
  MESSAGE("measured: read " << c.read_gbps << " GB/s, copy " << c.copy_gbps << " GB/s, bf16 "
                            << (c.bf16_tflops ? std::to_string(*c.bf16_tflops) + " TFLOP/s" : c.bf16_note));
  CHECK(c.read_gbps > 0);
  CHECK(c.copy_gbps > 0);
  CHECK(std::isfinite(c.read_gbps));
  CHECK(std::isfinite(c.copy_gbps));
  if (c.bf16_tflops) CHECK(*c.bf16_tflops > 0);
  CHECK(!c.bf16_note.empty());
  MESSAGE("fp8 " << (c.fp8_tflops ? std::to_string(*c.fp8_tflops) + " TFLOP/s" : c.fp8_note) << ", int8 "
                 << (c.int8_tops ? std::to_string(*c.int8_tops) + " TOP/s" : c.int8_note));
  CHECK(!c.fp8_note.empty());
  CHECK(!c.int8_note.empty());
  // Hopper's fp8 and int8 tensor cores run at about twice its bf16 rate; a peak below
  // the bf16 one would be a measurement of something else.
  if (devs[0].arch == "sm_90" && c.bf16_tflops && c.fp8_tflops) CHECK(*c.fp8_tflops > 1.3 * *c.bf16_tflops);
  if (devs[0].arch == "sm_90" && c.bf16_tflops && c.int8_tops) CHECK(*c.int8_tops > 1.3 * *c.bf16_tflops);
  const auto j = c.to_json();
  CHECK(j["read_gbps"].is_number());
  CHECK((j["bf16_tflops"].is_number() || j["bf16_tflops"].is_null()));
  // An index past the last device is a GPU error, not a crash.
  CHECK_THROWS_AS(moe::measure_ceilings(static_cast<int>(devs.size()) + 100), moe::Error);
  clear_error();
}

#else

TEST_CASE("no GPU backend in this build") { MESSAGE("built with -Dgpu=none"); }

#endif
