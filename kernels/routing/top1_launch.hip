// Host launcher of the fused sigmoid top-1 router (kernels in top1_kernels.cuh).
#include <map>
#include <mutex>

#include <string>

// No fmt here: fmt 9 does not compile under nvcc.
#include "kernels/routing/routing.hpp"
#include "kernels/routing/top1_kernels.cuh"
#include "moe/error.hpp"
#include "moe/gpu.hpp"

namespace moe::routing {

namespace {

struct DevProps {
  int sm_count = 1;
  bool tensor_cores = false;
};

DevProps current_device_props() {
  static std::mutex mu;
  static std::map<int, DevProps> cache;
  int d = 0;
  MOE_GPU_CHECK(hipGetDevice(&d));
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(d);
  if (it != cache.end()) return it->second;
  hipDeviceProp_t prop{};
  MOE_GPU_CHECK(hipGetDeviceProperties(&prop, d));
  DevProps dp;
  dp.sm_count = prop.multiProcessorCount;
#if defined(MOE_BACKEND_CUDA)
  dp.tensor_cores = prop.major >= 8;
#else
  dp.tensor_cores = false;
#endif
  cache[d] = dp;
  return dp;
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

#if !defined(MOE_BACKEND_HIP)
template <int NT, bool F16>
void launch_tc(const SigmoidTop1Plan& pl, const uint16_t* x, const uint16_t* w, float* ow, int32_t* oid, float* ws,
               int* counters, const dev::Top1Args& a, hipStream_t s) {
  constexpr int smem = dev::tc_smem_bytes<NT>();
  if constexpr (smem > 48 * 1024) {
    static std::once_flag once;
    std::call_once(once, [] {
      MOE_GPU_CHECK(hipFuncSetAttribute(dev::sigmoid_top1_tc_kernel<NT, F16>,
                                        hipFuncAttributeMaxDynamicSharedMemorySize, smem));
    });
  }
  const dim3 grid(static_cast<unsigned>(pl.row_tiles), static_cast<unsigned>(pl.splits),
                  static_cast<unsigned>(pl.col_tiles));
  hipLaunchKernelGGL((dev::sigmoid_top1_tc_kernel<NT, F16>), grid, dim3(128), smem, s, x, w, ow, oid, ws, counters,
                     a);
  MOE_GPU_CHECK(hipGetLastError());
}

template <bool F16>
void dispatch_tc(const SigmoidTop1Plan& pl, const uint16_t* x, const uint16_t* w, float* ow, int32_t* oid, float* ws,
                 int* counters, const dev::Top1Args& a, hipStream_t s) {
  switch (pl.bn / 8) {
    case 1: return launch_tc<1, F16>(pl, x, w, ow, oid, ws, counters, a, s);
    case 2: return launch_tc<2, F16>(pl, x, w, ow, oid, ws, counters, a, s);
    case 4: return launch_tc<4, F16>(pl, x, w, ow, oid, ws, counters, a, s);
    case 8: return launch_tc<8, F16>(pl, x, w, ow, oid, ws, counters, a, s);
    case 16: return launch_tc<16, F16>(pl, x, w, ow, oid, ws, counters, a, s);
    default: throw Error("sigmoid_top1: bad plan bn=" + std::to_string(pl.bn));
  }
}
#endif

template <bool F16>
void launch_simt(const SigmoidTop1Plan& pl, const uint16_t* x, const uint16_t* w, float* ow, int32_t* oid, float* ws,
                 int* counters, const dev::Top1Args& a, hipStream_t s) {
  const dim3 grid(static_cast<unsigned>(pl.row_tiles), static_cast<unsigned>(pl.splits),
                  static_cast<unsigned>(pl.col_tiles));
  hipLaunchKernelGGL((dev::sigmoid_top1_simt_kernel<F16>), grid, dim3(128), 0, s, x, w, ow, oid, ws, counters, a);
  MOE_GPU_CHECK(hipGetLastError());
}

}  // namespace

SigmoidTop1Plan sigmoid_top1_plan(const SigmoidTop1Params& p, const SigmoidTop1Config& cfg) {
  const DevProps dp = current_device_props();
  return plan_sigmoid_top1(p, cfg, dp.sm_count, dp.tensor_cores);
}

size_t sigmoid_top1_workspace_bytes(const SigmoidTop1Params& p, const SigmoidTop1Config& cfg) {
  return sigmoid_top1_plan(p, cfg).workspace_bytes;
}

void sigmoid_top1_workspace_init(void* workspace, size_t bytes, hipStream_t stream) {
  if (bytes == 0) return;
  MOE_REQUIRE(workspace != nullptr, "sigmoid_top1_workspace_init: null workspace");
  MOE_GPU_CHECK(hipMemsetAsync(workspace, 0, bytes, stream));
}

void sigmoid_top1(const void* x, const void* w, float* topk_weights, int32_t* topk_ids, void* workspace,
                  size_t workspace_bytes, const SigmoidTop1Params& p, const SigmoidTop1Config& cfg,
                  hipStream_t stream) {
  const SigmoidTop1Plan pl = sigmoid_top1_plan(p, cfg);  // validates p and cfg
  if (p.tokens == 0) return;
  MOE_REQUIRE(x != nullptr && w != nullptr && topk_weights != nullptr && topk_ids != nullptr,
              "sigmoid_top1: null device pointer");
  MOE_REQUIRE(workspace_bytes >= pl.workspace_bytes && (pl.workspace_bytes == 0 || workspace != nullptr),
              "sigmoid_top1: workspace of " + std::to_string(pl.workspace_bytes) + " bytes needed, " +
                  std::to_string(workspace_bytes) + " given (see sigmoid_top1_workspace_bytes)");
  MOE_REQUIRE(pl.row_tiles <= 0x7fffffff, "sigmoid_top1: too many tokens for one launch");
  float* ws = static_cast<float*>(workspace);
  int* counters = nullptr;
  if (pl.workspace_bytes > 0) {
    const size_t partial = static_cast<size_t>(pl.splits) * static_cast<size_t>(p.tokens) *
                           static_cast<size_t>(p.experts) * sizeof(float);
    counters = reinterpret_cast<int*>(static_cast<unsigned char*>(workspace) + (partial + 255) / 256 * 256);
  }
  dev::Top1Args a{p.tokens,
                  p.hidden,
                  p.experts,
                  pl.k_chunk,
                  pl.splits,
                  pl.col_tiles,
                  p.shared_expert ? 1 : 0,
                  pl.direct() ? 1 : 0,
                  (p.hidden % 8 == 0 && aligned16(x)) ? 1 : 0,
                  (p.experts % 8 == 0 && aligned16(w)) ? 1 : 0};
  const auto* xb = static_cast<const uint16_t*>(x);
  const auto* wb = static_cast<const uint16_t*>(w);
  const bool f16 = p.dtype == DType::F16;
  if (pl.impl == Top1Impl::TensorCore) {
#if !defined(MOE_BACKEND_HIP)
    if (f16) return dispatch_tc<true>(pl, xb, wb, topk_weights, topk_ids, ws, counters, a, stream);
    return dispatch_tc<false>(pl, xb, wb, topk_weights, topk_ids, ws, counters, a, stream);
#else
    throw_input_error("sigmoid_top1: no tensor-core path in HIP builds");
#endif
  }
  if (f16) return launch_simt<true>(pl, xb, wb, topk_weights, topk_ids, ws, counters, a, stream);
  return launch_simt<false>(pl, xb, wb, topk_weights, topk_ids, ws, counters, a, stream);
}

}  // namespace moe::routing
