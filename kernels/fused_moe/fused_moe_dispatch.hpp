// Internal: per-stage tables of the compiled tile kernels (one entry per
// kTileShapes index and dtype), filled by fused_moe_stage{1,2}.hip.
#pragma once
#include <cstdint>

#include "kernels/fused_moe/fused_moe_params.hpp"
#include "kernels/fused_moe/fused_moe_types.hpp"
#include "moe/error.hpp"
#include "moe/gpu.hpp"
#include "moe/gpu_runtime.hpp"

#if MOE_HAVE_GPU
namespace moe::fused_moe::detail {

// Programmatic dependent launch between the layer's kernels: on for CUDA
// compute capability >= 9.0 unless MOE_FUSED_MOE_PDL=0 in the environment.
bool pdl_enabled();

struct KernelEntry {
  void (*launch)(const GemmParams& p, int grid, hipStream_t s) = nullptr;
  int (*resident_blocks_per_sm)() = nullptr;  // occupancy of this kernel
  int threads = 0;
  int64_t smem_bytes = 0;
};

// dtype BF16 or F16; shape in [0, kNumTileShapes).
const KernelEntry& stage1_kernel(DType dtype, int shape);
const KernelEntry& stage2_kernel(DType dtype, int shape);
void launch_reduce_kernel(const ReduceParams& p, DType dtype, int grid, int threads, hipStream_t s);
#if defined(__CUDACC__) || defined(__HIPCC__)
// Launches `kernel(p)`. On CUDA with programmatic dependent launch allowed
// (pdl_enabled()), with the programmatic-stream-serialization attribute: the
// kernel may start while the previous kernel in the stream finishes and waits
// for it with griddepcontrol.wait (its first statement that reads upstream
// data). Elsewhere an ordinary launch. cluster > 1 (CUDA only): blocks in
// clusters of that many along x (grid a multiple of it).
template <class P>
void launch_maybe_pdl(void (*kernel)(const P), int grid, int threads, int smem, hipStream_t s, const P& p,
                      int cluster = 1) {
  MOE_REQUIRE(cluster >= 1 && grid % cluster == 0,
              "fused_moe: the grid must be whole clusters (an internal sizing error)");
#if defined(MOE_HIP_COMPAT_CUDA)
  if (pdl_enabled() || cluster > 1) {
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(static_cast<unsigned>(grid));
    cfg.blockDim = dim3(static_cast<unsigned>(threads));
    cfg.dynamicSmemBytes = static_cast<size_t>(smem);
    cfg.stream = s;
    cudaLaunchAttribute attr[2];
    unsigned n = 0;
    if (pdl_enabled()) {
      attr[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
      attr[n++].val.programmaticStreamSerializationAllowed = 1;
    }
    if (cluster > 1) {
      attr[n].id = cudaLaunchAttributeClusterDimension;
      attr[n].val.clusterDim.x = static_cast<unsigned>(cluster);
      attr[n].val.clusterDim.y = 1;
      attr[n++].val.clusterDim.z = 1;
    }
    cfg.attrs = attr;
    cfg.numAttrs = n;
    MOE_GPU_CHECK(cudaLaunchKernelEx(&cfg, kernel, p));
    return;
  }
#else
  MOE_REQUIRE(cluster == 1, "fused_moe: thread-block clusters are a CUDA feature");
#endif
  hipLaunchKernelGGL(kernel, dim3(static_cast<unsigned>(grid)), dim3(threads), static_cast<unsigned>(smem), s, p);
  MOE_GPU_CHECK(hipGetLastError());
}
#endif

// Whether the wgmma main loop was compiled for the device (sm_90a build); probed
// once with a one-thread kernel.
bool wgmma_compiled();

}  // namespace moe::fused_moe::detail
#endif
