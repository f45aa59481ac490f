// The warp-specialized Hopper tile kernel of the fused MoE layer (wgmma_ws tiles,
// sm_90a): the same tiles, tile order, epilogues and results as
// fused_moe_gemm_kernel, with the loads and the MMAs in different warps so that
// they overlap.
//
//   warpgroup 0 (producer, 40 registers): per K slice of 64, waits for a free
//     slot of the STAGES-deep shared-memory ring (empty barrier), has one thread
//     start the weight tile's bulk tensor copy (TMA, 128-byte swizzle; stage 1:
//     a gate box and an up box of block_n/2 rows each), and gathers the block_m
//     token rows named by sorted_token_ids with 16-byte cp.async into the same
//     swizzled layout; the slot's full barrier completes when the TMA bytes have
//     landed and every producer thread's copies have (cp.async.mbarrier.arrive).
//   warpgroups 1..block_m/64 (MMA, 232 registers): warpgroup c multiplies rows
//     64(c-1).. of the tile with all block_n columns (m64nNk16, fp32 accumulators),
//     frees each slot once the next slice's MMAs are issued (wgmma wait 1; lane 0
//     of each warp arrives on the slot's empty barrier), then
//     runs the epilogue while the producer already fills the ring for the next tile.
//
// Both roles walk the same tile sequence (blockIdx.x, += gridDim.x) with one
// running slice counter each, so slot = counter % STAGES and the barrier parity
// = (counter / STAGES) & 1 agree without any other exchange.
//
// Accumulator layout (wgmma.cuh): warp w of a warpgroup holds rows 16w + g and
// 16w + g + 8 (g = lane / 4), d[4j + i] at column 8j + 2(lane % 4) + i % 2, row
// + 8 for i >= 2. Stage 1 puts the gate rows of the weight tile first and the up
// rows second, so gate column c and up column c sit in the same thread
// (d[4j + i] and d[4(j + block_n/16) + i]).
//
// Requirements (the host checks them, kernels/fused_moe/fused_moe_host.cpp): K a
// multiple of 8 with 16-byte aligned bases (TMA strides, 16-byte gathers);
// experts * w_rows < 2^31 (TMA coordinates are 32-bit).
#pragma once
#include <cstdint>

#include "kernels/fused_moe/fmoe_device.cuh"
#include "kernels/fused_moe/fused_moe_params.hpp"
#include "kernels/fused_moe/tma.cuh"
#include "kernels/fused_moe/wgmma.cuh"

namespace moe::fused_moe::dev {

template <int BM, int BN, int STAGES>
struct WsTile {
  static constexpr int BK = 64;                // one 128-byte swizzle row of 16-bit elements
  static constexpr int kMmaGroups = BM / 64;   // one m64 slab each
  static constexpr int kThreads = (kMmaGroups + 1) * 128;
  static constexpr int kATile = BM * BK * 2;   // bytes of one slot's A tile
  static constexpr int kBTile = BN * BK * 2;
  static constexpr int kSmemBytes = STAGES * (kATile + kBTile) + 1024;
  static constexpr int kRowsPerThread = BM / 16;  // producer: 8 threads per 128-byte row
  static_assert(BM % 64 == 0 && BM >= 64 && BM <= 128, "wgmma_ws: block_m 64 or 128 (one m64 slab per MMA warpgroup)");
  static_assert(BN == 128 || BN == 256, "wgmma_ws: block_n 128 or 256 (one m64nN wgmma per slab)");
  static_assert(STAGES >= 2, "wgmma_ws: at least two slots");
  // setmaxnreg moves registers within the block's allocation at launch (65536 per SM,
  // one block, in steps of 8 per thread): the producer's 40 and the MMA warpgroups' 232 must fit it.
  static constexpr int kLaunchRegs = (65536 / kThreads) / 8 * 8 < 248 ? (65536 / kThreads) / 8 * 8 : 248;
  static_assert(128 * (40 + 232 * kMmaGroups) <= kLaunchRegs * kThreads, "wgmma_ws: registers of the warpgroups do not fit");
};

template <class Elem, int BM, int BN, int STAGES, int STAGE>
__global__ void __launch_bounds__(WsTile<BM, BN, STAGES>::kThreads, 1)
    fused_moe_ws_kernel(const FMOE_GRID_CONSTANT detail::GemmParams p) {
#if FMOE_HAVE_WGMMA && defined(FMOE_HAVE_TMA)
  using T = WsTile<BM, BN, STAGES>;
  constexpr int BK = T::BK;
  static_assert(T::kSmemBytes == STAGES * (BM + BN) * BK * 2 + 1024, "tile_smem_bytes of the host");
  extern __shared__ uint4 fmoe_ws_smem[];
  unsigned char* smem = reinterpret_cast<unsigned char*>(fmoe_ws_smem);
  smem += ((smem_u32(smem) + 1023u) & ~1023u) - smem_u32(smem);  // swizzle atoms: 1024-byte aligned
  unsigned char* const sA = smem;
  unsigned char* const sB = smem + STAGES * T::kATile;
  __shared__ alignas(8) uint64_t full[STAGES];
  __shared__ alignas(8) uint64_t empty[STAGES];

  const int tid = static_cast<int>(threadIdx.x);
  const int group = tid / 128;  // 0: producer; 1..: MMA warpgroups
  const int t = tid % 128;
  if (tid == 0) {
    for (int s = 0; s < STAGES; ++s) {
      mbar_init(&full[s], 128 + 1);                  // 128 producer threads' copies + the TMA's expect_tx
      mbar_init(&empty[s], T::kMmaGroups * 4);       // lane 0 of every MMA warp, once its slice's wgmma are done
    }
    fence_barrier_init();
  }
  __syncthreads();

  pdl_launch_dependents();
  pdl_wait();
  const TileSpace ts = tile_space<BM, BK>(p);
  const int64_t K = p.k;

  // Tile -> (split, m-block, n-tile, K slices); false when the tile holds no rows.
  struct Work {
    int split, m_blk, n_tile, expert, nk;
    int64_t kt_begin;
  };
  auto decode = [&](int64_t tile, Work& w) -> bool {
    w.split = static_cast<int>(tile / ts.tiles_per_split);
    grouped_tile(tile % ts.tiles_per_split, ts.num_m, p.group_m, p.n_tiles, w.m_blk, w.n_tile);
    if (w.m_blk >= ts.valid_m) return false;
    w.expert = p.expert_ids[w.m_blk];
    w.kt_begin = static_cast<int64_t>(w.split) * p.k_tiles_per_split;
    int64_t kt_end = w.kt_begin + p.k_tiles_per_split;
    if (kt_end > ts.k_tiles) kt_end = ts.k_tiles;
    const bool expert_ok = w.expert >= 0 && w.expert < p.experts;
    w.nk = (expert_ok && kt_end > w.kt_begin) ? static_cast<int>(kt_end - w.kt_begin) : 0;  // 0: zero output
    return true;
  };

  if (group == 0) {
    // ---------------- producer
    setmaxnreg_dec<40>();
    const int kc = t % 8;  // this thread's 16-byte chunk of every row it gathers
    uint32_t slice = 0;
    for (int64_t tile = blockIdx.x; tile < ts.total; tile += gridDim.x) {
      Work w;
      if (!decode(tile, w) || w.nk == 0) continue;
      int32_t arow[T::kRowsPerThread];  // token row (stage 1) or slot (stage 2), -1 for padding
#pragma unroll
      for (int i = 0; i < T::kRowsPerThread; ++i) {
        const int32_t id = p.sorted_ids[static_cast<int64_t>(w.m_blk) * BM + t / 8 + 16 * i];
        const bool ok = id >= 0 && static_cast<int64_t>(id) < p.num_valid;
        arow[i] = ok ? (STAGE == 1 ? id / p.top_k : id) : -1;
      }
      const int32_t wrow0 = w.expert * static_cast<int32_t>(p.w_rows) +
                            w.n_tile * (STAGE == 1 ? BN / 2 : BN);
      for (int kk = 0; kk < w.nk; ++kk, ++slice) {
        const int slot = static_cast<int>(slice % STAGES);
        mbar_wait(&empty[slot], ((slice / STAGES) & 1) ^ 1);  // the first round passes at once
        const int64_t kt = w.kt_begin + kk;
        const int32_t kcol = static_cast<int32_t>(kt * BK);
        unsigned char* b_dst = sB + slot * T::kBTile;
        if (t == 0) {
          mbar_arrive_expect_tx(&full[slot], T::kBTile);
          if constexpr (STAGE == 1) {
            tma_load_2d(b_dst, &p.w_map, &full[slot], kcol, wrow0);                                   // gate rows
            tma_load_2d(b_dst + T::kBTile / 2, &p.w_map, &full[slot], kcol, wrow0 + static_cast<int32_t>(p.n));  // up
          } else {
            tma_load_2d(b_dst, &p.w_map, &full[slot], kcol, wrow0);
          }
        }
        unsigned char* a_dst = sA + slot * T::kATile;
        const int64_t kbase = kt * BK + kc * 8;
#pragma unroll
        for (int i = 0; i < T::kRowsPerThread; ++i) {
          const int r = t / 8 + 16 * i;
          const bool ok = arow[i] >= 0 && kbase < K;
          copy16_async(a_dst + r * 128 + ((kc ^ (r & 7)) << 4), ok ? p.a + static_cast<int64_t>(arow[i]) * K + kbase : p.a,
                       ok);
        }
        cp_async_mbar_arrive_noinc(&full[slot]);
      }
    }
    return;
  }

  // ---------------- MMA warpgroups
  setmaxnreg_inc<232>();
  const int slab = group - 1;     // rows 64 * slab .. of the tile
  const int warp4 = (t / 32) % 4;  // warp within the warpgroup
  const int lane = t % 32;
  const int r0 = slab * 64 + warp4 * 16 + lane / 4;  // this thread's rows r0 and r0 + 8
  const int c0 = 2 * (lane % 4);                     // and columns 8j + c0, +1
  constexpr int kAcc = BN / 2;
  uint32_t slice = 0;
  for (int64_t tile = blockIdx.x; tile < ts.total; tile += gridDim.x) {
    Work w;
    if (!decode(tile, w)) continue;
    // This thread's output rows (r0, r0 + 8), read before the K loop: off the epilogue's path.
    int32_t ids[2];
    float scale[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int32_t id = p.sorted_ids[static_cast<int64_t>(w.m_blk) * BM + r0 + 8 * h];
      const bool ok = id >= 0 && static_cast<int64_t>(id) < p.num_valid;
      ids[h] = ok ? id : -1;
      scale[h] = (ok && p.scale_mode == STAGE) ? p.topk_weights[id] : 1.0f;
    }
    float acc[kAcc];
#pragma unroll
    for (int e = 0; e < kAcc; ++e) acc[e] = 0.0f;
    for (int kk = 0; kk < w.nk; ++kk, ++slice) {
      const int slot = static_cast<int>(slice % STAGES);
      mbar_wait(&full[slot], (slice / STAGES) & 1);
      fence_proxy_async();  // the gathered rows were written through the generic proxy (cp.async)
      const uint32_t a_addr = smem_u32(sA + slot * T::kATile + slab * 64 * 128);
      const uint32_t b_addr = smem_u32(sB + slot * T::kBTile);
      wgmma_fence();
#pragma unroll
      for (int k16 = 0; k16 < BK / 16; ++k16)
        wgmma_m64k16<BN, Elem>(acc, wgmma_desc(a_addr + k16 * 32), wgmma_desc(b_addr + k16 * 32));
      wgmma_commit();
      wgmma_wait<1>();  // the previous slice's MMAs are done: free its slot
      // (wait_group is warp-synchronous: once lane 0 is past it, the whole warp is)
      if (kk > 0 && lane == 0) mbar_arrive(&empty[(slice - 1) % STAGES]);
    }
    wgmma_wait<0>();
    if (w.nk > 0 && lane == 0) mbar_arrive(&empty[(slice - 1) % STAGES]);

    // ---- epilogue (rows r0, r0 + 8 of this thread)
    const int64_t n = p.n;
    const bool pair_store = n % 2 == 0;
    if constexpr (STAGE == 1) {
      uint16_t* out = static_cast<uint16_t*>(p.out);
      constexpr int kUp = BN / 16;  // atoms of gate columns; the up atoms follow
#pragma unroll
      for (int j = 0; j < kUp; ++j)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          if (ids[h] < 0) continue;
          const int64_t col = static_cast<int64_t>(w.n_tile) * (BN / 2) + 8 * j + c0;
          uint16_t v[2];
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const float g = acc[4 * j + 2 * h + e] * scale[h];
            const float u = acc[4 * (j + kUp) + 2 * h + e] * scale[h];
            v[e] = Elem::from_float((p.act == 0 ? silu(g) : gelu_tanh(g)) * u);
          }
          uint16_t* dst = out + static_cast<int64_t>(ids[h]) * n + col;
          if (pair_store && col + 1 < n) {
            *reinterpret_cast<uint32_t*>(dst) = static_cast<uint32_t>(v[0]) | (static_cast<uint32_t>(v[1]) << 16);
          } else {
            if (col < n) dst[0] = v[0];
            if (col + 1 < n) dst[1] = v[1];
          }
        }
    } else {
      float* out = static_cast<float*>(p.out) + static_cast<int64_t>(w.split) * p.split_stride;
#pragma unroll
      for (int j = 0; j < BN / 8; ++j)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          if (ids[h] < 0) continue;
          const int64_t col = static_cast<int64_t>(w.n_tile) * BN + 8 * j + c0;
          const float v0 = acc[4 * j + 2 * h] * scale[h], v1 = acc[4 * j + 2 * h + 1] * scale[h];
          float* dst = out + static_cast<int64_t>(ids[h]) * n + col;
          if (pair_store && col + 1 < n) {
            *reinterpret_cast<float2*>(dst) = make_float2(v0, v1);
          } else {
            if (col < n) dst[0] = v0;
            if (col + 1 < n) dst[1] = v1;
          }
        }
    }
  }
#elif defined(__CUDA_ARCH__)
  (void)p;
  __trap();  // not an sm_90a build: the host never launches wgmma_ws shapes here
#else
  (void)p;
#endif
}

}  // namespace moe::fused_moe::dev
