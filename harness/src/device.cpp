#include "moe/device.hpp"

#include <algorithm>
#include <vector>

#include <fmt/format.h>

#include "moe/gpu.hpp"
#if MOE_HAVE_GPU
#include "../../kernels/common/common_kernels.hpp"
#endif
#if defined(MOE_HAVE_CUBLAS)
#include <cublas_v2.h>
#endif
#if defined(MOE_HAVE_CUBLASLT)
#include <cublasLt.h>
#endif

namespace moe {

nlohmann::json DeviceInfo::to_json() const {
  return {{"index", index},
          {"backend", backend},
          {"name", name},
          {"arch", arch},
          {"sm_count", sm_count},
          {"warp_size", warp_size},
          {"total_mem_bytes", total_mem_bytes},
          {"l2_bytes", l2_bytes},
          {"max_smem_per_block", max_smem_per_block},
          {"driver_version", driver_version},
          {"runtime_version", runtime_version}};
}

nlohmann::json Ceilings::to_json() const {
  nlohmann::json j{{"read_gbps", read_gbps}, {"copy_gbps", copy_gbps}, {"bf16_note", bf16_note}};
  const auto opt = [](const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); };
  j["bf16_tflops"] = opt(bf16_tflops);
  j["fp8_tflops"] = opt(fp8_tflops);
  j["fp8_note"] = fp8_note;
  j["int8_tops"] = opt(int8_tops);
  j["int8_note"] = int8_note;
  return j;
}

const char* gpu_backend() {
#if defined(MOE_BACKEND_CUDA)
  return "cuda";
#elif defined(MOE_BACKEND_HIP)
  return "hip";
#else
  return "none";
#endif
}

#if MOE_HAVE_GPU

std::vector<DeviceInfo> list_devices() {
  std::vector<DeviceInfo> out;
  const int n = gpu::device_count();
  int driver = 0, runtime = 0;
  if (n > 0) {
    MOE_GPU_CHECK(hipDriverGetVersion(&driver));
    MOE_GPU_CHECK(hipRuntimeGetVersion(&runtime));
  }
  for (int d = 0; d < n; ++d) {
    hipDeviceProp_t p{};
    MOE_GPU_CHECK(hipGetDeviceProperties(&p, d));
    DeviceInfo info;
    info.index = d;
    info.backend = gpu_backend();
    info.name = p.name;
#if defined(MOE_BACKEND_HIP)
    info.arch = p.gcnArchName;
#else
    info.arch = fmt::format("sm_{}{}", p.major, p.minor);
#endif
    info.sm_count = p.multiProcessorCount;
    info.warp_size = p.warpSize;
    info.total_mem_bytes = static_cast<int64_t>(p.totalGlobalMem);
    info.l2_bytes = p.l2CacheSize;
    int smem = 0;
    MOE_GPU_CHECK(hipDeviceGetAttribute(&smem, hipDeviceAttributeMaxSharedMemoryPerBlock, d));
    info.max_smem_per_block = smem;
    info.driver_version = driver;
    info.runtime_version = runtime;
    out.push_back(std::move(info));
  }
  return out;
}

namespace {

template <typename F>
double median_ms(int reps, hipStream_t s, F&& body) {
  gpu::Event a, b;
  std::vector<float> t;
  body();  // warm-up
  for (int r = 0; r < reps; ++r) {
    a.record(s);
    body();
    b.record(s);
    b.sync();
    t.push_back(b.ms_since(a));
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

#if defined(MOE_HAVE_CUBLASLT)
// The cuBLASLt objects of one measurement, destroyed on every exit path.
struct LtObjects {
  cublasLtHandle_t handle = nullptr;
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  LtObjects() = default;
  LtObjects(const LtObjects&) = delete;
  LtObjects& operator=(const LtObjects&) = delete;
  ~LtObjects() {
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    for (auto* l : {a, b, d})
      if (l) cublasLtMatrixLayoutDestroy(l);
    if (op) cublasLtMatmulDescDestroy(op);
    if (handle) cublasLtDestroy(handle);
  }
};

// Rate of D = A^T B (n x n x n) through cuBLASLt on 8-bit inputs (the layout
// Hopper's fp8 and int8 tensor-core paths require: A transposed, column-major),
// in 10^12 multiply-adds x 2 per second; throws Error naming the failing call.
double lt_gemm_rate(cudaDataType_t ab, cudaDataType_t d_type, cublasComputeType_t compute, cudaDataType_t scale_type,
                    int n, hipStream_t s) {
  const auto ok = [](cublasStatus_t st, const char* what) {
    if (st != CUBLAS_STATUS_SUCCESS) throw Error(fmt::format("{} failed with status {}", what, static_cast<int>(st)));
  };
  const size_t nn = size_t{1} * n * n;
  const size_t d_bytes = d_type == CUDA_R_32I ? 4 : 2;
  gpu::DeviceBuffer<unsigned char> A(nn), B(nn), D(nn * d_bytes);
  // Random bytes (the bits of normal bf16 values): typical operands, so the rate is
  // not that of zeros; fp8 NaN codes among them do not change the tensor-core rate.
  kernels::fill_normal(A.data(), DType::BF16, nn / 2, 4, rng::Stream::Test, 0, 1.0f, s);
  kernels::fill_normal(B.data(), DType::BF16, nn / 2, 5, rng::Stream::Test, 0, 1.0f, s);
  const size_t ws_bytes = size_t{32} << 20;
  gpu::DeviceBuffer<unsigned char> ws(ws_bytes);
  LtObjects lt;
  ok(cublasLtCreate(&lt.handle), "cublasLtCreate");
  ok(cublasLtMatmulDescCreate(&lt.op, compute, scale_type), "cublasLtMatmulDescCreate");
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  ok(cublasLtMatmulDescSetAttribute(lt.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta), "TRANSA");
  ok(cublasLtMatmulDescSetAttribute(lt.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb), "TRANSB");
  ok(cublasLtMatrixLayoutCreate(&lt.a, ab, n, n, n), "cublasLtMatrixLayoutCreate(A)");
  ok(cublasLtMatrixLayoutCreate(&lt.b, ab, n, n, n), "cublasLtMatrixLayoutCreate(B)");
  ok(cublasLtMatrixLayoutCreate(&lt.d, d_type, n, n, n), "cublasLtMatrixLayoutCreate(D)");
  ok(cublasLtMatmulPreferenceCreate(&lt.pref), "cublasLtMatmulPreferenceCreate");
  ok(cublasLtMatmulPreferenceSetAttribute(lt.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_bytes, sizeof ws_bytes),
     "MAX_WORKSPACE_BYTES");
  cublasLtMatmulHeuristicResult_t heur{};
  int found = 0;
  ok(cublasLtMatmulAlgoGetHeuristic(lt.handle, lt.op, lt.a, lt.b, lt.d, lt.d, lt.pref, 1, &heur, &found),
     "cublasLtMatmulAlgoGetHeuristic");
  if (found < 1) throw Error("cublasLtMatmulAlgoGetHeuristic found no algorithm");
  const float alpha_f = 1, beta_f = 0;
  const int32_t alpha_i = 1, beta_i = 0;
  const void* alpha = scale_type == CUDA_R_32I ? static_cast<const void*>(&alpha_i) : &alpha_f;
  const void* beta = scale_type == CUDA_R_32I ? static_cast<const void*>(&beta_i) : &beta_f;
  cublasStatus_t st = CUBLAS_STATUS_SUCCESS;
  const double ms = median_ms(10, s, [&] {
    st = cublasLtMatmul(lt.handle, lt.op, alpha, A.data(), lt.a, B.data(), lt.b, beta, D.data(), lt.d, D.data(), lt.d,
                        &heur.algo, ws.data(), ws_bytes, s);
  });
  ok(st, "cublasLtMatmul");
  return 2.0 * n * n * double(n) / (ms * 1e-3) / 1e12;
}
#endif

}  // namespace

Ceilings measure_ceilings(int index) {
  MOE_GPU_CHECK(hipSetDevice(index));
  Ceilings c;
  gpu::Stream stream;
  size_t free_b = 0, total_b = 0;
  MOE_GPU_CHECK(hipMemGetInfo(&free_b, &total_b));
  // Well past L2 (50-60 MB on Hopper) so the cache cannot serve repeats.
  const uint64_t bytes = std::min<uint64_t>(uint64_t{2} << 30, (free_b / 4) & ~uint64_t{4095});
  MOE_REQUIRE(bytes >= (uint64_t{64} << 20), "not enough free device memory to measure bandwidth");
  gpu::DeviceBuffer<unsigned char> src(bytes), dst(bytes);
  kernels::fill_normal(src.data(), DType::F32, bytes / 4, 1, rng::Stream::Test, 0, 1.0f, stream.get());
  hipDeviceProp_t p{};
  MOE_GPU_CHECK(hipGetDeviceProperties(&p, index));
  gpu::DeviceBuffer<uint32_t> sink(static_cast<size_t>(p.multiProcessorCount) * 8);
  const int blocks = p.multiProcessorCount * 4;
  const double read_ms =
      median_ms(20, stream.get(), [&] { kernels::read_probe(src.data(), bytes, sink.data(), blocks, stream.get()); });
  c.read_gbps = static_cast<double>(bytes) / (read_ms * 1e-3) / 1e9;
  const double copy_ms = median_ms(20, stream.get(), [&] {
    MOE_GPU_CHECK(hipMemcpyAsync(dst.data(), src.data(), bytes, hipMemcpyDeviceToDevice, stream.get()));
  });
  c.copy_gbps = 2.0 * static_cast<double>(bytes) / (copy_ms * 1e-3) / 1e9;

#if defined(MOE_HAVE_CUBLAS)
  {
    const int n = 8192;
    gpu::DeviceBuffer<uint16_t> A(size_t{1} * n * n), B(size_t{1} * n * n), C(size_t{1} * n * n);
    kernels::fill_normal(A.data(), DType::BF16, A.size(), 2, rng::Stream::Test, 0, 1.0f, stream.get());
    kernels::fill_normal(B.data(), DType::BF16, B.size(), 3, rng::Stream::Test, 0, 1.0f, stream.get());
    cublasHandle_t h;
    if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS) throw Error("cublasCreate failed");
    cublasSetStream(h, stream.get());
    const float alpha = 1, beta = 0;
    cublasStatus_t st = CUBLAS_STATUS_SUCCESS;
    const double ms = median_ms(10, stream.get(), [&] {
      st = cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, A.data(), CUDA_R_16BF, n, B.data(), CUDA_R_16BF,
                        n, &beta, C.data(), CUDA_R_16BF, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    });
    cublasDestroy(h);
    if (st != CUBLAS_STATUS_SUCCESS) throw Error(fmt::format("cublasGemmEx failed with status {}", static_cast<int>(st)));
    c.bf16_tflops = 2.0 * n * n * double(n) / (ms * 1e-3) / 1e12;
    c.bf16_note = "cuBLAS GemmEx bf16 8192x8192x8192, fp32 accumulate, random normal inputs, median of 10";
  }
#else
  c.bf16_note = "not measured: built without a vendor BLAS";
#endif
#if defined(MOE_HAVE_CUBLASLT)
  // fp8 needs sm_89 or newer, int8 tensor cores sm_75; a failure leaves the peak
  // unmeasured with the reason, never a wrong number.
  if (p.major * 10 + p.minor >= 89) {
    try {
      c.fp8_tflops = lt_gemm_rate(CUDA_R_8F_E4M3, CUDA_R_16BF, CUBLAS_COMPUTE_32F, CUDA_R_32F, 8192, stream.get());
      c.fp8_note = "cuBLASLt e4m3 x e4m3 8192x8192x8192 (A^T B), fp32 accumulate, bf16 out, median of 10";
    } catch (const Error& e) {
      c.fp8_note = std::string("not measured: ") + e.what();
    }
  } else {
    c.fp8_note = "not measured: no fp8 tensor cores before sm_89";
  }
  try {
    c.int8_tops = lt_gemm_rate(CUDA_R_8I, CUDA_R_32I, CUBLAS_COMPUTE_32I, CUDA_R_32I, 8192, stream.get());
    c.int8_note = "cuBLASLt int8 x int8 8192x8192x8192 (A^T B), int32 accumulate and out, median of 10";
  } catch (const Error& e) {
    c.int8_note = std::string("not measured: ") + e.what();
  }
#else
  c.fp8_note = c.int8_note = "not measured: built without cuBLASLt";
#endif
  stream.sync();
  return c;
}

#else  // no GPU backend

std::vector<DeviceInfo> list_devices() { return {}; }

Ceilings measure_ceilings(int) { throw Error("moe-harness was built without a GPU backend (-Dgpu=none)"); }

#endif

}  // namespace moe
