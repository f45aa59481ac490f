// Device code of the quantized fused MoE GEMMs (FP8 e4m3 / INT8). Same structure
// as kernels/fused_moe/fused_moe_kernels.cuh (whose device helpers it includes):
// one block = one (m-block, n-tile, k-split) tile of the aligned routing; A rows
// gathered by slot id and weight rows loaded with 16-byte cp.async into a
// STAGES-deep pipeline of XOR-swizzled K-major tiles (8-bit codes, block_k
// bytes per row); stage 1 interleaves gate and up rows per atom pair so the
// epilogue forms act(gate)*up in registers.
//
// Scales: non-block schemes multiply the finished fp32 (int8: exact int32)
// accumulator by a_s(row) * w_s(col). The block scheme (1x128 activation groups,
// 128x128 weight blocks) accumulates each 128-K group separately and adds
// acc_g * a_s(row, g) * w_s(col block, g) into a second fp32 accumulator set
// ("flush"), then zeroes the group accumulator.
//
// MMA atom (per arch, Q8Atom below):
//   NVIDIA: mma.sync m16n8k32 (.e4m3 -> f32: sm_89+; .s8 -> s32: sm_80+); the
//     fragments of a k32 8-bit step are exactly those ldmatrix.x4 gives for a
//     k16 16-bit step on the same bytes, so MmaAtom's loads are reused. wgmma
//     m64nNk32 on sm_90a (q8_wgmma.cuh).
//   AMD gfx90a: v_mfma_i32_16x16x16i8; fp8 codes are widened exactly to bf16 in
//     registers and go through v_mfma_f32_16x16x16bf16_1k (gfx90a has no fp8 MFMA).
// All global offsets are 64-bit.
#pragma once
#include <cstdint>
#include <type_traits>

#include "kernels/fused_moe/fmoe_device.cuh"
#include "kernels/fused_moe/mma_atom.cuh"
#include "kernels/fused_moe_q8/fused_moe_q8_types.hpp"
#include "kernels/fused_moe_q8/q8_params.hpp"
#include "kernels/fused_moe_q8/q8_wgmma.cuh"
#include "moe/fp8.hpp"

namespace moe::fused_moe_q8::dev {

using detail::Q8GemmParams;
using fused_moe::dev::kWarpSize;
using fused_moe::dev::smem_u32;

// Byte offset of (row, k) in a [rows][BK] 8-bit tile whose 16-byte chunks are
// XOR-swizzled by row (= 2 * swz_offset<BK/2> of the 16-bit tiles: the same
// bytes, hence the hardware 128B swizzle for BK = 128).
template <int BK>
__device__ __forceinline__ int swz8(int row, int k) {
  constexpr int kChunks = BK / 16;
  constexpr int kMask = kChunks >= 8 ? 7 : kChunks - 1;
  return row * BK + ((((k >> 4) ^ (row & kMask))) << 4) + (k & 15);
}

#if !defined(__HIP_PLATFORM_AMD__)
struct Q8Atom {
  using Base = fused_moe::dev::MmaAtom;
  static constexpr int M = 16, N = 8, K = 32;
  static constexpr int kAcc = 4;
  static constexpr int kColPair = 2;
  using AFrag = Base::AFrag;
  using BFrag = Base::BFrag;
  __device__ static int acc_row(int i, int lane) { return Base::acc_row(i, lane); }
  __device__ static int acc_col(int i, int lane) { return Base::acc_col(i, lane); }
  template <int BK>
  __device__ static void load_a(AFrag& f, const uint8_t* s, int row0, int k0, int lane) {
    Base::load_a<BK / 2>(f, reinterpret_cast<const uint16_t*>(s), row0, k0 / 2, lane);
  }
  template <int BK>
  __device__ static void load_b_pair(BFrag& f0, BFrag& f1, const uint8_t* s, int n0, int k0, int lane) {
    Base::load_b_pair<BK / 2>(f0, f1, reinterpret_cast<const uint16_t*>(s), n0, k0 / 2, lane);
  }
  template <bool INT8, class AccT>
  __device__ static void mma(AccT (&c)[4], const AFrag& a, const BFrag& b) {
#if defined(__CUDA_ARCH__)
    if constexpr (INT8) {
      asm volatile(
          "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
          : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
          : "r"(a.r[0]), "r"(a.r[1]), "r"(a.r[2]), "r"(a.r[3]), "r"(b.r[0]), "r"(b.r[1]));
    } else {
#if __CUDA_ARCH__ >= 890
      asm volatile(
          "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
          "{%0,%1,%2,%3};\n"
          : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
          : "r"(a.r[0]), "r"(a.r[1]), "r"(a.r[2]), "r"(a.r[3]), "r"(b.r[0]), "r"(b.r[1]));
#else
      __trap();  // e4m3 mma needs sm_89+; the host refuses fp8 here
#endif
    }
#else
    (void)c; (void)a; (void)b;
#endif
  }
};
#else
typedef short q8_short4 __attribute__((ext_vector_type(4)));
typedef float q8_float4 __attribute__((ext_vector_type(4)));
typedef int q8_int4 __attribute__((ext_vector_type(4)));

struct Q8Atom {
  static constexpr int M = 16, N = 16, K = 16;
  static constexpr int kAcc = 4;
  static constexpr int kColPair = 1;
  struct AFrag {
    uint32_t v;  // 4 codes: row lane%16, k = 4*(lane/16) + 0..3
  };
  using BFrag = AFrag;
  __device__ static int acc_row(int i, int lane) { return 4 * (lane >> 4) + i; }
  __device__ static int acc_col(int, int lane) { return lane & 15; }
  template <int BK>
  __device__ static void load_a(AFrag& f, const uint8_t* s, int row0, int k0, int lane) {
    f.v = *reinterpret_cast<const uint32_t*>(s + swz8<BK>(row0 + (lane & 15), k0 + 4 * (lane >> 4)));
  }
  template <int BK>
  __device__ static void load_b_pair(BFrag& f0, BFrag& f1, const uint8_t* s, int n0, int k0, int lane) {
    const int k = k0 + 4 * (lane >> 4);
    f0.v = *reinterpret_cast<const uint32_t*>(s + swz8<BK>(n0 + (lane & 15), k));
    f1.v = *reinterpret_cast<const uint32_t*>(s + swz8<BK>(n0 + 16 + (lane & 15), k));
  }
  // 4 e4m3fn codes -> 4 bf16 (exact: 3 mantissa bits, exponents within bf16's range)
  __device__ static q8_short4 widen(uint32_t v) {
    q8_short4 r;
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const float f = fp8_decode(static_cast<uint8_t>(v >> (8 * e)), Fp8Format::E4M3FN);
      r[e] = static_cast<short>(__float_as_uint(f) >> 16);
    }
    return r;
  }
  template <bool INT8, class AccT>
  __device__ static void mma(AccT (&c)[4], const AFrag& a, const BFrag& b) {
#if defined(__HIP_DEVICE_COMPILE__)
    if constexpr (INT8) {
      q8_int4 acc = {c[0], c[1], c[2], c[3]};
      acc = __builtin_amdgcn_mfma_i32_16x16x16i8(static_cast<int>(a.v), static_cast<int>(b.v), acc, 0, 0, 0);
      c[0] = acc[0]; c[1] = acc[1]; c[2] = acc[2]; c[3] = acc[3];
    } else {
      q8_float4 acc = {c[0], c[1], c[2], c[3]};
      acc = __builtin_amdgcn_mfma_f32_16x16x16bf16_1k(widen(a.v), widen(b.v), acc, 0, 0, 0);
      c[0] = acc[0]; c[1] = acc[1]; c[2] = acc[2]; c[3] = acc[3];
    }
#else
    (void)c; (void)a; (void)b;
#endif
  }
};
#endif

__device__ __forceinline__ uint16_t q8_store16(float v, int f16) {
  return f16 ? f32_to_f16_bits(v) : f32_to_bf16_bits(v);
}

// MIN_BLOCKS: the blocks per SM the register allocation aims at, q8_min_blocks_per_sm (0: ptxas's
// own choice; not under HIP, where the second argument counts waves per SIMD).
#if defined(MOE_BACKEND_HIP)
#define MOE_Q8_LAUNCH_BOUNDS __launch_bounds__(WM* WN* kWarpSize)
#else
#define MOE_Q8_LAUNCH_BOUNDS __launch_bounds__(WM* WN* kWarpSize, MIN_BLOCKS)
#endif
template <bool INT8, int BM, int BN, int BK, int WM, int WN, int STAGES, int STAGE, bool WGMMA, bool BLOCK,
          int MIN_BLOCKS>
__global__ void MOE_Q8_LAUNCH_BOUNDS q8_gemm_kernel(const Q8GemmParams p) {
  using Atom = Q8Atom;
  using AccT = std::conditional_t<INT8, int32_t, float>;
  constexpr int kThreads = WM * WN * kWarpSize;
  constexpr int WTM = BM / WM, WTN = BN / WN;
  constexpr int MT = WTM / Atom::M, NT = WTN / Atom::N;
  constexpr int KCH = BK / 16;  // 16-byte chunks per tile row
  constexpr int A_ITERS = (BM * KCH + kThreads - 1) / kThreads;
  constexpr int B_ITERS = (BN * KCH + kThreads - 1) / kThreads;
  constexpr int kGroupK = 128;
  static_assert(MT * Atom::M == WTM && MT >= 1, "block_m / warps_m: whole atoms");
  static_assert(NT * Atom::N == WTN && NT % 2 == 0, "block_n / warps_n: an even number of atoms");
  static_assert(BK % Atom::K == 0 && kThreads % KCH == 0, "block_k: whole atoms, threads cover whole rows");
  static_assert(!BLOCK || (kGroupK % BK == 0 || BK % kGroupK == 0), "block scheme: block_k divides 128 or vice versa");
  // Swapped operands (q8_swapped: a wgmma tile of fewer than 64 rows, for decode): the weight
  // slice is wgmma's A, 64 weight rows per warpgroup of 4 warps, and the BM token rows its N,
  // so e4m3 runs natively where mma.sync emulates it. Its fp8 accumulator is promoted into fp32
  // after every 128-K slice, as the ws tile's.
  // (The host chooses by the same rule: one source for the host's tile and the kernel's path.)
  constexpr Tile kTile{BM, BN, BK, WM * WN, STAGES, WGMMA, /*ws=*/false, /*cluster=*/1};
  constexpr bool kSwap = q8_swapped(kTile);
  constexpr bool kPromote = BLOCK || (kSwap && !INT8);
  static_assert(!WGMMA || kSwap ||
                    (BK == 128 && WM % 4 == 0 && WM * 16 == BM && (WTN == 128 || WTN == 256) && STAGES >= 3),
                "wgmma tiles: 128-byte rows, warpgroups of 4 warps x 16 rows, 128/256 columns");
  static_assert(!kSwap || (BK == 128 && BM == 16 && WM == 1 && WN * 16 == BN && BN % 64 == 0 && STAGES >= 3),
                "swapped wgmma tiles: 128-byte rows, 16 token rows, a warpgroup per 64 weight rows");
  static_assert(!(BLOCK && WGMMA && !kSwap && WTN > 128), "block scheme wgmma: at most 128 columns per warpgroup");
  static_assert(!INT8 || !BLOCK, "int8 uses per-token x per-channel scales");

  extern __shared__ uint4 q8_smem[];
  unsigned char* smem_base = reinterpret_cast<unsigned char*>(q8_smem);
  if constexpr (WGMMA) {
    const uint32_t a = smem_u32(smem_base);
    smem_base += ((a + 1023u) & ~1023u) - a;
  }
  uint8_t* const sA = smem_base;
  uint8_t* const sB = sA + STAGES * BM * BK;
  // kSwap, block scheme: per slot the slice's scales (q8_swap_scale_floats), copied with its codes
  // so that the promotion after the slice's MMAs reads shared memory, not L2.
  constexpr int kSwapScaleFloats = q8_swap_scale_floats(kTile);
  [[maybe_unused]] float* const sScale = reinterpret_cast<float*>(sB + STAGES * BN * BK);
  __shared__ int32_t s_row[BM];   // slot id per tile row, -1 padding
  __shared__ int64_t s_arow[BM];  // A row (token for stage 1, slot for stage 2)
  __shared__ float s_w[BM];       // routed weight per row (scale modes)
  static_assert(sizeof(s_row[0]) + sizeof(s_arow[0]) + sizeof(s_w[0]) == kQ8StaticBytesPerRow,
                "q8_min_blocks_per_sm counts these arrays");

  const int tid = static_cast<int>(threadIdx.x);
  const int lane = tid % kWarpSize;
  const int warp = tid / kWarpSize;
  const int wm = WGMMA ? warp % WM : warp / WN;
  const int wn = WGMMA ? warp / WM : warp % WN;
  const int kc = tid % KCH;
  const int row_step = kThreads / KCH;
  const int row0 = tid / KCH;

  fused_moe::dev::pdl_launch_dependents();
  fused_moe::dev::pdl_wait();
  const fused_moe::dev::TileSpace ts = fused_moe::dev::tile_space<BM, BK>(p);
  const int valid_m = ts.valid_m;
  const int64_t K = p.k;
  const int64_t k_tiles = ts.k_tiles;
  constexpr int kGroupM = 8;

  for (int64_t tile = blockIdx.x; tile < ts.total; tile += gridDim.x) {
    const int split = static_cast<int>(tile / ts.tiles_per_split);
    int m_blk, n_tile;
    fused_moe::dev::grouped_tile(tile % ts.tiles_per_split, ts.num_m, kGroupM, p.n_tiles, m_blk, n_tile);
    if (m_blk >= valid_m) continue;

    const int expert = p.expert_ids[m_blk];
    const bool expert_ok = expert >= 0 && expert < p.experts;
    __syncthreads();
    for (int r = tid; r < BM; r += kThreads) {
      const int32_t id = p.sorted_ids[static_cast<int64_t>(m_blk) * BM + r];
      const bool ok = id >= 0 && static_cast<int64_t>(id) < p.num_valid;
      s_row[r] = ok ? id : -1;
      s_arow[r] = ok ? (STAGE == 1 ? static_cast<int64_t>(id / p.top_k) : static_cast<int64_t>(id)) : 0;
      s_w[r] = (ok && p.scale_mode != 0) ? p.topk_weights[id] : 0.0f;
    }
    __syncthreads();

    const uint8_t* w_expert = p.w + static_cast<int64_t>(expert_ok ? expert : 0) * p.w_rows * K;
    // (kSwap, block scheme: the slot copies' base. The flush and the epilogues form the same address
    // where they use it: held across the main loop instead, it moved the registers and spills of the
    // other kernels.)
    [[maybe_unused]] const float* const w_scale_expert = p.w_scale + static_cast<int64_t>(expert_ok ? expert : 0) * p.w_es;
    // Weight row of tile row r (shared-memory order), -1 beyond n.
    auto w_row_of = [&](int r) -> int64_t {
      if (r >= BN) return -1;
      if constexpr (STAGE == 1) {
        const int pair = r / (2 * Atom::N), w = r % (2 * Atom::N);
        const int64_t col = static_cast<int64_t>(n_tile) * (BN / 2) + pair * Atom::N + (w % Atom::N);
        if (col >= p.n) return -1;
        return w >= Atom::N ? p.n + col : col;
      } else {
        const int64_t col = static_cast<int64_t>(n_tile) * BN + r;
        return col < p.n ? col : -1;
      }
    };
    // Weight row of accumulator column (nj, lane column c) of this warp.
    auto acc_wrow = [&](int nj, int c) -> int64_t {
      if constexpr (STAGE == 1) {
        const int64_t col = static_cast<int64_t>(n_tile) * (BN / 2) + (wn * WTN) / 2 + (nj / 2) * Atom::N + c;
        return (nj & 1) ? p.n + col : col;
      } else {
        return static_cast<int64_t>(n_tile) * BN + wn * WTN + nj * Atom::N + c;
      }
    };

    int64_t kt_begin = static_cast<int64_t>(split) * p.k_tiles_per_split;
    int64_t kt_end = kt_begin + p.k_tiles_per_split;
    if (kt_end > k_tiles) kt_end = k_tiles;
    if (!expert_ok || kt_begin > kt_end) kt_end = kt_begin;
    const int nk = static_cast<int>(kt_end - kt_begin);
    const int64_t k_stop = kt_end * BK < K ? kt_end * BK : K;

    auto load_stage = [&](int slot, int64_t kt) {
      const int64_t kbase = kt * BK + kc * 16;
      uint8_t* a_dst = sA + slot * BM * BK;
      uint8_t* b_dst = sB + slot * BN * BK;
#pragma unroll
      for (int i = 0; i < A_ITERS; ++i) {
        const int r = row0 + i * row_step;
        if ((BM * KCH) % kThreads == 0 || r < BM) {
          const bool ok = s_row[r] >= 0 && kbase < K;
          fused_moe::dev::copy16_async(a_dst + swz8<BK>(r, kc * 16), ok ? p.a + s_arow[r] * K + kbase : p.a, ok);
        }
      }
#pragma unroll
      for (int i = 0; i < B_ITERS; ++i) {
        const int r = row0 + i * row_step;
        if ((BN * KCH) % kThreads == 0 || r < BN) {
          const int64_t wrow = w_row_of(r);
          const bool ok = wrow >= 0 && kbase < K;
          fused_moe::dev::copy16_async(b_dst + swz8<BK>(r, kc * 16), ok ? w_expert + wrow * K + kbase : p.w, ok);
        }
      }
      if constexpr (kSwap && BLOCK) {  // slice kt is K group kt (BK = 128)
        float* const s_dst = sScale + slot * kSwapScaleFloats;
        if (tid < BM) {
          fused_moe::dev::copy4_async(s_dst + tid, p.a_scale + s_arow[tid] * p.a_rs + kt * p.a_gs, true);
        } else if (tid < kSwapScaleFloats) {  // weight rows 8j.. of the slot (past n: row 0's block, never stored)
          const int64_t wrow = w_row_of(8 * (tid - BM));
          fused_moe::dev::copy4_async(s_dst + tid, w_scale_expert + ((wrow >= 0 ? wrow : 0) >> p.w_rshift) * p.w_rs + kt * p.w_gs, true);
        }
      }
    };

    AccT acc[MT][NT][Atom::kAcc];
    float tot[kPromote ? MT : 1][kPromote ? NT : 1][Atom::kAcc];
#pragma unroll
    for (int mi = 0; mi < MT; ++mi)
#pragma unroll
      for (int nj = 0; nj < NT; ++nj)
#pragma unroll
        for (int e = 0; e < Atom::kAcc; ++e) {
          acc[mi][nj][e] = AccT(0);
          if constexpr (kPromote) tot[mi][nj][e] = 0.0f;
        }
    // kSwap: accumulator (nj, i) of this thread holds tile weight row swap_wrow(i) (smem order,
    // as w_row_of reads it) and token row swap_token(nj, i): wgmma's D layout with the weight
    // rows as its M (warp w of warpgroup g: rows 64g + 16w + lane/4 (+ 8)) and the tokens as N.
    [[maybe_unused]] auto swap_wrow = [&](int i) { return (warp / 4) * 64 + (warp % 4) * 16 + lane / 4 + 8 * (i / 2); };
    [[maybe_unused]] auto swap_token = [&](int nj, int i) { return 8 * nj + 2 * (lane % 4) + (i % 2); };

    // Block scheme: tot += acc * a_s(row, g) * w_s(block(col), g); acc = 0.
    // A lane's accumulators of one atom lie in one aligned column pair (kColPair 2; the AMD
    // atom: one column), weight rows 2j and 2j + 1 (inter_dim and the column offsets are even),
    // which no 128-row block splits: one weight scale per atom column. The two of a pair share
    // a row: one activation scale per pair.
    auto flush = [&](int64_t g) {
      if constexpr (BLOCK) {
        constexpr int CP = Atom::kColPair;
        const float* ws = p.w_scale + static_cast<int64_t>(expert_ok ? expert : 0) * p.w_es + g * p.w_gs;
        float wsc[NT];
#pragma unroll
        for (int nj = 0; nj < NT; ++nj) {
          // (a weight row past the expert's reads row 0's block: its column is never stored;
          // a select, not a branch around the load)
          const int64_t wrow = acc_wrow(nj, Atom::acc_col(0, lane));
          wsc[nj] = ws[((wrow < p.w_rows ? wrow : 0) >> p.w_rshift) * p.w_rs];
        }
#pragma unroll
        for (int mi = 0; mi < MT; ++mi)
#pragma unroll
          for (int i = 0; i < Atom::kAcc; i += CP) {
            const int r = wm * WTM + mi * Atom::M + Atom::acc_row(i, lane);
            const float as = p.a_scale[s_arow[r] * p.a_rs + g * p.a_gs];
#pragma unroll
            for (int e = 0; e < CP; ++e)
#pragma unroll
              for (int nj = 0; nj < NT; ++nj) {
                tot[mi][nj][i + e] += acc[mi][nj][i + e] * (as * wsc[nj]);
                acc[mi][nj][i + e] = 0.0f;
              }
          }
      } else {
        (void)g;
      }
    };

    // kSwap, fp8: the finished slice in `slot` (one 128-K group) into fp32, times a_s(token, g) *
    // w_s(block(weight row), g) in the block scheme, read from the slot (the scales of other
    // schemes factor out of K). Accumulators i < 2 and i >= 2 hold weight rows swap_wrow(0) and
    // swap_wrow(2): the 8-row groups 2 warp and 2 warp + 1 of the slot.
    [[maybe_unused]] auto swap_promote = [&](int slot) {
      if constexpr (kSwap && kPromote) {
        [[maybe_unused]] const float* const ss = sScale + slot * kSwapScaleFloats;
        [[maybe_unused]] float wsc[2] = {1.0f, 1.0f};
        if constexpr (BLOCK)
#pragma unroll
          for (int h = 0; h < 2; ++h) wsc[h] = ss[BM + 2 * warp + h];
#pragma unroll
        for (int nj = 0; nj < NT; ++nj)
#pragma unroll
          for (int i = 0; i < Atom::kAcc; ++i) {
            float sc = 1.0f;
            if constexpr (BLOCK) sc = ss[swap_token(nj, i)] * wsc[i / 2];
            tot[0][nj][i] += acc[0][nj][i] * sc;
          }
      } else {
        (void)slot;
      }
    };

    if constexpr (!WGMMA) {
      // The MMAs of one slot. kWhole: the slice lies before k_stop, so no step breaks off and
      // the block scheme's flushes fall on steps known once the loop is unrolled: no branch
      // between steps, so the next step's fragment loads may be issued early. The block scheme
      // takes it only where a slice holds two groups or more (kStraightSlices): at block_k 128
      // the early loads cost registers, and with them a block per SM.
      constexpr bool kStraightSlices = BK >= 2 * kGroupK;
      static_assert(!kStraightSlices || BK % kGroupK == 0, "whole slices flush at fixed steps");
      auto slice_steps = [&](const uint8_t* a_s, const uint8_t* b_s, int64_t kslice, auto whole) {
        constexpr bool kWhole = decltype(whole)::value;
#pragma unroll
        for (int kk = 0; kk < BK; kk += Atom::K) {
          if (!kWhole && kslice + kk >= k_stop) break;
          typename Atom::AFrag af[MT];
          typename Atom::BFrag bf[NT];
#pragma unroll
          for (int mi = 0; mi < MT; ++mi) Atom::template load_a<BK>(af[mi], a_s, wm * WTM + mi * Atom::M, kk, lane);
#pragma unroll
          for (int pj = 0; pj < NT / 2; ++pj)
            Atom::template load_b_pair<BK>(bf[2 * pj], bf[2 * pj + 1], b_s, wn * WTN + pj * 2 * Atom::N, kk, lane);
#pragma unroll
          for (int mi = 0; mi < MT; ++mi)
#pragma unroll
            for (int nj = 0; nj < NT; ++nj) Atom::template mma<INT8>(acc[mi][nj], af[mi], bf[nj]);
          if constexpr (BLOCK) {
            const int64_t knext = kslice + kk + Atom::K;
            const bool group_end = kWhole ? (kk + Atom::K) % kGroupK == 0 : knext % kGroupK == 0 || knext >= k_stop;
            if (group_end) flush((kslice + kk) / kGroupK);
          }
        }
      };
      fused_moe::dev::cp_async_mainloop<STAGES>(nk, kt_begin, load_stage, [&](int slot, int it) {
        const uint8_t* a_s = sA + slot * BM * BK;
        const uint8_t* b_s = sB + slot * BN * BK;
        const int64_t kslice = (kt_begin + it) * BK;
        if constexpr (BLOCK && !kStraightSlices) slice_steps(a_s, b_s, kslice, std::false_type{});
        else if (!BLOCK || kslice + BK <= k_stop) slice_steps(a_s, b_s, kslice, std::true_type{});
        else slice_steps(a_s, b_s, kslice, std::false_type{});
      });
    } else {
#if FMOE_HAVE_WGMMA
      using namespace fused_moe::dev;
      if constexpr (kSwap) {
        wgmma_mainloop<STAGES>(
            nk, kt_begin, load_stage,
            [&](int slot) {
              const uint32_t a_addr = smem_u32(sB + slot * BN * BK + (warp / 4) * 64 * BK);
              const uint32_t b_addr = smem_u32(sA + slot * BM * BK);
#pragma unroll
              for (int kk = 0; kk < BK / 32; ++kk)  // fp8: each slice starts a fresh accumulator
                wgmma8_m64k32<BM, INT8>(&acc[0][0][0], wgmma_desc(a_addr + kk * 32), wgmma_desc(b_addr + kk * 32),
                                        kPromote && kk == 0 ? 0 : 1);
            },
            [&](int it) {
              if constexpr (kPromote) {
                wgmma_wait<0>();
                swap_promote(it % STAGES);  // BK = 128: one slice = one K group
              } else {
                wgmma_wait<1>();
              }
            });
      } else {
      const int wg_m = wm / 4;
      wgmma_mainloop<STAGES>(
          nk, kt_begin, load_stage,
          [&](int slot) {
            const uint32_t a_addr = smem_u32(sA + slot * BM * BK + wg_m * 64 * BK);
            const uint32_t b_addr = smem_u32(sB + slot * BN * BK + wn * WTN * BK);
#pragma unroll
            for (int kk = 0; kk < BK / 32; ++kk)
              wgmma8_m64k32<WTN, INT8>(&acc[0][0][0], wgmma_desc(a_addr + kk * 32), wgmma_desc(b_addr + kk * 32));
          },
          [&](int it) {
            if constexpr (BLOCK) {
              wgmma_wait<0>();
              flush(kt_begin + it);  // BK = 128: one slice = one K group
            } else {
              wgmma_wait<1>();
            }
          });
      }
#else
#if defined(__CUDA_ARCH__)
      __trap();  // not an sm_90a build: the host never launches wgmma shapes here
#endif
#endif
    }
    __syncthreads();

    if constexpr (kSwap) {
      // ---- epilogue of the swapped tile: accumulator (nj, i) is (token swap_token, weight row
      // swap_wrow); stage 1's 16-row warp slab holds the gate (i < 2) and up (i >= 2) rows of
      // the same 8 columns (w_row_of's order), so each thread has both halves of its outputs.
      const float* w_sc = p.w_scale + static_cast<int64_t>(expert_ok ? expert : 0) * p.w_es;
      auto value = [&](int nj, int i, int64_t wrow) -> float {
        const int tr = swap_token(nj, i);
        if constexpr (BLOCK) {
          (void)wrow, (void)tr;
          return tot[0][nj][i];
        } else {
          const float as = p.a_scale[s_arow[tr] * p.a_rs];
          const float wsc = w_sc[(wrow >= 0 && wrow < p.w_rows ? wrow : 0) * p.w_rs];
          if constexpr (kPromote) return tot[0][nj][i] * (as * wsc);
          else return static_cast<float>(acc[0][nj][i]) * (as * wsc);
        }
      };
      const int64_t n = p.n;
#pragma unroll
      for (int nj = 0; nj < NT; ++nj)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int tr = swap_token(nj, e);
          const int id = s_row[tr];
          if constexpr (STAGE == 1) {
            const int64_t gate_row = w_row_of(swap_wrow(0)), up_row = w_row_of(swap_wrow(2));
            if (id < 0 || gate_row < 0) continue;
            const float sc = p.scale_mode == 1 ? s_w[tr] : 1.0f;
            const float g = value(nj, e, gate_row) * sc, u = value(nj, 2 + e, up_row) * sc;
            const float a = p.act == 0 ? fused_moe::dev::silu(g) : fused_moe::dev::gelu_tanh(g);
            static_cast<uint16_t*>(p.out)[static_cast<int64_t>(id) * n + gate_row] = q8_store16(a * u, p.out_f16);
          } else {
            if (id < 0) continue;
            const float sc = p.scale_mode == 2 ? s_w[tr] : 1.0f;
            float* out = static_cast<float*>(p.out) + static_cast<int64_t>(split) * p.split_stride +
                         static_cast<int64_t>(id) * n;
#pragma unroll
            for (int h = 0; h < 2; ++h) {
              const int64_t col = w_row_of(swap_wrow(2 * h));
              if (col >= 0) out[col] = value(nj, 2 * h + e, col) * sc;
            }
          }
        }
    } else {
      // ---- epilogue: v = scaled accumulator of (row r, weight row wrow)
      const float* w_sc = p.w_scale + static_cast<int64_t>(expert_ok ? expert : 0) * p.w_es;
      auto value = [&](int mi, int nj, int i, int r, int64_t wrow) -> float {
        if constexpr (BLOCK) {
          (void)r; (void)wrow;
          return tot[mi][nj][i];
        } else {
          const float as = p.a_scale[s_arow[r] * p.a_rs];
          const float wsc = w_sc[(wrow < p.w_rows ? wrow : 0) * p.w_rs];
          return static_cast<float>(acc[mi][nj][i]) * (as * wsc);
        }
      };
      const int64_t n = p.n;
      constexpr int CP = Atom::kColPair;  // adjacent columns per lane: stored together where n is even
      const bool pair_ok = CP == 2 && (n % 2 == 0);
      if constexpr (STAGE == 1) {
        uint16_t* out = static_cast<uint16_t*>(p.out);
#pragma unroll
        for (int mi = 0; mi < MT; ++mi)
#pragma unroll
          for (int pj = 0; pj < NT / 2; ++pj)
#pragma unroll
            for (int i = 0; i < Atom::kAcc; i += CP) {
              const int r = wm * WTM + mi * Atom::M + Atom::acc_row(i, lane);
              const int id = s_row[r];
              const int64_t col = acc_wrow(2 * pj, Atom::acc_col(i, lane));
              if (id < 0 || col >= n) continue;
              const float sc = p.scale_mode == 1 ? s_w[r] : 1.0f;
              uint16_t h[CP];
#pragma unroll
              for (int e = 0; e < CP; ++e) {
                const float g = value(mi, 2 * pj, i + e, r, col + e) * sc;
                const float u = value(mi, 2 * pj + 1, i + e, r, n + col + e) * sc;
                const float a = p.act == 0 ? fused_moe::dev::silu(g) : fused_moe::dev::gelu_tanh(g);
                h[e] = q8_store16(a * u, p.out_f16);
              }
              uint16_t* dst = out + static_cast<int64_t>(id) * n + col;
              if (CP == 2 && pair_ok && col + 1 < n) {
                *reinterpret_cast<uint32_t*>(dst) = static_cast<uint32_t>(h[0]) | (static_cast<uint32_t>(h[CP - 1]) << 16);
              } else {
#pragma unroll
                for (int e = 0; e < CP; ++e)
                  if (col + e < n) dst[e] = h[e];
              }
            }
      } else {
        float* out = static_cast<float*>(p.out) + static_cast<int64_t>(split) * p.split_stride;
#pragma unroll
        for (int mi = 0; mi < MT; ++mi)
#pragma unroll
          for (int nj = 0; nj < NT; ++nj)
#pragma unroll
            for (int i = 0; i < Atom::kAcc; i += CP) {
              const int r = wm * WTM + mi * Atom::M + Atom::acc_row(i, lane);
              const int id = s_row[r];
              const int64_t col = acc_wrow(nj, Atom::acc_col(i, lane));
              if (id < 0 || col >= n) continue;
              const float sc = p.scale_mode == 2 ? s_w[r] : 1.0f;
              float v[CP];
#pragma unroll
              for (int e = 0; e < CP; ++e) v[e] = value(mi, nj, i + e, r, col + e) * sc;
              float* dst = out + static_cast<int64_t>(id) * n + col;
              if (CP == 2 && pair_ok && col + 1 < n) {
                *reinterpret_cast<float2*>(dst) = make_float2(v[0], v[CP - 1]);
              } else {
#pragma unroll
                for (int e = 0; e < CP; ++e)
                  if (col + e < n) dst[e] = v[e];
              }
            }
      }
    }
  }
}
#undef MOE_Q8_LAUNCH_BOUNDS

}  // namespace moe::fused_moe_q8::dev
