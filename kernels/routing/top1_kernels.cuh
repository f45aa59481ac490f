// __global__ kernels: sigmoid top-1 fused with the router GEMM.
// logits = x (M, K) @ w (K, E), fp32 accumulation; id = argmax, weight =
// sigmoid(logit[id]); optional shared-expert column. Semantics and the
// launch plan: kernels/routing/routing.hpp. Launcher: top1_launch.hip.
//
// Grid (row_tiles, splits, col_tiles). A block computes the fp32 partial
// logits of BM rows x BN experts over one K range into shared memory. With one
// split and one column tile ("direct") it selects right away. Otherwise it
// writes the partial tile to the workspace [split][M][E], and the last block
// to arrive for its row tile (atomic counter, reset afterwards) sums the
// splits in split order and selects: deterministic for a given plan.
#pragma once
#include <cstdint>

#include "kernels/routing/routing_device.cuh"

namespace moe::routing::dev {

struct Top1Args {
  int64_t M;
  int64_t K;
  int E;
  int64_t k_chunk;  // K per split, multiple of 128
  int splits;
  int col_tiles;
  int shared_expert;
  int direct;
  int vec_x;  // x rows 16-byte aligned (K % 8 == 0, aligned base)
  int vec_w;  // w rows 16-byte aligned (E % 8 == 0, aligned base)
};

__device__ __forceinline__ float ld_cg(const float* p) {
#if defined(__CUDA_ARCH__)
  return __ldcg(p);
#else
  return *static_cast<const volatile float*>(p);
#endif
}

// Selection of the rows of a finished tile. `tile` holds BM x (BN+1) floats
// (BN+1 row stride) for the block's rows and columns.
template <int BM, int BN, int THREADS>
__device__ void top1_epilogue(float* tile, const Top1Args& a, int64_t row0, int split, int col0, float* ws,
                              int* counters, float* out_w, int32_t* out_id, int* s_flag) {
  constexpr int TS = BN + 1;
  const int tid = static_cast<int>(threadIdx.x);
  const int cols = a.shared_expert ? 2 : 1;
  auto select_row = [&](int64_t row, const float* src) {
    uint32_t bk = kKeyAbsent;
    int bi = 0;
    float bv = 0.0f;
    for (int e = 0; e < a.E; ++e) {
      const float v = src[e];
      const uint32_t kk = order_key(v);
      if (kk > bk) {
        bk = kk;
        bi = e;
        bv = v;
      }
    }
    out_id[row * cols] = bi;
    out_w[row * cols] = det_sigmoid(bv);
    if (a.shared_expert) {
      out_id[row * cols + 1] = a.E;
      out_w[row * cols + 1] = 1.0f;
    }
  };

  if (a.direct) {
    for (int r = tid; r < BM; r += THREADS) {
      const int64_t row = row0 + r;
      if (row < a.M) select_row(row, tile + r * TS);
    }
    return;
  }

  for (int idx = tid; idx < BM * BN; idx += THREADS) {
    const int r = idx / BN, c = idx % BN;
    const int64_t row = row0 + r;
    const int col = col0 + c;
    if (row < a.M && col < a.E) ws[(static_cast<int64_t>(split) * a.M + row) * a.E + col] = tile[r * TS + c];
  }
  __threadfence();
  __syncthreads();
  if (tid == 0) {
    const int prev = atomicAdd(&counters[blockIdx.x], 1);
    *s_flag = prev == a.splits * a.col_tiles - 1 ? 1 : 0;
  }
  __syncthreads();
  if (*s_flag == 0) return;
  __threadfence();
  const int rb_cap = (BM * TS) / a.E;
  const int rb = rb_cap < BM ? rb_cap : BM;
  for (int rbase = 0; rbase < BM; rbase += rb) {
    const int nr = rb < BM - rbase ? rb : BM - rbase;
    for (int idx = tid; idx < nr * a.E; idx += THREADS) {
      const int r = idx / a.E, e = idx % a.E;
      const int64_t row = row0 + rbase + r;
      float v = 0.0f;
      if (row < a.M) {
#pragma unroll 4
        for (int s = 0; s < a.splits; ++s) v += ld_cg(ws + (static_cast<int64_t>(s) * a.M + row) * a.E + e);
      }
      tile[r * a.E + e] = v;
    }
    __syncthreads();
    for (int r = tid; r < nr; r += THREADS) {
      const int64_t row = row0 + rbase + r;
      if (row < a.M) select_row(row, tile + r * a.E);
    }
    __syncthreads();
  }
  if (tid == 0) counters[blockIdx.x] = 0;  // ready for the next launch
}

// ---------------------------------------------------------------------------
// Tensor-core path (sm_80+): 4 warps, BM = 64 rows (16 per warp), BN = 8*NT
// experts, K in chunks of 128. x fragments come straight from global memory
// with 16-byte loads: thread (g = lane/4, t = lane%4) loads k = 16t .. 16t+15
// of rows g and g+8 of each 64-wide half chunk, and uses them as the mma
// columns {2t, 2t+1, 2t+8, 2t+9} of k-step s as k = 16t+4s+{0,1,2,3}. The
// same permutation of k is applied to w, which is staged transposed in
// shared memory (wT[n][k]), so the sum over k is unchanged.
// ---------------------------------------------------------------------------
inline constexpr int kTcBM = 64;
inline constexpr int kTcKB = 128;
inline constexpr int kTcWS = kTcKB + 8;  // wT row stride (bf16 elements): conflict-free 16-byte reads

template <int NT>
constexpr int tc_smem_bytes() {
  constexpr int staging = 2 * NT * 8 * kTcWS * 2;
  constexpr int tile = kTcBM * (NT * 8 + 1) * 4;
  return (staging > tile ? staging : tile) + 16;
}

#if !defined(MOE_BACKEND_HIP)
__device__ __forceinline__ uint4 ld_stream(const uint4* p) {
#if defined(__CUDA_ARCH__)
  return __ldcs(p);
#else
  return *p;
#endif
}

template <bool F16>
__device__ __forceinline__ void mma16816(float (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                         uint32_t b0, uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  if constexpr (F16) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
  }
#else
  __trap();  // never launched below sm_80: the launcher picks the SIMT path
#endif
}

__device__ __forceinline__ uint32_t word8(const uint4 (&q)[2], int i) {
  const uint4& u = q[i >> 2];
  switch (i & 3) {
    case 0: return u.x;
    case 1: return u.y;
    case 2: return u.z;
    default: return u.w;
  }
}

// 16 consecutive 16-bit elements x[row][k .. k+15] (zeros past ke or M).
__device__ __forceinline__ void load_x16(const uint16_t* __restrict__ x, const Top1Args& a, int64_t row, int64_t k,
                                         int64_t ke, uint4 (&out)[2]) {
  if (row < a.M && a.vec_x && k + 16 <= ke) {
    const uint4* p = reinterpret_cast<const uint4*>(x + row * a.K + k);
    out[0] = ld_stream(p);
    out[1] = ld_stream(p + 1);
    return;
  }
  uint32_t w[8];
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    const int64_t k0 = k + 2 * j;
    const uint32_t lo = (row < a.M && k0 < ke) ? x[row * a.K + k0] : 0u;
    const uint32_t hi = (row < a.M && k0 + 1 < ke) ? x[row * a.K + k0 + 1] : 0u;
    w[j] = lo | (hi << 16);
  }
  out[0] = make_uint4(w[0], w[1], w[2], w[3]);
  out[1] = make_uint4(w[4], w[5], w[6], w[7]);
}

// 8 consecutive experts w[k][col .. col+7] (zeros past ke or E).
__device__ __forceinline__ uint4 load_w8(const uint16_t* __restrict__ w, const Top1Args& a, int64_t k, int64_t ke,
                                         int col) {
  if (k < ke && a.vec_w && col + 8 <= a.E) return __ldg(reinterpret_cast<const uint4*>(w + k * a.E + col));
  uint32_t r[4];
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const uint32_t lo = (k < ke && col + 2 * j < a.E) ? w[k * a.E + col + 2 * j] : 0u;
    const uint32_t hi = (k < ke && col + 2 * j + 1 < a.E) ? w[k * a.E + col + 2 * j + 1] : 0u;
    r[j] = lo | (hi << 16);
  }
  return make_uint4(r[0], r[1], r[2], r[3]);
}

template <int NT>
__device__ __forceinline__ void store_wT(uint16_t* wt, int unit, const uint4& v) {
  const int kk = unit / NT, n8 = unit % NT;
  const uint32_t q[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    wt[(n8 * 8 + 2 * j) * kTcWS + kk] = static_cast<uint16_t>(q[j] & 0xffffu);
    wt[(n8 * 8 + 2 * j + 1) * kTcWS + kk] = static_cast<uint16_t>(q[j] >> 16);
  }
}

template <int NT, bool F16>
__global__ void __launch_bounds__(128) sigmoid_top1_tc_kernel(const uint16_t* __restrict__ x,
                                                              const uint16_t* __restrict__ w,
                                                              float* __restrict__ out_w,
                                                              int32_t* __restrict__ out_id, float* ws,
                                                              int* counters, Top1Args a) {
  constexpr int BN = NT * 8;
  constexpr bool kPrefetchW = NT <= 4;
  extern __shared__ __align__(16) unsigned char top1_smem[];
  uint16_t* wT = reinterpret_cast<uint16_t*>(top1_smem);
  float* tile = reinterpret_cast<float*>(top1_smem);
  int* s_flag = reinterpret_cast<int*>(top1_smem + tc_smem_bytes<NT>() - 16);

  const int tid = static_cast<int>(threadIdx.x);
  const int warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kTcBM;
  const int split = static_cast<int>(blockIdx.y);
  const int col0 = static_cast<int>(blockIdx.z) * BN;
  const int64_t kb = static_cast<int64_t>(split) * a.k_chunk;
  const int64_t ke = kb + a.k_chunk < a.K ? kb + a.k_chunk : a.K;
  const int64_t rA = row0 + warp * 16 + g, rB = rA + 8;
  const int nchunks = static_cast<int>((ke - kb + kTcKB - 1) / kTcKB);

  float acc[NT][4];
#pragma unroll
  for (int j = 0; j < NT; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;

  uint4 xa[2][2][2];  // [row g / g+8][64-wide half][16 bytes]
  uint4 wr[kPrefetchW ? NT : 1];
  auto load_x_chunk = [&](int64_t kc) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      load_x16(x, a, rA, kc + h * 64 + 16 * t, ke, xa[0][h]);
      load_x16(x, a, rB, kc + h * 64 + 16 * t, ke, xa[1][h]);
    }
  };
  auto load_w_chunk = [&](int64_t kc) {
#pragma unroll
    for (int q = 0; q < (kPrefetchW ? NT : 1); ++q) {
      const int unit = tid + 128 * q;
      wr[q] = load_w8(w, a, kc + unit / NT, ke, col0 + 8 * (unit % NT));
    }
  };

  if (nchunks > 0) {
    load_x_chunk(kb);
    if constexpr (kPrefetchW) load_w_chunk(kb);
  }
  for (int c = 0; c < nchunks; ++c) {
    const int64_t kc = kb + static_cast<int64_t>(c) * kTcKB;
    uint16_t* wb = wT + (c & 1) * BN * kTcWS;
    if constexpr (kPrefetchW) {
#pragma unroll
      for (int q = 0; q < NT; ++q) store_wT<NT>(wb, tid + 128 * q, wr[q]);
    } else {
#pragma unroll 4
      for (int q = 0; q < NT; ++q) {
        const int unit = tid + 128 * q;
        store_wT<NT>(wb, unit, load_w8(w, a, kc + unit / NT, ke, col0 + 8 * (unit % NT)));
      }
    }
    __syncthreads();
    uint4 xc[2][2][2];
#pragma unroll
    for (int r = 0; r < 2; ++r)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        xc[r][h][0] = xa[r][h][0];
        xc[r][h][1] = xa[r][h][1];
      }
    if (c + 1 < nchunks) {
      load_x_chunk(kc + kTcKB);
      if constexpr (kPrefetchW) load_w_chunk(kc + kTcKB);
    }
#pragma unroll
    for (int h = 0; h < 2; ++h) {
#pragma unroll
      for (int j = 0; j < NT; ++j) {
        const uint4* bp = reinterpret_cast<const uint4*>(wb + (j * 8 + g) * kTcWS + h * 64 + 16 * t);
        const uint4 bq[2] = {bp[0], bp[1]};
#pragma unroll
        for (int s = 0; s < 4; ++s) {
          mma16816<F16>(acc[j], word8(xc[0][h], 2 * s), word8(xc[1][h], 2 * s), word8(xc[0][h], 2 * s + 1),
                        word8(xc[1][h], 2 * s + 1), word8(bq, 2 * s), word8(bq, 2 * s + 1));
        }
      }
    }
  }
  __syncthreads();  // staging buffers become the logits tile
  constexpr int TS = BN + 1;
  const int lr = warp * 16 + g;
#pragma unroll
  for (int j = 0; j < NT; ++j) {
    const int cc = j * 8 + 2 * t;
    tile[lr * TS + cc] = acc[j][0];
    tile[lr * TS + cc + 1] = acc[j][1];
    tile[(lr + 8) * TS + cc] = acc[j][2];
    tile[(lr + 8) * TS + cc + 1] = acc[j][3];
  }
  __syncthreads();
  top1_epilogue<kTcBM, BN, 128>(tile, a, row0, split, col0, ws, counters, out_w, out_id, s_flag);
}
#endif  // !MOE_BACKEND_HIP

// ---------------------------------------------------------------------------
// Portable SIMT path: 128 threads, 32 x 32 tile, fp32 FMAs over K chunks of 32.
// ---------------------------------------------------------------------------
inline constexpr int kSimtBM = 32;
inline constexpr int kSimtBN = 32;
inline constexpr int kSimtSmemFloats = 2 * 32 * 33;

template <bool F16>
__device__ __forceinline__ float half_bits_to_float(uint16_t b) {
  if constexpr (F16) {
    return f16_to_float(b);
  } else {
    return bf16_bits_to_f32(b);
  }
}

template <bool F16>
__global__ void __launch_bounds__(128) sigmoid_top1_simt_kernel(const uint16_t* __restrict__ x,
                                                                const uint16_t* __restrict__ w,
                                                                float* __restrict__ out_w,
                                                                int32_t* __restrict__ out_id, float* ws,
                                                                int* counters, Top1Args a) {
  __shared__ float sm[kSimtSmemFloats];
  __shared__ int s_flag;
  float* xs = sm;             // [32 rows][33]
  float* wsm = sm + 32 * 33;  // [32 k][33]
  const int tid = static_cast<int>(threadIdx.x);
  const int ty = tid / 8, tx = tid % 8;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kSimtBM;
  const int split = static_cast<int>(blockIdx.y);
  const int col0 = static_cast<int>(blockIdx.z) * kSimtBN;
  const int64_t kb = static_cast<int64_t>(split) * a.k_chunk;
  const int64_t ke = kb + a.k_chunk < a.K ? kb + a.k_chunk : a.K;
  float acc[2][4] = {{0, 0, 0, 0}, {0, 0, 0, 0}};
  for (int64_t kc = kb; kc < ke; kc += 32) {
#pragma unroll
    for (int q = 0; q < 8; ++q) {
      const int idx = tid + 128 * q;
      const int r = idx / 32, kk = idx % 32;
      const int64_t row = row0 + r, k = kc + kk;
      xs[r * 33 + kk] = (row < a.M && k < ke) ? half_bits_to_float<F16>(x[row * a.K + k]) : 0.0f;
      const int n = idx % 32, kw = idx / 32;
      const int64_t k2 = kc + kw;
      wsm[kw * 33 + n] = (k2 < ke && col0 + n < a.E) ? half_bits_to_float<F16>(w[k2 * a.E + col0 + n]) : 0.0f;
    }
    __syncthreads();
#pragma unroll 8
    for (int kk = 0; kk < 32; ++kk) {
      const float a0 = xs[ty * 33 + kk], a1 = xs[(ty + 16) * 33 + kk];
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const float b = wsm[kk * 33 + tx * 4 + j];
        acc[0][j] = fmaf(a0, b, acc[0][j]);
        acc[1][j] = fmaf(a1, b, acc[1][j]);
      }
    }
    __syncthreads();
  }
  float* tile = sm;  // [32][33]
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    tile[ty * 33 + tx * 4 + j] = acc[0][j];
    tile[(ty + 16) * 33 + tx * 4 + j] = acc[1][j];
  }
  __syncthreads();
  top1_epilogue<kSimtBM, kSimtBN, 128>(tile, a, row0, split, col0, ws, counters, out_w, out_id, &s_flag);
}

}  // namespace moe::routing::dev
