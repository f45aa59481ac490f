// Device code of the fused MoE family: the grouped GEMM tile kernel (both
// stages) and the fixed-order top-k reduce. Included by the stage TUs, which
// instantiate it for the compiled tile shapes.
//
// Tile kernel outline (one block = one (m-block, n-tile, k-split) tile; the
// persistent variant walks tiles with stride gridDim.x):
//   1. rows of the m-block: sorted_token_ids[m*BM ..) -> slot ids (padding -> -1),
//      expert = expert_ids[m]
//   2. K loop: STAGES-deep cp.async pipeline of A rows (gathered by slot id) and
//      weight rows into XOR-swizzled shared memory; per BK slice each warp runs
//      MT x NT MMA atoms (mma_atom.cuh)
//   3. epilogue: stage 1 pairs the gate and up accumulators of the same column
//      (they sit in the same lane: weight rows are interleaved per atom pair in
//      shared memory) and stores act(gate)*up; stage 2 stores fp32 partial rows.
// All global offsets are 64-bit.
#pragma once
#include <cstdint>

#include "kernels/fused_moe/fused_moe_params.hpp"
#include "kernels/fused_moe/mma_atom.cuh"
#include "kernels/fused_moe/wgmma.cuh"

namespace moe::fused_moe::dev {

using detail::GemmParams;
using detail::ReduceParams;
using detail::kMaxGroupM;

template <class Elem, int BM, int BN, int BK, int WM, int WN, int STAGES, int STAGE, bool WGMMA>
struct GemmTile {
  using Atom = MmaAtom;
  static constexpr int kThreads = WM * WN * kWarpSize;
  static constexpr int WTM = BM / WM;  // warp tile
  static constexpr int WTN = BN / WN;
  static constexpr int MT = WTM / Atom::M;
  static constexpr int NT = WTN / Atom::N;
  static constexpr int KCH = BK / 8;  // 16-byte chunks per tile row
  static constexpr int A_CHUNKS = BM * KCH;
  static constexpr int B_CHUNKS = BN * KCH;
  static constexpr int A_ITERS = (A_CHUNKS + kThreads - 1) / kThreads;
  static constexpr int B_ITERS = (B_CHUNKS + kThreads - 1) / kThreads;
  static constexpr int kSmemBytes = STAGES * (BM + BN) * BK * 2 + (WGMMA ? 1024 : 0);
  static_assert(MT * Atom::M == WTM && MT >= 1, "block_m / warps_m must be a multiple of the atom M");
  static_assert(NT * Atom::N == WTN && NT % 2 == 0, "block_n / warps_n must be an even number of atom N");
  static_assert(BK % Atom::K == 0 && BK % 8 == 0, "block_k must be a multiple of the atom K");
  static_assert(kThreads % KCH == 0, "threads must cover whole tile rows");
  static_assert(STAGES >= 2, "at least two pipeline stages");
  // wgmma: warp w covers rows 16w.. (warpgroup w/4 issues m64nBNk16 on rows 64(w/4)..),
  // 128-byte rows (BK = 64) so the tiles are the hardware's 128B-swizzled layout.
  static_assert(!WGMMA || (BK == 64 && WM % 4 == 0 && WM * 16 == BM && (WTN == 128 || WTN == 256) && STAGES >= 3),
                "wgmma tiles: block_k 64, warpgroups of 4 warps x 16 rows along M, 128 or 256 columns each, >= 3 stages");
};

template <class Elem, int BM, int BN, int BK, int WM, int WN, int STAGES, int STAGE, bool WGMMA>
__global__ void __launch_bounds__(WM* WN* kWarpSize)
    fused_moe_gemm_kernel(const GemmParams p) {
  using G = GemmTile<Elem, BM, BN, BK, WM, WN, STAGES, STAGE, WGMMA>;
  using Atom = typename G::Atom;
  constexpr int kThreads = G::kThreads;
  constexpr int MT = G::MT, NT = G::NT, KCH = G::KCH;

  extern __shared__ uint4 fmoe_smem[];
  unsigned char* smem_base = reinterpret_cast<unsigned char*>(fmoe_smem);
  if constexpr (WGMMA) {  // swizzle atoms must start 1024-byte aligned
    const uint32_t a = smem_u32(smem_base);
    smem_base += ((a + 1023u) & ~1023u) - a;
  }
  uint16_t* const sA = reinterpret_cast<uint16_t*>(smem_base);
  uint16_t* const sB = sA + STAGES * BM * BK;
  __shared__ int32_t s_row[BM];  // slot id of each tile row, -1 for padding
  __shared__ float s_w[BM];      // routed weight of each tile row (scale modes only)
  __shared__ int32_t s_win[kMaxGroupM];  // expert ids of the current group window (group_mode 1)

  const int tid = static_cast<int>(threadIdx.x);
  const int lane = tid % kWarpSize;
  const int warp = tid / kWarpSize;
  // Warp grid: the MMA-atom path puts neighbouring warps along N; the wgmma path
  // needs the 4 warps of a warpgroup along M (one m64 slab), warpgroups along N next.
  const int wm = WGMMA ? warp % WM : warp / WN;
  const int wn = WGMMA ? warp / WM : warp % WN;
  const int kc = tid % KCH;            // this thread's 16-byte chunk of every row it loads
  const int row_step = kThreads / KCH;  // rows between this thread's successive chunks
  const int row0 = tid / KCH;

  // Programmatic dependent launch (CUDA, sm_90): let the next kernel's blocks be
  // scheduled once all of ours run, and wait for the previous kernel's results
  // before the first read of anything it wrote (no-ops without the launch attribute).
  pdl_launch_dependents();
  pdl_wait();
  const TileSpace ts = tile_space<BM, BK>(p);
  const int valid_m = ts.valid_m;
  const int64_t K = p.k;
  const int64_t k_tiles = ts.k_tiles;

  for (int64_t tile = blockIdx.x; tile < ts.total; tile += gridDim.x) {
    // ---- tile -> (split, m-block, n-tile).
    // group_mode 0: fixed groups of group_m blocks (grouped_tile).
    // group_mode 1: groups are the runs of blocks of one expert, cut at windows
    //   of group_m blocks, so each expert's weights stream from DRAM about once
    //   (for big tiles, where an expert spans several blocks).
    const int split = static_cast<int>(tile / ts.tiles_per_split);
    const int64_t rest = tile % ts.tiles_per_split;
    int m_blk, n_tile;
    if (p.group_mode == 0) {
      grouped_tile(rest, ts.num_m, p.group_m, p.n_tiles, m_blk, n_tile);
      if (m_blk >= valid_m) continue;  // uniform across the block
    } else {
      // expert_run_tile's walk over the window's expert ids in shared memory, written out: the
      // call (sm_90a ptxas) took the stage-2 mma.sync tiles from 70-75 to 80 registers.
      // Tiles of blocks [g0, g1) are exactly [g0 * n_tiles, g1 * n_tiles).
      const int q = static_cast<int>(rest / p.n_tiles);
      if (q >= valid_m) continue;
      const int w0 = (q / p.group_m) * p.group_m;
      const int wn_end = (w0 + p.group_m) < valid_m ? (w0 + p.group_m) : valid_m;
      __syncthreads();  // previous tile's readers of s_win are done
      for (int t = tid; t < wn_end - w0; t += kThreads) s_win[t] = p.expert_ids[w0 + t];
      __syncthreads();
      const int eq = s_win[q - w0];
      int g0 = q, g1 = q + 1;
      while (g0 > w0 && s_win[g0 - 1 - w0] == eq) --g0;
      while (g1 < wn_end && s_win[g1 - w0] == eq) ++g1;
      const int local = static_cast<int>(rest - static_cast<int64_t>(g0) * p.n_tiles);
      m_blk = g0 + local % (g1 - g0);
      n_tile = local / (g1 - g0);
    }

    const int expert = p.expert_ids[m_blk];
    const bool expert_ok = expert >= 0 && expert < p.experts;
    __syncthreads();  // the previous tile's epilogue is done with s_row / s_w
    for (int r = tid; r < BM; r += kThreads) {
      const int32_t id = p.sorted_ids[static_cast<int64_t>(m_blk) * BM + r];
      const bool ok = id >= 0 && static_cast<int64_t>(id) < p.num_valid;
      s_row[r] = ok ? id : -1;
      s_w[r] = (ok && p.scale_mode != 0) ? p.topk_weights[id] : 0.0f;
    }
    __syncthreads();

    // ---- per-thread source rows (64-bit pointers)
    const uint16_t* a_src[G::A_ITERS];
    bool a_ok[G::A_ITERS];
#pragma unroll
    for (int i = 0; i < G::A_ITERS; ++i) {
      const int r = row0 + i * row_step;
      const int id = r < BM ? s_row[r] : -1;
      a_ok[i] = id >= 0;
      const int64_t arow = id < 0 ? 0 : (STAGE == 1 ? static_cast<int64_t>(id / p.top_k) : static_cast<int64_t>(id));
      a_src[i] = p.a + arow * K;
    }
    // Weight rows of this thread's chunks. When consecutive chunks are a fixed
    // number of weight rows apart (always in stage 2; in stage 1 when the row step
    // covers whole gate/up atom pairs) keep one pointer and step it, else a table.
    constexpr int kRowStep = G::kThreads / KCH;
    constexpr bool kAffineB = (STAGE == 2) || (kRowStep % (2 * Atom::N) == 0);
    constexpr int kColStep = STAGE == 2 ? kRowStep : kRowStep / 2;
    constexpr int kBTable = kAffineB ? 1 : G::B_ITERS;
    const uint16_t* b_src[kBTable];
    bool b_ok[kBTable];
    int64_t b_col0 = 0;
    const uint16_t* w_expert = p.w + static_cast<int64_t>(expert_ok ? expert : 0) * p.w_rows * K;
#pragma unroll
    for (int i = 0; i < kBTable; ++i) {
      const int r = row0 + i * row_step;
      int64_t col, wrow;
      if constexpr (STAGE == 1) {
        // smem rows: pairs of atoms, gate rows then up rows of the same columns
        const int pair = r / (2 * Atom::N);
        const int w = r % (2 * Atom::N);
        col = static_cast<int64_t>(n_tile) * (BN / 2) + pair * Atom::N + (w % Atom::N);
        wrow = (w >= Atom::N) ? p.n + col : col;
      } else {
        col = static_cast<int64_t>(n_tile) * BN + r;
        wrow = col;
      }
      if (i == 0) b_col0 = col;
      b_ok[i] = r < BN && col < p.n;
      b_src[i] = w_expert + ((b_ok[i] || kAffineB) ? wrow : 0) * K;
    }
    auto b_chunk = [&](int i, const uint16_t*& src, bool& ok) {
      if constexpr (kAffineB) {
        const int r = row0 + i * row_step;
        ok = r < BN && b_col0 + static_cast<int64_t>(i) * kColStep < p.n;
        src = b_src[0] + static_cast<int64_t>(i) * kColStep * K;
      } else {
        src = b_src[i];
        ok = b_ok[i];
      }
    };

    // ---- K range of this split
    int64_t kt_begin = static_cast<int64_t>(split) * p.k_tiles_per_split;
    int64_t kt_end = kt_begin + p.k_tiles_per_split;
    if (kt_end > k_tiles) kt_end = k_tiles;
    if (!expert_ok || kt_begin > kt_end) kt_end = kt_begin;  // no work: zero output
    const int nk = static_cast<int>(kt_end - kt_begin);

    auto load_stage = [&](int slot, int64_t kt) {
      const int64_t kbase = kt * BK + kc * 8;
      uint16_t* a_dst = sA + slot * BM * BK;
      uint16_t* b_dst = sB + slot * BN * BK;
#pragma unroll
      for (int i = 0; i < G::A_ITERS; ++i) {
        const int r = row0 + i * row_step;
        if (G::A_CHUNKS % kThreads == 0 || r < BM) {
          uint16_t* dst = a_dst + swz_offset<BK>(r, kc * 8);
          if (p.aligned) {
            const bool ok = a_ok[i] && kbase < K;
            copy16_async(dst, ok ? a_src[i] + kbase : p.a, ok);
          } else {
            uint32_t v[4];
#pragma unroll
            for (int e = 0; e < 4; ++e) {
              const uint32_t lo = (a_ok[i] && kbase + 2 * e < K) ? a_src[i][kbase + 2 * e] : 0u;
              const uint32_t hi = (a_ok[i] && kbase + 2 * e + 1 < K) ? a_src[i][kbase + 2 * e + 1] : 0u;
              v[e] = lo | (hi << 16);
            }
            *reinterpret_cast<uint4*>(dst) = make_uint4(v[0], v[1], v[2], v[3]);
          }
        }
      }
#pragma unroll
      for (int i = 0; i < G::B_ITERS; ++i) {
        const int r = row0 + i * row_step;
        if (G::B_CHUNKS % kThreads == 0 || r < BN) {
          uint16_t* dst = b_dst + swz_offset<BK>(r, kc * 8);
          const uint16_t* bsrc;
          bool bok;
          b_chunk(i, bsrc, bok);
          if (p.aligned) {
            const bool ok = bok && kbase < K;
            copy16_async(dst, ok ? bsrc + kbase : p.w, ok);
          } else {
            uint32_t v[4];
#pragma unroll
            for (int e = 0; e < 4; ++e) {
              const uint32_t lo = (bok && kbase + 2 * e < K) ? bsrc[kbase + 2 * e] : 0u;
              const uint32_t hi = (bok && kbase + 2 * e + 1 < K) ? bsrc[kbase + 2 * e + 1] : 0u;
              v[e] = lo | (hi << 16);
            }
            *reinterpret_cast<uint4*>(dst) = make_uint4(v[0], v[1], v[2], v[3]);
          }
        }
      }
    };

    float acc[MT][NT][Atom::kAcc];
#pragma unroll
    for (int mi = 0; mi < MT; ++mi)
#pragma unroll
      for (int nj = 0; nj < NT; ++nj)
#pragma unroll
        for (int e = 0; e < Atom::kAcc; ++e) acc[mi][nj][e] = 0.0f;

    if constexpr (!WGMMA) {
      cp_async_mainloop<STAGES>(nk, kt_begin, load_stage, [&](int slot, int) {
        const uint16_t* a_s = sA + slot * BM * BK;
        const uint16_t* b_s = sB + slot * BN * BK;
#pragma unroll
        for (int kk = 0; kk < BK; kk += Atom::K) {
          typename Atom::AFrag af[MT];
          typename Atom::BFrag bf[NT];
#pragma unroll
          for (int mi = 0; mi < MT; ++mi)
            Atom::template load_a<BK>(af[mi], a_s, wm * G::WTM + mi * Atom::M, kk, lane);
#pragma unroll
          for (int pj = 0; pj < NT / 2; ++pj)
            Atom::template load_b_pair<BK>(bf[2 * pj], bf[2 * pj + 1], b_s, wn * G::WTN + pj * 2 * Atom::N, kk, lane);
#pragma unroll
          for (int mi = 0; mi < MT; ++mi)
#pragma unroll
            for (int nj = 0; nj < NT; ++nj) Atom::template mma<Elem>(acc[mi][nj], af[mi], bf[nj]);
        }
      });
    } else {
#if FMOE_HAVE_WGMMA
      // ---- wgmma main loop (wgmma_mainloop: loads STAGES-2 slices ahead).
      const int wg_m = wm / 4;  // this warpgroup's m64 slab; its columns start at wn * WTN
      wgmma_mainloop<STAGES>(
          nk, kt_begin, load_stage,
          [&](int slot) {
            const uint32_t a_addr = smem_u32(sA + slot * BM * BK + wg_m * 64 * BK);
            const uint32_t b_addr = smem_u32(sB + slot * BN * BK + wn * G::WTN * BK);
#pragma unroll
            for (int kk = 0; kk < BK / 16; ++kk)
              wgmma_m64k16<G::WTN, Elem>(&acc[0][0][0], wgmma_desc(a_addr + kk * 32), wgmma_desc(b_addr + kk * 32));
          },
          [](int) { wgmma_wait<1>(); });
#else
#if defined(__CUDA_ARCH__)
      __trap();  // not an sm_90a build: the host never launches wgmma shapes here
#endif
#endif
    }
    __syncthreads();  // all smem reads of this tile done before the next tile's loads

    // ---- epilogue
    const int64_t n = p.n;
    if constexpr (STAGE == 1) {
      uint16_t* out = static_cast<uint16_t*>(p.out);
      const bool pair_store = Atom::kColPair == 2 && (n % 2 == 0);
#pragma unroll
      for (int mi = 0; mi < MT; ++mi)
#pragma unroll
        for (int pj = 0; pj < NT / 2; ++pj)
#pragma unroll
          for (int i = 0; i < Atom::kAcc; i += Atom::kColPair) {
            const int r = wm * G::WTM + mi * Atom::M + Atom::acc_row(i, lane);
            const int id = s_row[r];
            if (id < 0) continue;
            const int64_t col = static_cast<int64_t>(n_tile) * (BN / 2) + (wn * G::WTN) / 2 + pj * Atom::N +
                                Atom::acc_col(i, lane);
            const float sc = p.scale_mode == 1 ? s_w[r] : 1.0f;
            uint16_t h[Atom::kColPair];
#pragma unroll
            for (int e = 0; e < Atom::kColPair; ++e) {
              const float g = acc[mi][2 * pj][i + e] * sc;
              const float u = acc[mi][2 * pj + 1][i + e] * sc;
              const float a = p.act == 0 ? silu(g) : gelu_tanh(g);
              h[e] = Elem::from_float(a * u);
            }
            uint16_t* dst = out + static_cast<int64_t>(id) * n + col;
            if constexpr (Atom::kColPair == 2) {
              if (pair_store && col + 1 < n) {
                *reinterpret_cast<uint32_t*>(dst) = static_cast<uint32_t>(h[0]) | (static_cast<uint32_t>(h[1]) << 16);
                continue;
              }
            }
#pragma unroll
            for (int e = 0; e < Atom::kColPair; ++e)
              if (col + e < n) dst[e] = h[e];
          }
    } else {
      float* out = static_cast<float*>(p.out) + static_cast<int64_t>(split) * p.split_stride;
      const bool pair_store = Atom::kColPair == 2 && (n % 2 == 0);
#pragma unroll
      for (int mi = 0; mi < MT; ++mi)
#pragma unroll
        for (int nj = 0; nj < NT; ++nj)
#pragma unroll
          for (int i = 0; i < Atom::kAcc; i += Atom::kColPair) {
            const int r = wm * G::WTM + mi * Atom::M + Atom::acc_row(i, lane);
            const int id = s_row[r];
            if (id < 0) continue;
            const int64_t col = static_cast<int64_t>(n_tile) * BN + wn * G::WTN + nj * Atom::N + Atom::acc_col(i, lane);
            const float sc = p.scale_mode == 2 ? s_w[r] : 1.0f;
            float* dst = out + static_cast<int64_t>(id) * n + col;
            if constexpr (Atom::kColPair == 2) {
              if (pair_store && col + 1 < n) {
                *reinterpret_cast<float2*>(dst) = make_float2(acc[mi][nj][i] * sc, acc[mi][nj][i + 1] * sc);
                continue;
              }
            }
#pragma unroll
            for (int e = 0; e < Atom::kColPair; ++e)
              if (col + e < n) dst[e] = acc[mi][nj][i + e] * sc;
          }
    }
  }
}

// out[t, n] = round(sum_{s < split_k} sum_{j < top_k, ids valid} partial[s][t*k + j][n]),
// summed in fixed (s, j) order: bitwise reproducible run to run.
template <class Elem>
__global__ void fused_moe_reduce_kernel(const ReduceParams p) {
  pdl_launch_dependents();
  pdl_wait();
  const int64_t cols = p.vec4 ? p.n / 4 : p.n;
  const int64_t total = p.tokens * cols;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t t = i / cols;
    const int64_t c = i % cols;
    if (p.vec4) {
      float4 s = make_float4(0.f, 0.f, 0.f, 0.f);
      for (int sp = 0; sp < p.split_k; ++sp)
        for (int j = 0; j < p.top_k; ++j) {
          const int32_t e = p.topk_ids[t * p.top_k + j];
          if (e < 0 || e >= p.experts) continue;
          const float4 v = *reinterpret_cast<const float4*>(
              p.partial + sp * p.split_stride + (t * p.top_k + j) * p.n + c * 4);
          s.x += v.x;
          s.y += v.y;
          s.z += v.z;
          s.w += v.w;
        }
      uint2 o;
      o.x = static_cast<uint32_t>(Elem::from_float(s.x)) | (static_cast<uint32_t>(Elem::from_float(s.y)) << 16);
      o.y = static_cast<uint32_t>(Elem::from_float(s.z)) | (static_cast<uint32_t>(Elem::from_float(s.w)) << 16);
      *reinterpret_cast<uint2*>(p.out + t * p.n + c * 4) = o;
    } else {
      float s = 0.f;
      for (int sp = 0; sp < p.split_k; ++sp)
        for (int j = 0; j < p.top_k; ++j) {
          const int32_t e = p.topk_ids[t * p.top_k + j];
          if (e < 0 || e >= p.experts) continue;
          s += p.partial[sp * p.split_stride + (t * p.top_k + j) * p.n + c];
        }
      p.out[t * p.n + c] = Elem::from_float(s);
    }
  }
}

}  // namespace moe::fused_moe::dev
