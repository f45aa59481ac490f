// Hopper warpgroup MMA (wgmma, sm_90a only) for the fused MoE tile kernel:
// D(64 x N, fp32) += A(64 x 16) * B(16 x N), both operands K-major in shared
// memory with the 128-byte swizzle, described by 64-bit matrix descriptors.
// The accumulator layout per warp w of the warpgroup is that of mma.sync m16n8
// repeated N/8 times (rows 16w.., d[4j + i] <-> row g + 8(i/2), col 8j + 2t + i%2),
// i.e. exactly MmaAtom's, so the tile kernel's epilogue serves both paths.
// The wgmma specialisations (this file's and the 8-bit layer's) are one macro each
// (MOE_WGMMA_ASM); nothing else here needs sm_90a.
// Everything is compiled only where __CUDA_ARCH_FEAT_SM90_ALL is defined (the
// -gencode=arch=compute_90a,code=sm_90a build); elsewhere the kernel body that
// would use it is replaced by a trap and the host refuses those configs.
#pragma once
#include <cstdint>

#include "kernels/fused_moe/fmoe_device.cuh"

namespace moe::fused_moe::dev {

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define FMOE_HAVE_WGMMA 1

// Shared-memory matrix descriptor: start address, LBO (unused for swizzled
// K-major operands: 1), SBO = 1024 B between 8-row groups, 128-byte swizzle.
// The 8-row x 128-byte swizzle atoms must start 1024-byte aligned.
__device__ __forceinline__ uint64_t wgmma_desc(uint32_t smem_addr) {
  uint64_t d = 0;
  d |= static_cast<uint64_t>((smem_addr & 0x3FFFF) >> 4);
  d |= static_cast<uint64_t>(1) << 16;
  d |= static_cast<uint64_t>(1024 >> 4) << 32;
  d |= static_cast<uint64_t>(1) << 62;
  return d;
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// Makes this thread's generic-proxy shared-memory writes (cp.async included)
// visible to the async proxy that wgmma reads through.
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

// OR of `pred` over the `threads` threads (a multiple of 32) that arrive at named
// barrier `id` (1..15; 0 is __syncthreads'): one warpgroup's decision, made uniform.
__device__ __forceinline__ bool barrier_or(uint32_t id, uint32_t threads, bool pred) {
  uint32_t r;
  asm volatile(
      "{\n .reg .pred p, q;\n setp.ne.u32 p, %1, 0;\n bar.red.or.pred q, %2, %3, p;\n selp.u32 %0, 1, 0, q;\n}\n"
      : "=r"(r)
      : "r"(static_cast<uint32_t>(pred)), "r"(id), "r"(threads)
      : "memory");
  return r != 0;
}

// Waits until `threads` threads (a multiple of 32) have arrived at named barrier `id`.
__device__ __forceinline__ void barrier_sync(uint32_t id, uint32_t threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// Moves registers between the warpgroups of a warp-specialized kernel: the
// producer gives up registers (dec), the MMA warpgroups take them (inc). Every
// warp of a warpgroup executes it; N is a multiple of 8 in [24, 256].
template <int N>
__device__ __forceinline__ void setmaxnreg_dec() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N));
}
template <int N>
__device__ __forceinline__ void setmaxnreg_inc() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N));
}

// The software pipeline of the wgmma tile kernels (bf16 and 8-bit) over the nk K
// slices from kt_begin: STAGES-2 slices of cp.async loads in flight plus one batch
// of wgmma, so the slot refilled at iteration `it`, (it-2)%STAGES, is free: every
// thread passed retire() of iteration it-1 (at least wait_group 1) before the barrier.
//   load(slot, k_tile)   issue one slice's copies into `slot`
//   mma(slot)            issue the wgmma batch of the slice in `slot`
//   retire(it)           after the commit: wgmma_wait<1>, or wgmma_wait<0> and a
//                        per-slice step (the block-scaled layer's group flush)
template <int STAGES, class Load, class Mma, class Retire>
__device__ __forceinline__ void wgmma_mainloop(int nk, int64_t kt_begin, Load&& load, Mma&& mma, Retire&& retire) {
#pragma unroll
  for (int s = 0; s < STAGES - 2; ++s) {
    if (s < nk) load(s, kt_begin + s);
    cp_async_commit();
  }
  for (int it = 0; it < nk; ++it) {
    cp_async_wait<STAGES - 3>();
    fence_proxy_async();
    __syncthreads();
    const int pre = it + STAGES - 2;
    if (pre < nk) load(pre % STAGES, kt_begin + pre);
    cp_async_commit();
    wgmma_fence();
    mma(it % STAGES);
    wgmma_commit();
    retire(it);
  }
  wgmma_wait<0>();
  cp_async_wait<0>();
}

// The wgmma inline asm, written once: R accumulator registers per thread (64 for
// N = 128, 128 for N = 256), updated in place ("+f"/"+r"), then the A and B
// descriptors and the scale-d predicate from `scale_d` (1: accumulate, 0: overwrite). TAIL: the instruction's
// immediates after the predicate (scale-a, scale-b and, for 16-bit types, the
// transposes).
#define MOE_WGMMA_REGS64 "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, p"
#define MOE_WGMMA_REGS128 "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}, %128, %129, p"
#define MOE_WGMMA_REGS96 "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95}, %96, %97, p"
#define MOE_WGMMA_PRED64 "setp.ne.b32 p, %66, 0;\n"
#define MOE_WGMMA_PRED96 "setp.ne.b32 p, %98, 0;\n"
#define MOE_WGMMA_PRED128 "setp.ne.b32 p, %130, 0;\n"
#define MOE_WGMMA_ACC8(K, r, i) K(r[i]), K(r[i + 1]), K(r[i + 2]), K(r[i + 3]), K(r[i + 4]), K(r[i + 5]), K(r[i + 6]), K(r[i + 7])
#define MOE_WGMMA_ACC64(K, r)                                                                                  \
  MOE_WGMMA_ACC8(K, r, 0), MOE_WGMMA_ACC8(K, r, 8), MOE_WGMMA_ACC8(K, r, 16), MOE_WGMMA_ACC8(K, r, 24),       \
      MOE_WGMMA_ACC8(K, r, 32), MOE_WGMMA_ACC8(K, r, 40), MOE_WGMMA_ACC8(K, r, 48), MOE_WGMMA_ACC8(K, r, 56)
#define MOE_WGMMA_ACC128(K, r) MOE_WGMMA_ACC64(K, r), MOE_WGMMA_ACC64(K, (r + 64))
#define MOE_WGMMA_ACC96(K, r)                                                                                  \
  MOE_WGMMA_ACC64(K, r), MOE_WGMMA_ACC8(K, r, 64), MOE_WGMMA_ACC8(K, r, 72), MOE_WGMMA_ACC8(K, r, 80),         \
      MOE_WGMMA_ACC8(K, r, 88)
#define MOE_WGMMA_ASM(R, INSTR, TAIL, K, r, desc_a, desc_b, scale_d)                                          \
  asm volatile("{\n"                                                                                           \
               ".reg .pred p;\n" MOE_WGMMA_PRED##R INSTR " " MOE_WGMMA_REGS##R TAIL ";\n"                     \
               "}\n"                                                                                           \
               : MOE_WGMMA_ACC##R(K, r)                                                                         \
               : "l"(desc_a), "l"(desc_b), "r"(scale_d))

template <int N, class Elem>
__device__ __forceinline__ void wgmma_m64k16(float* d, uint64_t desc_a, uint64_t desc_b);

template <>
__device__ __forceinline__ void wgmma_m64k16<128, Bf16>(float* d, uint64_t desc_a, uint64_t desc_b) {
  MOE_WGMMA_ASM(64, "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16", ", 1, 1, 0, 0", "+f", d, desc_a, desc_b, 1);
}
template <>
__device__ __forceinline__ void wgmma_m64k16<128, F16>(float* d, uint64_t desc_a, uint64_t desc_b) {
  MOE_WGMMA_ASM(64, "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16", ", 1, 1, 0, 0", "+f", d, desc_a, desc_b, 1);
}
template <>
__device__ __forceinline__ void wgmma_m64k16<256, Bf16>(float* d, uint64_t desc_a, uint64_t desc_b) {
  MOE_WGMMA_ASM(128, "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16", ", 1, 1, 0, 0", "+f", d, desc_a, desc_b, 1);
}
template <>
__device__ __forceinline__ void wgmma_m64k16<256, F16>(float* d, uint64_t desc_a, uint64_t desc_b) {
  MOE_WGMMA_ASM(128, "wgmma.mma_async.sync.aligned.m64n256k16.f32.f16.f16", ", 1, 1, 0, 0", "+f", d, desc_a, desc_b, 1);
}

#else
#define FMOE_HAVE_WGMMA 0
#endif

}  // namespace moe::fused_moe::dev
