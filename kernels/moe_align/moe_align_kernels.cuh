// Device code of moe_align_block_size (see moe_align.hpp for the contract).
//
// Deterministic ranks come from a stable counting sort:
//   * slots are split into contiguous ranges, one per warp (and per block);
//   * count pass: each warp counts its range per expert into its own column of a
//     shared-memory table tbl[warp][expert] (shared atomics: the counts do not
//     depend on their order);
//   * exclusive scan over (expert, block, warp) gives each warp the first output
//     position of each expert for its range;
//   * scatter pass: the warp walks its range again in slot order, kWarp slots at
//     a time; lanes holding the same expert find each other (match_any), the
//     lowest lane reads the running offset, each lane adds the number of
//     matching lanes below it, and the lowest lane advances the offset. So slots
//     of one expert land in ascending order, independent of scheduling.
// Shared memory is (warps x E) ints: E=4096 with one warp is 16 KiB; the host
// picks the warp count that fits (moe_align_host.cpp).
//
// Works for warp size 32 (CUDA) and 64 (HIP gfx9); no inline PTX.
#pragma once
#include <cstdint>

#include "kernels/moe_align/moe_align.hpp"
#include "moe/gpu_runtime.hpp"

namespace moe::align::detail {

#if defined(MOE_BACKEND_HIP)
using lanemask_t = unsigned long long;
#if defined(__AMDGCN_WAVEFRONT_SIZE)
constexpr int kWarp = __AMDGCN_WAVEFRONT_SIZE;
#else
constexpr int kWarp = 64;
#endif
#else
using lanemask_t = unsigned int;
constexpr int kWarp = 32;
#endif

// Shared scratch (kAlignScratchInts ints, moe_align.hpp): [0, warps) block-scan
// warp sums, then flags.
constexpr int kScratchInts = kAlignScratchInts;
constexpr int kScratchBad = 64;   // index of the out-of-range counter
constexpr int kScratchFlag = 65;  // index of the "last block" flag

struct AlignParams {
  const int32_t* topk_ids;
  const int32_t* expert_map;  // nullptr: identity
  int32_t* sorted_ids;
  int32_t* expert_ids;
  int32_t* num_post;
  int32_t* status;        // out-of-range entries seen
  unsigned int* ticket;   // K1 completion counter, zero between launches
  int32_t* table;         // num_blocks x (E + 1): counts, then offsets; column E = out-of-range count
  int32_t* starts;        // E + 1 padded exclusive starts, starts[E] = total
  int32_t* counts;        // E slots per expert
  int64_t n;              // M * top_k
  int64_t capacity;
  int64_t max_blocks;
  int64_t slots_per_block;
  int32_t num_experts;
  int32_t block_size;
  int32_t log2_bs;
  int32_t sentinel;
};

// ---- warp primitives (CUDA / HIP) --------------------------------------------

__device__ __forceinline__ int lane_id() { return static_cast<int>(threadIdx.x) & (kWarp - 1); }

__device__ __forceinline__ lanemask_t ballot(bool pred) {
#if defined(MOE_BACKEND_HIP)
  return __ballot(pred);
#else
  return __ballot_sync(0xffffffffu, pred);
#endif
}

__device__ __forceinline__ int shfl(int v, int src) {
#if defined(MOE_BACKEND_HIP)
  return __shfl(v, src, kWarp);
#else
  return __shfl_sync(0xffffffffu, v, src);
#endif
}

__device__ __forceinline__ int shfl_up(int v, int delta) {
#if defined(MOE_BACKEND_HIP)
  return __shfl_up(v, static_cast<unsigned int>(delta), kWarp);
#else
  return __shfl_up_sync(0xffffffffu, v, static_cast<unsigned int>(delta));
#endif
}

__device__ __forceinline__ int popc(lanemask_t m) {
#if defined(MOE_BACKEND_HIP)
  return static_cast<int>(__popcll(m));
#else
  return __popc(m);
#endif
}

// Index of the lowest set bit (m != 0).
__device__ __forceinline__ int first_lane(lanemask_t m) {
#if defined(MOE_BACKEND_HIP)
  return static_cast<int>(__ffsll(static_cast<unsigned long long>(m))) - 1;
#else
  return __ffs(static_cast<int>(m)) - 1;
#endif
}

__device__ __forceinline__ lanemask_t lanemask_lt() { return (lanemask_t{1} << lane_id()) - 1; }

// Orders shared-memory accesses of the lanes of one warp.
__device__ __forceinline__ void warp_sync() {
#if defined(MOE_BACKEND_HIP)
  __builtin_amdgcn_fence(__ATOMIC_RELEASE, "wavefront");
  __builtin_amdgcn_wave_barrier();
  __builtin_amdgcn_fence(__ATOMIC_ACQUIRE, "wavefront");
#else
  __syncwarp();
#endif
}

// Lanes whose v equals this lane's v (the whole warp must call it).
__device__ __forceinline__ lanemask_t match_any(int v) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 700
  return __match_any_sync(0xffffffffu, v);
#else
  lanemask_t todo = ballot(true);
  lanemask_t mine = 0;
  while (todo) {
    const int lv = shfl(v, first_lane(todo));
    const lanemask_t m = ballot(v == lv);
    if (v == lv) mine = m;
    todo &= ~m;
  }
  return mine;
#endif
}

// A load from global memory that bypasses the (non-coherent) L1, for data other
// blocks of the same launch wrote.
__device__ __forceinline__ int load_coherent(const int32_t* p) {
#if defined(MOE_BACKEND_HIP)
  return *reinterpret_cast<const volatile int32_t*>(p);
#else
  return __ldcg(p);
#endif
}

// ---- building blocks ------------------------------------------------------------

// The (local) expert of slot i, or -1 when the slot is dropped (masked id, remote
// expert, i past `end`, or out of range: counted in `bad`). Never reads out of
// bounds: the id is range-checked before indexing expert_map.
__device__ __forceinline__ int slot_expert(const AlignParams& p, int64_t i, int64_t end, int& bad) {
  if (i >= end) return -1;
  const int id = p.topk_ids[i];
  if (static_cast<unsigned>(id) >= static_cast<unsigned>(p.num_experts)) {
    bad += id != -1;
    return -1;
  }
  if (p.expert_map == nullptr) return id;
  const int m = p.expert_map[id];
  if (static_cast<unsigned>(m) >= static_cast<unsigned>(p.num_experts)) {
    bad += m != -1;
    return -1;
  }
  return m;
}

constexpr int kUnroll = 4;

// Count pass of one warp over [lo, hi): col[e] += number of slots of expert e.
__device__ __forceinline__ void warp_count(const AlignParams& p, int64_t lo, int64_t hi, int* col, int& bad) {
  const int lane = lane_id();
  for (int64_t base = lo; base < hi; base += int64_t{kUnroll} * kWarp) {
    int e[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) e[u] = slot_expert(p, base + u * kWarp + lane, hi, bad);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u)
      if (e[u] >= 0) atomicAdd(&col[e[u]], 1);
  }
}

// Scatter pass of one warp over [lo, hi) (same ranges as warp_count): col[e] holds
// the next output position of expert e for this warp.
__device__ __forceinline__ void warp_scatter(const AlignParams& p, int64_t lo, int64_t hi, int* col) {
  const int lane = lane_id();
  const lanemask_t below = lanemask_lt();
  int unused = 0;
  for (int64_t base = lo; base < hi; base += int64_t{kUnroll} * kWarp) {
    int e[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) e[u] = slot_expert(p, base + u * kWarp + lane, hi, unused);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      if (base + u * kWarp >= hi) break;  // uniform across the warp
      const lanemask_t peers = match_any(e[u]);
      const int leader = first_lane(peers);
      const bool lead = e[u] >= 0 && lane == leader;
      int at = lead ? col[e[u]] : 0;
      at = shfl(at, leader);
      if (e[u] >= 0) p.sorted_ids[at + popc(peers & below)] = static_cast<int32_t>(base + u * kWarp + lane);
      if (lead) col[e[u]] = at + popc(peers);
      warp_sync();
    }
  }
}

// In-place exclusive scan of a[0..n) in shared memory by the whole block;
// returns the total to every thread. scratch: kScratchInts shared ints (only
// [0, warps) are used).
__device__ __forceinline__ int block_exclusive_scan(int* a, int n, int* scratch) {
  const int T = static_cast<int>(blockDim.x), tid = static_cast<int>(threadIdx.x);
  const int lane = lane_id(), warp = tid / kWarp, nw = T / kWarp;
  const int per = (n + T - 1) / T;
  const int lo = min(n, tid * per), hi = min(n, lo + per);
  int s = 0;
  for (int i = lo; i < hi; ++i) s += a[i];
  int x = s;
#pragma unroll
  for (int d = 1; d < kWarp; d <<= 1) {
    const int y = shfl_up(x, d);
    if (lane >= d) x += y;
  }
  if (lane == kWarp - 1) scratch[warp] = x;
  __syncthreads();
  if (warp == 0) {
    int v = lane < nw ? scratch[lane] : 0;
#pragma unroll
    for (int d = 1; d < kWarp; d <<= 1) {
      const int y = shfl_up(v, d);
      if (lane >= d) v += y;
    }
    if (lane < nw) scratch[lane] = v;
  }
  __syncthreads();
  int run = x - s + (warp > 0 ? scratch[warp - 1] : 0);
  for (int i = lo; i < hi; ++i) {
    const int c = a[i];
    a[i] = run;
    run += c;
  }
  const int total = scratch[nw - 1];
  __syncthreads();
  return total;
}

// Largest e in [0, E) with starts[e] <= pos (pos < starts[E]): the non-empty
// expert whose padded segment holds position pos.
template <typename Ptr>
__device__ __forceinline__ int find_expert(Ptr starts, int E, int pos) {
  int lo = 0, hi = E;
  while (hi - lo > 1) {
    const int mid = (lo + hi) >> 1;
    if (starts[mid] <= pos) lo = mid; else hi = mid;
  }
  return lo;
}

// This warp's part of [lo, hi) split into `warps` contiguous ranges (multiples of kWarp).
__device__ __forceinline__ void warp_range(int64_t lo, int64_t hi, int warps, int w, int64_t& wlo, int64_t& whi) {
  const int64_t len = hi - lo;
  const int64_t per = ((len + warps - 1) / warps + kWarp - 1) / kWarp * kWarp;
  wlo = lo + min(len, per * w);
  whi = lo + min(len, per * (w + 1));
}

// ---- kernels ------------------------------------------------------------------------

// One launch, one block: everything in shared memory.
// smem: tbl[W*E] | start[E+1] | cnt[E] | scratch[kScratchInts]
__global__ void __launch_bounds__(1024) align_single_block_kernel(AlignParams p) {
  extern __shared__ int smem[];
  const int E = p.num_experts, T = static_cast<int>(blockDim.x), tid = static_cast<int>(threadIdx.x);
  const int W = T / kWarp, w = tid / kWarp, lane = lane_id();
  const int bs_mask = p.block_size - 1;
  int* tbl = smem;
  int* start = tbl + W * E;
  int* cnt = start + E + 1;
  int* scratch = cnt + E;
  for (int i = tid; i < W * E; i += T) tbl[i] = 0;
  if (tid == 0) scratch[kScratchBad] = 0;
  __syncthreads();

  int64_t lo, hi;
  warp_range(0, p.n, W, w, lo, hi);
  int bad = 0;
  warp_count(p, lo, hi, tbl + w * E, bad);
  if (bad) atomicAdd(&scratch[kScratchBad], bad);
  __syncthreads();

  for (int e = tid; e < E; e += T) {
    int c = 0;
    for (int v = 0; v < W; ++v) c += tbl[v * E + e];
    cnt[e] = c;
    start[e] = (c + bs_mask) & ~bs_mask;
  }
  __syncthreads();
  const int total = block_exclusive_scan(start, E, scratch);
  if (tid == 0) start[E] = total;
  for (int e = tid; e < E; e += T) {
    int run = start[e];
    for (int v = 0; v < W; ++v) {
      const int c = tbl[v * E + e];
      tbl[v * E + e] = run;
      run += c;
    }
  }
  __syncthreads();
  warp_scatter(p, lo, hi, tbl + w * E);

  // Padding after each expert's slots (< block_size per expert), one warp per expert.
  for (int e = w; e < E; e += W)
    for (int j = start[e] + cnt[e] + lane; j < start[e + 1]; j += kWarp) p.sorted_ids[j] = p.sentinel;
  // Tail past the end.
  for (int64_t j = total + tid; j < p.capacity; j += T) p.sorted_ids[j] = p.sentinel;
  const int64_t used = total >> p.log2_bs;
  for (int64_t j = tid; j < p.max_blocks; j += T)
    p.expert_ids[j] = j < used ? find_expert(start, E, static_cast<int>(j << p.log2_bs)) : -1;
  if (tid == 0) {
    *p.num_post = total;
    *p.status = scratch[kScratchBad];
  }
}

// MultiBlock K1: histogram of this block's chunk into table row blockIdx.x; the
// last block to finish scans the table into offsets.
// smem: hist[E+1] | scratch[kScratchInts]
__global__ void __launch_bounds__(1024) align_count_kernel(AlignParams p) {
  extern __shared__ int smem[];
  const int E = p.num_experts, T = static_cast<int>(blockDim.x), tid = static_cast<int>(threadIdx.x);
  const int G = static_cast<int>(gridDim.x);
  const int bs_mask = p.block_size - 1;
  int* hist = smem;
  int* scratch = hist + E + 1;
  for (int i = tid; i <= E; i += T) hist[i] = 0;
  __syncthreads();

  const int64_t lo = static_cast<int64_t>(blockIdx.x) * p.slots_per_block;
  const int64_t hi = min(p.n, lo + p.slots_per_block);
  int bad = 0;
  for (int64_t base = lo; base < hi; base += int64_t{kUnroll} * T) {
    int e[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) e[u] = slot_expert(p, base + u * T + tid, hi, bad);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u)
      if (e[u] >= 0) atomicAdd(&hist[e[u]], 1);
  }
  if (bad) atomicAdd(&hist[E], bad);
  __syncthreads();
  int32_t* row = p.table + static_cast<int64_t>(blockIdx.x) * (E + 1);
  for (int i = tid; i <= E; i += T) row[i] = hist[i];
  __threadfence();
  __syncthreads();
  if (tid == 0) scratch[kScratchFlag] = atomicAdd(p.ticket, 1u) == static_cast<unsigned>(G - 1);
  __syncthreads();
  if (!scratch[kScratchFlag]) return;

  // Last block: every row is written and fenced.
  __threadfence();
  int* start = hist;
  for (int e = tid; e < E; e += T) {
    int c = 0;
    for (int b = 0; b < G; ++b) c += load_coherent(p.table + static_cast<int64_t>(b) * (E + 1) + e);
    p.counts[e] = c;
    start[e] = (c + bs_mask) & ~bs_mask;
  }
  __syncthreads();
  const int total = block_exclusive_scan(start, E, scratch);
  for (int e = tid; e < E; e += T) {
    int run = start[e];
    p.starts[e] = run;
    for (int b = 0; b < G; ++b) {
      int32_t* cell = p.table + static_cast<int64_t>(b) * (E + 1) + e;
      const int c = load_coherent(cell);
      *cell = run;
      run += c;
    }
  }
  if (tid == 0) {
    int bad_total = 0;
    for (int b = 0; b < G; ++b) bad_total += load_coherent(p.table + static_cast<int64_t>(b) * (E + 1) + E);
    p.starts[E] = total;
    *p.num_post = total;
    *p.status = bad_total;
    *p.ticket = 0u;  // every block has taken its ticket: ready for the next launch
  }
}

// MultiBlock K2: re-rank this block's chunk per warp from the block's offsets,
// scatter; then the grid fills padding, tail and expert_ids.
// smem: tbl[W*E]
__global__ void __launch_bounds__(1024) align_scatter_kernel(AlignParams p) {
  extern __shared__ int smem[];
  const int E = p.num_experts, T = static_cast<int>(blockDim.x), tid = static_cast<int>(threadIdx.x);
  const int W = T / kWarp, w = tid / kWarp, lane = lane_id();
  int* tbl = smem;
  for (int i = tid; i < W * E; i += T) tbl[i] = 0;
  __syncthreads();

  const int64_t lo = static_cast<int64_t>(blockIdx.x) * p.slots_per_block;
  const int64_t hi = max(lo, min(p.n, lo + p.slots_per_block));  // empty past the end
  int64_t wlo, whi;
  warp_range(lo, hi, W, w, wlo, whi);
  int unused = 0;
  warp_count(p, wlo, whi, tbl + w * E, unused);
  __syncthreads();
  const int32_t* row = p.table + static_cast<int64_t>(blockIdx.x) * (E + 1);
  for (int e = tid; e < E; e += T) {
    int run = row[e];
    for (int v = 0; v < W; ++v) {
      const int c = tbl[v * E + e];
      tbl[v * E + e] = run;
      run += c;
    }
  }
  __syncthreads();
  warp_scatter(p, wlo, whi, tbl + w * E);

  const int total = p.starts[E];
  const int gw = static_cast<int>(blockIdx.x) * W + w, GW = static_cast<int>(gridDim.x) * W;
  for (int e = gw; e < E; e += GW)
    for (int j = p.starts[e] + p.counts[e] + lane; j < p.starts[e + 1]; j += kWarp) p.sorted_ids[j] = p.sentinel;
  const int64_t gt = static_cast<int64_t>(blockIdx.x) * T + tid, GT = static_cast<int64_t>(gridDim.x) * T;
  for (int64_t j = total + gt; j < p.capacity; j += GT) p.sorted_ids[j] = p.sentinel;
  const int64_t used = total >> p.log2_bs;
  for (int64_t j = gt; j < p.max_blocks; j += GT)
    p.expert_ids[j] = j < used ? find_expert(p.starts, E, static_cast<int>(j << p.log2_bs)) : -1;
}

}  // namespace moe::align::detail
