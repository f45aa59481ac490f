// Device code of moe_align_block_size (see moe_align.hpp for the contract).
//
// Deterministic ranks come from a stable counting sort:
//   * slots are split into contiguous ranges, one per block and, inside a block,
//     one per warp;
//   * count pass: the warp reads kWarp slots at a time; lanes holding the same
//     expert find each other (match_any) and the lowest of them adds their number
//     to the warp's own column of a shared table tbl[warp][expert];
//   * an exclusive scan over (expert, block, warp) gives each warp the first
//     output position of each expert within its range;
//   * scatter pass: the warp walks its range again in slot order (from registers
//     when the range fits in one chunk); the lowest matching lane reads the
//     running offset, every lane adds the number of matching lanes below it,
//     and the lowest lane advances the offset. So the slots of one expert land
//     in ascending order, independent of scheduling: bit-identical every run.
// Padding and the tail past the end are pre-filled with the sentinel (the
// scatter overwrites the real slots after a barrier or a kernel boundary).
// Shared memory is (warps x E) ints plus O(E): E=4096 with one warp is 16 KiB;
// the host picks the warp count that fits (moe_align_host.cpp).
//
// Works for warp size 32 (CUDA) and 64 (HIP gfx9); no inline PTX.
#pragma once
#include <cstdint>

#include "kernels/moe_align/moe_align.hpp"
#include "moe/gpu_runtime.hpp"
#include "moe/warp.cuh"

namespace moe::align::detail {

using warp::ballot;
using warp::first_lane;
using warp::kWarp;
using warp::lane_id;
using warp::lanemask_lt;
using warp::lanemask_t;
using warp::popc;
using warp::shfl;
using warp::shfl_up;
using warp::shfl_xor;
using warp::warp_sum;
using warp::warp_sync;

// Shared scratch (kAlignScratchInts ints, moe_align.hpp): [0, warps) block-scan
// warp sums, then counters.
constexpr int kScratchInts = kAlignScratchInts;
constexpr int kScratchBad = 64;  // out-of-range entries seen by this block

// Slots per lane held in registers per chunk: a warp handles kChunk*kWarp slots
// per chunk (256 on CUDA), and keeps them between the count and scatter passes
// when its whole range is one chunk.
constexpr int kChunk = 8;

// K2 threads per block at most (leaves 128 registers per thread on CUDA).
constexpr int kMultiRankThreadsMax = kAlignMultiRankThreadsMax;

// K2 reduces the count table with one thread per row up to this many blocks
// (columns), with one warp per row above.
constexpr int kRowPerThreadMaxBlocks = 64;

struct AlignParams {
  const int32_t* topk_ids;
  const int32_t* expert_map;  // nullptr: identity
  int32_t* sorted_ids;
  int32_t* expert_ids;
  int32_t* num_post;
  int32_t* status;  // out-of-range entries seen
  int32_t* table;   // MultiBlock: (E + 1) x num_blocks, expert-major; row E = out-of-range counts
  int64_t n;        // M * top_k
  int64_t capacity;
  int64_t max_blocks;
  int64_t slots_per_block;
  int32_t num_blocks;
  int32_t num_experts;
  int32_t block_size;
  int32_t log2_bs;
  int32_t sentinel;
  int32_t key_bits;  // bit width of num_experts: match keys e+1 lie in [0, 2^key_bits)
};

// Lanes whose v equals this lane's v (the whole warp must call it), for v in
// [-1, 2^bits - 1): one ballot per bit of the key v+1 (bits = 9 for E = 256).
// Cost is independent of the number of distinct values in the warp, unlike
// __match_any_sync (serialised per distinct value) or a ballot-per-value loop.
__device__ __forceinline__ lanemask_t match_any(int v, int bits) {
  const unsigned key = static_cast<unsigned>(v + 1);
  lanemask_t mine = ballot(true);
  for (int b = 0; b < bits; ++b) {
    const bool set = (key >> b) & 1u;
    const lanemask_t m = ballot(set);
    mine &= set ? m : ~m;
  }
  return mine;
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

// kChunk*kWarp consecutive slots of one warp: lane l holds slots base + r*kWarp + l.
struct Chunk {
  int e[kChunk];
  lanemask_t peers[kChunk];
};

__device__ __forceinline__ void load_chunk(const AlignParams& p, int64_t base, int64_t hi, Chunk& c, int& bad) {
  const int lane = lane_id();
#pragma unroll
  for (int r = 0; r < kChunk; ++r) c.e[r] = slot_expert(p, base + r * kWarp + lane, hi, bad);
}

// Match masks of one chunk (all lanes of the warp call it).
__device__ __forceinline__ void match_chunk(int64_t base, int64_t hi, Chunk& c, int bits) {
#pragma unroll
  for (int r = 0; r < kChunk; ++r) c.peers[r] = base + r * kWarp < hi ? match_any(c.e[r], bits) : 0;  // uniform test
}

// Count pass over one chunk: col[e] += slots of expert e (the lowest matching lane
// adds for all of them). Keeps the match masks for the scatter pass.
__device__ __forceinline__ void count_chunk(int64_t base, int64_t hi, Chunk& c, int* col, int bits) {
  const int lane = lane_id();
  match_chunk(base, hi, c, bits);
#pragma unroll
  for (int r = 0; r < kChunk; ++r) {
    if (base + r * kWarp >= hi) break;  // uniform across the warp
    if (c.e[r] >= 0 && lane == first_lane(c.peers[r])) col[c.e[r]] += popc(c.peers[r]);
    warp_sync();
  }
}

// Scatter pass over one chunk (after count_chunk on the same Chunk): col[e] is
// this warp's next output position of expert e; out is global or shared memory.
__device__ __forceinline__ void scatter_chunk(int64_t base, int64_t hi, const Chunk& c, int* col, int32_t* out) {
  const int lane = lane_id();
  const lanemask_t below = lanemask_lt();
#pragma unroll
  for (int r = 0; r < kChunk; ++r) {
    if (base + r * kWarp >= hi) break;  // uniform across the warp
    const int e = c.e[r];
    const lanemask_t peers = c.peers[r];
    const int leader = first_lane(peers);
    const bool lead = e >= 0 && lane == leader;
    int at = lead ? col[e] : 0;
    at = shfl(at, leader);
    if (e >= 0) out[at + popc(peers & below)] = static_cast<int32_t>(base + r * kWarp + lane);
    if (lead) col[e] = at + popc(peers);
    warp_sync();
  }
}

// This warp's part of [lo, hi) split into `warps` contiguous ranges (multiples of kWarp).
__device__ __forceinline__ void warp_range(int64_t lo, int64_t hi, int warps, int w, int64_t& wlo, int64_t& whi) {
  const int64_t len = hi > lo ? hi - lo : 0;
  const int64_t per = ((len + warps - 1) / warps + kWarp - 1) / kWarp * kWarp;
  wlo = lo + min(len, per * w);
  whi = lo + min(len, per * (w + 1));
}

// Count pass of one warp over [wlo, whi) whose first chunk is already loaded
// into `first` (load_chunk); the first chunk keeps its match masks.
__device__ __forceinline__ void warp_count(const AlignParams& p, int64_t wlo, int64_t whi, int* col, Chunk& first,
                                           int& bad) {
  count_chunk(wlo, whi, first, col, p.key_bits);
  for (int64_t base = wlo + int64_t{kChunk} * kWarp; base < whi; base += int64_t{kChunk} * kWarp) {
    Chunk c;
    load_chunk(p, base, whi, c, bad);
    count_chunk(base, whi, c, col, p.key_bits);
  }
}

// Scatter pass of one warp over the same range; re-reads chunks after the first.
__device__ __forceinline__ void warp_scatter(const AlignParams& p, int64_t wlo, int64_t whi, int* col,
                                             const Chunk& first, int32_t* out) {
  scatter_chunk(wlo, whi, first, col, out);
  int unused = 0;
  for (int64_t base = wlo + int64_t{kChunk} * kWarp; base < whi; base += int64_t{kChunk} * kWarp) {
    Chunk c;
    load_chunk(p, base, whi, c, unused);
    match_chunk(base, whi, c, p.key_bits);
    scatter_chunk(base, whi, c, col, out);
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
__device__ __forceinline__ int find_expert(const int* starts, int E, int pos) {
  int lo = 0, hi = E;
  while (hi - lo > 1) {
    const int mid = (lo + hi) >> 1;
    if (starts[mid] <= pos) lo = mid; else hi = mid;
  }
  return lo;
}

// out[begin, end) = v by `nthreads` threads (this one is `t`), 16-byte stores
// where the pointer alignment allows.
__device__ __forceinline__ void fill_ints(int32_t* out, int64_t begin, int64_t end, int32_t v, int64_t t,
                                          int64_t nthreads) {
  if (begin >= end) return;
  // First index at a 16-byte boundary (the base may be only 4-byte aligned).
  const int64_t mis = static_cast<int64_t>((reinterpret_cast<uintptr_t>(out + begin) >> 2) & 3);
  const int64_t head_end = min(end, begin + ((4 - mis) & 3));
  if (t < head_end - begin) out[begin + t] = v;
  const int64_t nvec = (end - head_end) / 4;
  int4* vec = reinterpret_cast<int4*>(out + head_end);
  const int4 v4 = make_int4(v, v, v, v);
  for (int64_t i = t; i < nvec; i += nthreads) vec[i] = v4;
  const int64_t tail = head_end + nvec * 4;
  if (t < end - tail) out[tail + t] = v;
}

// Padded per-warp starting offsets: tbl[w][e] := start of (expert e, warp w),
// given base[e] (the block's first position of e) in `run0`.
__device__ __forceinline__ void warp_offsets(int* tbl, int W, int E, int e, int run0) {
  int run = run0;
  for (int v = 0; v < W; ++v) {
    const int c = tbl[v * E + e];
    tbl[v * E + e] = run;
    run += c;
  }
}

// ---- kernels ------------------------------------------------------------------------

// SingleBlock: one launch, one block, everything in shared memory. With
// kStage the whole output is built in shared memory and copied out coalesced.
// smem: tbl[W*E] | start[E+1] | scratch[kScratchInts] | pad to 16 B | (kStage) stage[capacity]
template <bool kStage>
__global__ void __launch_bounds__(1024) align_single_block_kernel(AlignParams p) {
  extern __shared__ __align__(16) int smem[];
  const int E = p.num_experts, T = static_cast<int>(blockDim.x), tid = static_cast<int>(threadIdx.x);
  const int W = T / kWarp, w = tid / kWarp;
  const int bs_mask = p.block_size - 1;
  int* tbl = smem;
  int* start = tbl + W * E;
  int* scratch = start + E + 1;
  int32_t* stage = smem + ((W * E + E + 1 + kScratchInts + 3) & ~3);  // 16-byte aligned
  int32_t* out = kStage ? stage : p.sorted_ids;

  int64_t lo, hi;
  warp_range(0, p.n, W, w, lo, hi);
  int bad = 0;
  Chunk first;
  load_chunk(p, lo, hi, first, bad);  // in flight during the fills below

  // Sentinel everywhere first; the scatter overwrites the real slots after the
  // barriers below (shared stage, or global memory ordered by __syncthreads).
  fill_ints(out, 0, p.capacity, p.sentinel, tid, T);
  for (int i = tid; i < W * E; i += T) tbl[i] = 0;
  if (tid == 0) scratch[kScratchBad] = 0;
  __syncthreads();

  warp_count(p, lo, hi, tbl + w * E, first, bad);
  if (bad) atomicAdd(&scratch[kScratchBad], bad);
  __syncthreads();

  for (int e = tid; e < E; e += T) {
    int c = 0;
    for (int v = 0; v < W; ++v) c += tbl[v * E + e];
    start[e] = (c + bs_mask) & ~bs_mask;
  }
  __syncthreads();
  const int total = block_exclusive_scan(start, E, scratch);
  if (tid == 0) start[E] = total;
  for (int e = tid; e < E; e += T) warp_offsets(tbl, W, E, e, start[e]);
  __syncthreads();
  warp_scatter(p, lo, hi, tbl + w * E, first, out);

  const int64_t used = total >> p.log2_bs;
  for (int64_t j = tid; j < p.max_blocks; j += T)
    p.expert_ids[j] = j < used ? find_expert(start, E, static_cast<int>(j << p.log2_bs)) : -1;
  if constexpr (kStage) {
    __syncthreads();
    // Copy out: the global pointer's alignment decides the vector width.
    if ((reinterpret_cast<uintptr_t>(p.sorted_ids) & 15) == 0) {
      const int64_t nvec = p.capacity / 4;
      const int4* src = reinterpret_cast<const int4*>(stage);
      int4* dst = reinterpret_cast<int4*>(p.sorted_ids);
      for (int64_t i = tid; i < nvec; i += T) dst[i] = src[i];
      for (int64_t i = nvec * 4 + tid; i < p.capacity; i += T) p.sorted_ids[i] = stage[i];
    } else {
      for (int64_t i = tid; i < p.capacity; i += T) p.sorted_ids[i] = stage[i];
    }
  }
  if (tid == 0) {
    *p.num_post = total;
    *p.status = scratch[kScratchBad];
  }
}

// MultiBlock K1: histogram of this block's chunk into column blockIdx.x of the
// (E+1) x G table; the grid pre-fills sorted_token_ids with the sentinel.
// smem: hist[E+1]
__global__ void __launch_bounds__(1024) align_count_kernel(AlignParams p) {
  extern __shared__ __align__(16) int smem[];
  const int E = p.num_experts, T = static_cast<int>(blockDim.x), tid = static_cast<int>(threadIdx.x);
  const int G = static_cast<int>(gridDim.x), b = static_cast<int>(blockIdx.x);
  int* hist = smem;
  for (int i = tid; i <= E; i += T) hist[i] = 0;
  __syncthreads();

  const int64_t lo = static_cast<int64_t>(b) * p.slots_per_block;
  const int64_t hi = min(p.n, lo + p.slots_per_block);
  int bad = 0;
  constexpr int U = 4;
  for (int64_t base = lo; base < hi; base += int64_t{U} * T) {
    int e[U];
#pragma unroll
    for (int u = 0; u < U; ++u) e[u] = slot_expert(p, base + u * T + tid, hi, bad);
#pragma unroll
    for (int u = 0; u < U; ++u)
      if (e[u] >= 0) atomicAdd(&hist[e[u]], 1);
  }
  if (bad) atomicAdd(&hist[E], bad);
  fill_ints(p.sorted_ids, 0, p.capacity, p.sentinel, static_cast<int64_t>(b) * T + tid, static_cast<int64_t>(G) * T);
  __syncthreads();
  for (int e = tid; e <= E; e += T) p.table[static_cast<int64_t>(e) * G + b] = hist[e];
}

// The indices of the multi-block ranking kernels (K2 and Fused): experts, threads,
// this thread, warps, this warp, lane, blocks, this block, block_size - 1.
struct RankIndices {
  int E, T, tid, W, w, lane, G, b, bs_mask;
};
__device__ __forceinline__ RankIndices rank_indices(const AlignParams& p) {
  const int T = static_cast<int>(blockDim.x), tid = static_cast<int>(threadIdx.x);
  return {p.num_experts, T, tid, T / kWarp, tid / kWarp, lane_id(),
          static_cast<int>(gridDim.x), static_cast<int>(blockIdx.x), p.block_size - 1};
}

// MultiBlock K2: every block reduces the table (totals of all blocks, and of the
// blocks before it), scans the padded totals, re-ranks its chunk per warp and
// scatters; the grid writes expert_ids.
// smem: tbl[W*E] | start[E+1] | base[E] | scratch[kScratchInts]
__global__ void __launch_bounds__(kMultiRankThreadsMax) align_scatter_kernel(AlignParams p) {
  extern __shared__ __align__(16) int smem[];
  const auto [E, T, tid, W, w, lane, G, b, bs_mask] = rank_indices(p);
  int* tbl = smem;
  int* start = tbl + W * E;
  int* before = start + E + 1;
  int* scratch = before + E;
  for (int i = tid; i < W * E; i += T) tbl[i] = 0;
  __syncthreads();

  const int64_t lo = static_cast<int64_t>(b) * p.slots_per_block;
  const int64_t hi = max(lo, min(p.n, lo + p.slots_per_block));  // empty past the end
  int64_t wlo, whi;
  warp_range(lo, hi, W, w, wlo, whi);
  int unused = 0;
  Chunk first;
  load_chunk(p, wlo, whi, first, unused);  // in flight during the table reduction

  // Table reduction: totals of all blocks, and of the blocks before b.
  if (G <= kRowPerThreadMaxBlocks) {
    // One thread per expert row: G independent loads in flight, no shuffles
    // (a warp per row cost a round of L2 latency plus shuffle chains per 8 rows).
    for (int e = tid; e <= E; e += T) {
      const int32_t* row = p.table + static_cast<int64_t>(e) * G;
      int a = 0, q = 0;
#pragma unroll 8
      for (int c = 0; c < G; ++c) {
        const int v = row[c];
        a += v;
        q += c < b ? v : 0;
      }
      if (e < E) {
        start[e] = (a + bs_mask) & ~bs_mask;
        before[e] = q;
      } else {
        scratch[kScratchBad] = a;
      }
    }
  } else {
    // One warp per expert row, kRows rows per round so their loads are in flight together.
    constexpr int kRows = 8;
    for (int e0 = w; e0 <= E; e0 += kRows * W) {
      int all[kRows], pre[kRows];
#pragma unroll
      for (int k = 0; k < kRows; ++k) all[k] = pre[k] = 0;
      for (int c0 = 0; c0 < G; c0 += kWarp) {
        const int c = c0 + lane;
        int v[kRows];
#pragma unroll
        for (int k = 0; k < kRows; ++k) {
          const int e = e0 + k * W;
          v[k] = (e <= E && c < G) ? p.table[static_cast<int64_t>(e) * G + c] : 0;
        }
#pragma unroll
        for (int k = 0; k < kRows; ++k) {
          all[k] += v[k];
          pre[k] += c < b ? v[k] : 0;
        }
      }
#pragma unroll
      for (int k = 0; k < kRows; ++k) {
        const int e = e0 + k * W;  // uniform across the warp
        if (e > E) break;
        const int a = warp_sum(all[k]), q = warp_sum(pre[k]);
        if (lane == 0) {
          if (e < E) {
            start[e] = (a + bs_mask) & ~bs_mask;
            before[e] = q;
          } else {
            scratch[kScratchBad] = a;
          }
        }
      }
    }
  }

  // Count pass (first chunk already loaded), then any further chunks.
  warp_count(p, wlo, whi, tbl + w * E, first, unused);
  __syncthreads();
  const int bad_total = scratch[kScratchBad];  // read before the scan reuses nothing past [0, warps)
  const int total = block_exclusive_scan(start, E, scratch);
  if (tid == 0) start[E] = total;
  for (int e = tid; e < E; e += T) warp_offsets(tbl, W, E, e, start[e] + before[e]);
  __syncthreads();
  warp_scatter(p, wlo, whi, tbl + w * E, first, p.sorted_ids);

  const int64_t used = total >> p.log2_bs;
  const int64_t gt = static_cast<int64_t>(b) * T + tid, GT = static_cast<int64_t>(G) * T;
  for (int64_t j = gt; j < p.max_blocks; j += GT)
    p.expert_ids[j] = j < used ? find_expert(start, E, static_cast<int>(j << p.log2_bs)) : -1;
  if (b == 0 && tid == 0) {
    *p.num_post = total;
    *p.status = bad_total;
  }
}

// Fused: one launch, several blocks, no inter-block communication. Every block
// histograms ALL slots itself (shared atomics; split into the slots before its
// own range and the rest), so every block knows every expert's padded start and
// the count of its earlier blocks; it then ranks and scatters its own range
// like K2. The sentinel goes only where no slot lands: block b pads the experts
// of its share [b*E/G, (b+1)*E/G) and a share of the tail [total, capacity), so
// no write of one block can race with another's and no pre-fill is needed.
// smem: tbl[W*E] | start[E+1] | before[E] | cnt[E+1] | scratch[kScratchInts]
__global__ void __launch_bounds__(1024) align_fused_kernel(AlignParams p) {
  extern __shared__ __align__(16) int smem[];
  const auto [E, T, tid, W, w, lane, G, b, bs_mask] = rank_indices(p);
  int* tbl = smem;
  int* start = tbl + W * E;
  int* before = start + E + 1;
  int* cnt = before + E;  // [E] = out-of-range entries of all slots
  int* scratch = cnt + E + 1;
  for (int i = tid; i < W * E; i += T) tbl[i] = 0;
  for (int i = tid; i < E; i += T) before[i] = 0;
  for (int i = tid; i <= E; i += T) cnt[i] = 0;

  const int64_t lo = min(p.n, static_cast<int64_t>(b) * p.slots_per_block);
  const int64_t hi = min(p.n, lo + p.slots_per_block);
  int64_t wlo, whi;
  warp_range(lo, hi, W, w, wlo, whi);
  int unused = 0;
  Chunk first;
  load_chunk(p, wlo, whi, first, unused);
  __syncthreads();

  // Histogram of all slots: [0, lo) into before, [lo, n) into cnt.
  int bad = 0;
  constexpr int U = 8;
  for (int64_t base = 0; base < p.n; base += int64_t{U} * T) {
    int e[U];
#pragma unroll
    for (int u = 0; u < U; ++u) e[u] = slot_expert(p, base + u * T + tid, p.n, bad);
#pragma unroll
    for (int u = 0; u < U; ++u)
      if (e[u] >= 0) atomicAdd(base + u * T + tid < lo ? &before[e[u]] : &cnt[e[u]], 1);
  }
  if (bad) atomicAdd(&cnt[E], bad);
  warp_count(p, wlo, whi, tbl + w * E, first, unused);
  __syncthreads();
  for (int e = tid; e < E; e += T) {
    const int a = before[e] + cnt[e];
    cnt[e] = a;
    start[e] = (a + bs_mask) & ~bs_mask;
  }
  __syncthreads();
  const int total = block_exclusive_scan(start, E, scratch);
  if (tid == 0) start[E] = total;
  for (int e = tid; e < E; e += T) warp_offsets(tbl, W, E, e, start[e] + before[e]);
  __syncthreads();
  warp_scatter(p, wlo, whi, tbl + w * E, first, p.sorted_ids);

  // Padding of this block's experts (fewer than block_size slots each), a warp per expert.
  const int e_lo = static_cast<int>(static_cast<int64_t>(E) * b / G);
  const int e_hi = static_cast<int>(static_cast<int64_t>(E) * (b + 1) / G);
  for (int e = e_lo + w; e < e_hi; e += W)
    for (int j = start[e] + cnt[e] + lane; j < start[e + 1]; j += kWarp) p.sorted_ids[j] = p.sentinel;
  // Tail past the end, shared by the grid.
  const int64_t gt = static_cast<int64_t>(b) * T + tid, GT = static_cast<int64_t>(G) * T;
  fill_ints(p.sorted_ids, total, p.capacity, p.sentinel, gt, GT);

  const int64_t used = total >> p.log2_bs;
  for (int64_t j = gt; j < p.max_blocks; j += GT)
    p.expert_ids[j] = j < used ? find_expert(start, E, static_cast<int>(j << p.log2_bs)) : -1;
  if (b == 0 && tid == 0) {
    *p.num_post = total;
    *p.status = cnt[E];
  }
}

}  // namespace moe::align::detail
