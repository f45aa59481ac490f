// Device side of the bulk tensor copies (TMA) and the shared-memory barriers
// (mbarrier) that pace them, sm_90 and newer. A copy started by tma_load_2d
// signals its barrier with the bytes it wrote ("transaction count"); a consumer
// waits for the barrier's phase to flip. One barrier serves many loads in turn:
// its phase parity alternates 0, 1, 0, ... with each completed round.
//
//   __shared__ alignas(8) uint64_t bar;
//   if (threadIdx.x == 0) { mbar_init(&bar, 1); fence_barrier_init(); }
//   __syncthreads();
//   if (threadIdx.x == 0) { mbar_arrive_expect_tx(&bar, tile_bytes); tma_load_2d(smem, &map, &bar, col, row); }
//   mbar_wait(&bar, /*parity=*/0);      // the tile is in smem, visible to every thread
//
// Compiled where __CUDA_ARCH__ >= 900 (FMOE_HAVE_TMA); the host side is
// kernels/fused_moe/tensor_map.hpp.
#pragma once
#include <cstdint>

#include "kernels/fused_moe/tensor_map.hpp"

// Kernel parameter qualifier for a TensorMap passed by value (CUDA only).
#if defined(__CUDACC__)
#define FMOE_GRID_CONSTANT __grid_constant__
#else
#define FMOE_GRID_CONSTANT
#endif

namespace moe::fused_moe::dev {

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define FMOE_HAVE_TMA 1

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// `arrivals` arrive() calls (arrive_expect_tx counts as one) complete a phase,
// together with the transaction bytes announced for it.
__device__ __forceinline__ void mbar_init(uint64_t* bar, uint32_t arrivals) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_addr(bar)), "r"(arrivals) : "memory");
}
// Makes initialised barriers visible to the async proxy (the copy engine).
__device__ __forceinline__ void fence_barrier_init() {
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}
__device__ __forceinline__ void mbar_arrive_expect_tx(uint64_t* bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_addr(bar)), "r"(bytes)
               : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint64_t* bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smem_addr(bar)) : "memory");
}
__device__ __forceinline__ bool mbar_try_wait(uint64_t* bar, uint32_t parity) {
  uint32_t done;
  asm volatile(
      "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}\n"
      : "=r"(done)
      : "r"(smem_addr(bar)), "r"(parity)
      : "memory");
  return done != 0;
}
// Waits until the phase with this parity has completed.
__device__ __forceinline__ void mbar_wait(uint64_t* bar, uint32_t parity) {
  while (!mbar_try_wait(bar, parity)) {
  }
}

// Arrives on `bar` once every cp.async this thread issued so far has landed. With
// .noinc the arrival is one of the barrier's expected arrivals (mbar_init counts it).
__device__ __forceinline__ void cp_async_mbar_arrive_noinc(uint64_t* bar) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(smem_addr(bar)) : "memory");
}

// One box of `map` at (col, row) (element coordinates, may be negative or run
// past the end: those elements read as zero) into dst (1024-byte aligned for the
// 128-byte swizzle); completes `bytes` of the barrier's transaction count.
__device__ __forceinline__ void tma_load_2d(void* dst, const TensorMap* map, uint64_t* bar, int32_t col, int32_t row) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4}], [%2];\n" ::"r"(
          smem_addr(dst)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(smem_addr(bar)), "r"(col), "r"(row)
      : "memory");
}

// ---- thread-block clusters (sm_90)
// This block's rank in its cluster.
__device__ __forceinline__ uint32_t cluster_ctarank() {
  uint32_t r;
  asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(r));
  return r;
}
// Every thread of every block of the cluster: what each wrote before (barrier
// initialisation included) is visible to all of them after.
__device__ __forceinline__ void cluster_sync() {
  asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;\n" ::: "memory");
}
// Arrives on the barrier at the same shared-memory offset as `bar` in block `cta`
// of this cluster. Release at CTA scope (the default): the arrival only says that this
// block's MMAs, complete (wgmma wait), read a slot the partner may now refill. The
// cluster-scope release cost a cluster-wide memory barrier (ERRBAR + CGAERRBAR in the
// SASS) per warp and slice: 36 % of the cluster tile's warp samples under ncu.
__device__ __forceinline__ void mbar_arrive_cluster(uint64_t* bar, uint32_t cta) {
  asm volatile(
      "{\n .reg .b32 remote;\n mapa.shared::cluster.u32 remote, %0, %1;\n"
      " mbarrier.arrive.shared::cluster.b64 _, [remote];\n}\n" ::"r"(smem_addr(bar)),
      "r"(cta)
      : "memory");
}
// tma_load_2d into the same shared-memory offset of every block of the cluster
// whose bit is set in `cta_mask`, completing the bytes on each one's barrier at
// `bar`'s offset.
__device__ __forceinline__ void tma_load_2d_multicast(void* dst, const TensorMap* map, uint64_t* bar, int32_t col,
                                                      int32_t row, uint16_t cta_mask) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes.multicast::cluster"
      " [%0], [%1, {%3, %4}], [%2], %5;\n" ::"r"(smem_addr(dst)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(smem_addr(bar)), "r"(col), "r"(row), "h"(cta_mask)
      : "memory");
}

#endif

}  // namespace moe::fused_moe::dev
