// Device code of the quantization family (included by quant_launch.hip only).
//
// Every kernel follows the contract of quant.hpp with fp8.hpp's arithmetic:
//   amax over a segment = max of |x| bit patterns (exact; Inf/NaN sort above every
//   finite value, so "amax bits >= 0x7f800000" flags a bad segment),
//   scale = quant_scale_from_amax(amax, qmax), inv = quant_inv_scale(scale),
//   code = encode(quant_prescale(x, inv)).
// Vector paths load 16 bytes (8 bf16/fp16 or 4 fp32) per thread; scalar paths handle
// any shape and alignment.
#pragma once
#include <cstdint>

#include "kernels/quant/quant.hpp"
#include "moe/dtype.hpp"
#include "moe/fp8.hpp"
#include "moe/gpu_runtime.hpp"
#include "moe/warp.cuh"

namespace moe::quant::dev {

// Max over aligned groups of `width` lanes (width a power of two <= 32).
__device__ __forceinline__ int group_max(int v, int width) {
  for (int m = width / 2; m >= 1; m >>= 1) {
    const int o = warp::shfl_xor(v, m, 32);
    v = o > v ? o : v;
  }
  return v;
}

// Max over the whole block; every thread gets the result. smem: >= 33 ints.
__device__ __forceinline__ int block_max(int v, int* smem) {
  const int ws = warpSize;
  for (int m = ws / 2; m >= 1; m >>= 1) {
    const int o = warp::shfl_xor(v, m, ws);
    v = o > v ? o : v;
  }
  const int lane = static_cast<int>(threadIdx.x) % ws, wid = static_cast<int>(threadIdx.x) / ws;
  const int nw = (static_cast<int>(blockDim.x) + ws - 1) / ws;
  if (lane == 0) smem[wid] = v;
  __syncthreads();
  if (wid == 0) {
    v = lane < nw ? smem[lane] : 0;
    for (int m = ws / 2; m >= 1; m >>= 1) {
      const int o = warp::shfl_xor(v, m, ws);
      v = o > v ? o : v;
    }
    if (lane == 0) smem[32] = v;
  }
  __syncthreads();
  const int r = smem[32];
  __syncthreads();  // smem may be reused by the caller
  return r;
}

// Records a bad segment: status[0] counts reports, status[1] keeps ~(smallest segment).
__device__ __forceinline__ void report_bad(unsigned long long* status, int64_t seg) {
  atomicAdd(&status[0], 1ull);
  atomicMax(&status[1], ~static_cast<unsigned long long>(seg));
}

__device__ __forceinline__ int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

__device__ __forceinline__ int abs_bits(float v) { return static_cast<int>(f32_bits(v) & 0x7fffffffu); }

// ---- input element types ------------------------------------------------------------
template <DType D>
struct In;
template <>
struct In<DType::BF16> {
  using T = uint16_t;
  static __device__ __forceinline__ float f32(T v) { return bf16_bits_to_f32(v); }
};
template <>
struct In<DType::F16> {
  using T = uint16_t;
  static __device__ __forceinline__ float f32(T v) { return f16_bits_to_f32(v); }
};
template <>
struct In<DType::F32> {
  using T = float;
  static __device__ __forceinline__ float f32(T v) { return v; }
};
template <DType D>
constexpr int kVec = 16 / static_cast<int>(sizeof(typename In<D>::T));  // elements per 16-byte load

// Loads VEC consecutive elements starting at p (16-byte aligned when VEC > 1).
template <DType D, int VEC>
__device__ __forceinline__ void load(const typename In<D>::T* p, float (&v)[VEC]) {
  using T = typename In<D>::T;
  if constexpr (VEC == 1) {
    v[0] = In<D>::f32(p[0]);
  } else {
    static_assert(VEC * sizeof(T) == 16, "vector loads are 16 bytes");
    union {
      uint4 u;
      T e[VEC];
    } w;
    w.u = *reinterpret_cast<const uint4*>(p);
#pragma unroll
    for (int i = 0; i < VEC; ++i) v[i] = In<D>::f32(w.e[i]);
  }
}

// ---- codes --------------------------------------------------------------------------
template <QType Q>
__device__ __forceinline__ uint8_t code1(float x, float inv) {
  if constexpr (Q == QType::INT8) {
    return static_cast<uint8_t>(int8_quantize(x, inv));
  } else {
    constexpr Fp8Format F = Q == QType::FP8_E4M3FN ? Fp8Format::E4M3FN : Fp8Format::E4M3FNUZ;
    return fp8_encode_fast<F>(quant_prescale(x, inv));
  }
}

template <QType Q>
__device__ __forceinline__ uint16_t code2(float x0, float x1, float inv) {
  if constexpr (Q == QType::INT8) {
    return static_cast<uint16_t>(static_cast<uint8_t>(int8_quantize(x0, inv)) |
                                 (static_cast<uint16_t>(static_cast<uint8_t>(int8_quantize(x1, inv))) << 8));
  } else {
    constexpr Fp8Format F = Q == QType::FP8_E4M3FN ? Fp8Format::E4M3FN : Fp8Format::E4M3FNUZ;
    return fp8x2_encode_fast<F>(quant_prescale(x0, inv), quant_prescale(x1, inv));
  }
}

// Quantizes and stores VEC codes at q (VEC-byte aligned when VEC > 1).
template <QType Q, int VEC>
__device__ __forceinline__ void store_codes(uint8_t* q, const float (&v)[VEC], float inv) {
  if constexpr (VEC == 1) {
    q[0] = code1<Q>(v[0], inv);
  } else {
    static_assert(VEC % 4 == 0, "vector stores are 4 or 8 bytes");
    uint32_t w[VEC / 4];
#pragma unroll
    for (int i = 0; i < VEC / 4; ++i) {
      const uint32_t lo = code2<Q>(v[4 * i], v[4 * i + 1], inv);
      const uint32_t hi = code2<Q>(v[4 * i + 2], v[4 * i + 3], inv);
      w[i] = lo | (hi << 16);
    }
    if constexpr (VEC == 8) {
      *reinterpret_cast<uint2*>(q) = make_uint2(w[0], w[1]);
    } else {
      *reinterpret_cast<uint32_t*>(q) = w[0];
    }
  }
}

// ---- per-tensor (two passes) --------------------------------------------------------
// Pass 1: grid (blocks_x, batch); amax[b] = max |x| bits over batch entry b.
template <DType D, int VEC>
__global__ void amax_kernel(const typename In<D>::T* __restrict__ x, int64_t n_per_batch, uint32_t* __restrict__ amax) {
  __shared__ int smem[33];
  const int64_t b = blockIdx.y;
  const typename In<D>::T* xb = x + b * n_per_batch;
  const int64_t nv = n_per_batch / VEC;
  int m = 0;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < nv; i += stride) {
    float v[VEC];
    load<D, VEC>(xb + i * VEC, v);
#pragma unroll
    for (int k = 0; k < VEC; ++k) m = max(m, abs_bits(v[k]));
  }
  m = block_max(m, smem);
  if (threadIdx.x == 0 && m > 0) atomicMax(&amax[b], static_cast<uint32_t>(m));
}

// Pass 2: grid (blocks_x, batch). Dynamic: scale from amax[b] (block 0 writes it and
// reports a non-finite amax). Static: scale = scales[b]; any non-finite element or an
// invalid scale is reported.
template <DType D, int VEC, QType Q, bool Static>
__global__ void tensor_quant_kernel(const typename In<D>::T* __restrict__ x, uint8_t* __restrict__ q,
                                    float* __restrict__ scales, int64_t n_per_batch, const uint32_t* __restrict__ amax,
                                    float qmax, unsigned long long* __restrict__ status) {
  const int64_t b = blockIdx.y;
  float scale;
  if constexpr (Static) {
    scale = scales[b];
  } else {
    scale = quant_scale_from_amax(bits_f32(amax[b]), qmax);
  }
  const float inv = quant_inv_scale(scale);
  if (blockIdx.x == 0 && threadIdx.x == 0) {
    if constexpr (Static) {
      if (!(scale >= 0.0f && scale <= FLT_MAX)) report_bad(status, b);
    } else {
      scales[b] = scale;
      if (amax[b] >= 0x7f800000u) report_bad(status, b);
    }
  }
  const typename In<D>::T* xb = x + b * n_per_batch;
  uint8_t* qb = q + b * n_per_batch;
  const int64_t nv = n_per_batch / VEC;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  bool bad = false;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < nv; i += stride) {
    float v[VEC];
    load<D, VEC>(xb + i * VEC, v);
    if constexpr (Static) {
#pragma unroll
      for (int k = 0; k < VEC; ++k) bad |= abs_bits(v[k]) >= 0x7f800000;
    }
    store_codes<Q, VEC>(qb + i * VEC, v, inv);
  }
  if constexpr (Static) {
    if (bad) report_bad(status, b);
  }
}

// ---- per row (per token / per output channel) -----------------------------------------
// One block per row of `cols` elements; the first CACHE vectors of each thread stay
// in registers between the amax and the quantize step, the rest are re-read (L1).
template <DType D, int VEC, QType Q, int CACHE>
__global__ void row_quant_kernel(const typename In<D>::T* __restrict__ x, uint8_t* __restrict__ q,
                                 float* __restrict__ scales, int64_t cols, float qmax,
                                 unsigned long long* __restrict__ status) {
  __shared__ int smem[33];
  const int64_t row = blockIdx.x;
  const typename In<D>::T* xr = x + row * cols;
  uint8_t* qr = q + row * cols;
  const int64_t nv = cols / VEC;
  const int T = static_cast<int>(blockDim.x);
  float cache[CACHE][VEC];
  int m = 0;
#pragma unroll
  for (int j = 0; j < CACHE; ++j) {
    const int64_t i = threadIdx.x + static_cast<int64_t>(j) * T;
    if (i < nv) {
      load<D, VEC>(xr + i * VEC, cache[j]);
#pragma unroll
      for (int k = 0; k < VEC; ++k) m = max(m, abs_bits(cache[j][k]));
    }
  }
  for (int64_t i = threadIdx.x + static_cast<int64_t>(CACHE) * T; i < nv; i += T) {
    float v[VEC];
    load<D, VEC>(xr + i * VEC, v);
#pragma unroll
    for (int k = 0; k < VEC; ++k) m = max(m, abs_bits(v[k]));
  }
  m = block_max(m, smem);
  const float scale = quant_scale_from_amax(bits_f32(static_cast<uint32_t>(m)), qmax);
  const float inv = quant_inv_scale(scale);
  if (threadIdx.x == 0) {
    scales[row] = scale;
    if (m >= 0x7f800000) report_bad(status, row);
  }
#pragma unroll
  for (int j = 0; j < CACHE; ++j) {
    const int64_t i = threadIdx.x + static_cast<int64_t>(j) * T;
    if (i < nv) store_codes<Q, VEC>(qr + i * VEC, cache[j], inv);
  }
  for (int64_t i = threadIdx.x + static_cast<int64_t>(CACHE) * T; i < nv; i += T) {
    float v[VEC];
    load<D, VEC>(xr + i * VEC, v);
    store_codes<Q, VEC>(qr + i * VEC, v, inv);
  }
}

// ---- per token group, vector path ------------------------------------------------------
// Requirements (checked on the host): cols % VEC == 0, group % VEC == 0, TPG = group/VEC
// a power of two <= 32, blockDim.x % TPG == 0, 16-byte aligned x, VEC-aligned q.
// Block i covers chunk (i % chunks) of row (i / chunks): blockDim.x vectors, one per
// thread; the TPG consecutive threads of a group reduce with shuffles.
template <DType D, int VEC, QType Q>
__global__ void group_quant_kernel(const typename In<D>::T* __restrict__ x, uint8_t* __restrict__ q,
                                   float* __restrict__ scales, int64_t rows_per_batch, int64_t cols, int64_t group,
                                   int64_t chunks, bool col_major, float qmax,
                                   unsigned long long* __restrict__ status) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) / chunks;  // over batch*rows
  const int64_t chunk = static_cast<int64_t>(blockIdx.x) % chunks;
  const int tpg = static_cast<int>(group / VEC);
  const int64_t vi = chunk * blockDim.x + threadIdx.x;  // vector index within the row
  const int64_t nv = cols / VEC;
  float v[VEC];
  int m = 0;
  if (vi < nv) {
    load<D, VEC>(x + row * cols + vi * VEC, v);
#pragma unroll
    for (int k = 0; k < VEC; ++k) m = max(m, abs_bits(v[k]));
  }
  m = group_max(m, tpg);
  const float scale = quant_scale_from_amax(bits_f32(static_cast<uint32_t>(m)), qmax);
  const float inv = quant_inv_scale(scale);
  if (vi < nv) {
    store_codes<Q, VEC>(q + row * cols + vi * VEC, v, inv);
    if (vi % tpg == 0) {
      const int64_t G = (cols + group - 1) / group;
      const int64_t g = vi / tpg;
      const int64_t b = row / rows_per_batch, r = row % rows_per_batch;
      const int64_t s = col_major ? (b * G + g) * rows_per_batch + r : row * G + g;
      scales[s] = scale;
      if (m >= 0x7f800000) report_bad(status, s);
    }
  }
}

// ---- per token group, scalar path (any group, cols, alignment) ------------------------
// 32 lanes per segment (a warp on NVIDIA, half a wavefront on AMD); blockDim.x/32
// segments per block.
template <DType D, QType Q>
__global__ void group_quant_scalar_kernel(const typename In<D>::T* __restrict__ x, uint8_t* __restrict__ q,
                                          float* __restrict__ scales, int64_t rows_per_batch, int64_t cols,
                                          int64_t group, int64_t total_segments, bool col_major, float qmax,
                                          unsigned long long* __restrict__ status) {
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const int64_t seg = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  const bool active = seg < total_segments;
  const int64_t G = (cols + group - 1) / group;
  const int64_t row = active ? seg / G : 0, g = active ? seg % G : 0;
  const int64_t c0 = g * group;
  const int64_t len = active ? min64(group, cols - c0) : 0;
  const typename In<D>::T* xs = x + row * cols + c0;
  int m = 0;
  for (int64_t i = lane; i < len; i += 32) m = max(m, abs_bits(In<D>::f32(xs[i])));
  m = group_max(m, 32);
  if (!active) return;
  const float scale = quant_scale_from_amax(bits_f32(static_cast<uint32_t>(m)), qmax);
  const float inv = quant_inv_scale(scale);
  uint8_t* qs = q + row * cols + c0;
  for (int64_t i = lane; i < len; i += 32) qs[i] = code1<Q>(In<D>::f32(xs[i]), inv);
  if (lane == 0) {
    const int64_t b = row / rows_per_batch, r = row % rows_per_batch;
    const int64_t s = col_major ? (b * G + g) * rows_per_batch + r : row * G + g;
    scales[s] = scale;
    if (m >= 0x7f800000) report_bad(status, s);
  }
}

// ---- per 2-D block (weights) ---------------------------------------------------------------
// One thread block per (batch, row block, column block) tile; scalar, coalesced along cols.
template <DType D, QType Q>
__global__ void block_quant_kernel(const typename In<D>::T* __restrict__ x, uint8_t* __restrict__ q,
                                   float* __restrict__ scales, int64_t rows, int64_t cols, int64_t br, int64_t bc,
                                   float qmax, unsigned long long* __restrict__ status) {
  __shared__ int smem[33];
  const int64_t RB = (rows + br - 1) / br, CB = (cols + bc - 1) / bc;
  const int64_t s = blockIdx.x;
  const int64_t b = s / (RB * CB), rb = (s / CB) % RB, cb = s % CB;
  const int64_t r0 = rb * br, c0 = cb * bc;
  const int64_t nr = min64(br, rows - r0), nc = min64(bc, cols - c0);
  const int64_t base = (b * rows + r0) * cols + c0;
  int m = 0;
  for (int64_t i = threadIdx.x; i < nr * nc; i += blockDim.x) {
    const int64_t r = i / nc, c = i % nc;
    m = max(m, abs_bits(In<D>::f32(x[base + r * cols + c])));
  }
  m = block_max(m, smem);
  const float scale = quant_scale_from_amax(bits_f32(static_cast<uint32_t>(m)), qmax);
  const float inv = quant_inv_scale(scale);
  if (threadIdx.x == 0) {
    scales[s] = scale;
    if (m >= 0x7f800000) report_bad(status, s);
  }
  for (int64_t i = threadIdx.x; i < nr * nc; i += blockDim.x) {
    const int64_t r = i / nc, c = i % nc;
    q[base + r * cols + c] = code1<Q>(In<D>::f32(x[base + r * cols + c]), inv);
  }
}

// ---- conversion test hooks -------------------------------------------------------------------
template <Fp8Format F>
__global__ void decode_all_kernel(float* out) {
  const int c = static_cast<int>(threadIdx.x);
  if (c < 256) out[c] = fp8_decode_t<F>(static_cast<uint8_t>(c));
}

template <Fp8Format F>
__global__ void encode_kernel(const float* xs, uint8_t* out, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (2 * i + 1 < n) {
    const uint16_t w = fp8x2_encode_fast<F>(xs[2 * i], xs[2 * i + 1]);
    out[2 * i] = static_cast<uint8_t>(w & 0xFF);
    out[2 * i + 1] = static_cast<uint8_t>(w >> 8);
  } else if (2 * i < n) {
    out[2 * i] = fp8_encode_fast<F>(xs[2 * i]);
  }
}

// Over all 2^32 bit patterns: counts fast != software (pairs: pattern p as lo and
// p ^ 0x80000000 as hi, so both halves of the pair instruction are exercised).
// result[0] = mismatches, result[1] = ~(smallest differing pattern) via atomicMax.
template <Fp8Format F>
__global__ void sweep_kernel(unsigned long long* result) {
  unsigned long long local = 0;
  const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
  uint64_t first = ~0ull;
  for (uint64_t p = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; p < (1ull << 32); p += stride) {
    const uint32_t u = static_cast<uint32_t>(p);
    const float lo = bits_f32(u), hi = bits_f32(u ^ 0x80000000u);
    const uint16_t fast = fp8x2_encode_fast<F>(lo, hi);
    const uint8_t slo = fp8_encode_t<F>(lo), shi = fp8_encode_t<F>(hi);
    if ((fast & 0xFF) != slo) {
      ++local;
      first = first < u ? first : u;
    }
    if ((fast >> 8) != shi) {
      ++local;
      first = first < (u ^ 0x80000000u) ? first : (u ^ 0x80000000u);
    }
  }
  if (local) {
    atomicAdd(&result[0], local);
    atomicMax(&result[1], ~static_cast<unsigned long long>(first));
  }
}

template <Fp8Format F>
__global__ void hw_flag_kernel(int* out) {
  if (threadIdx.x == 0) *out = fp8_hw_cvt_compiled() && F == Fp8Format::E4M3FN ? 1 : 0;
}

}  // namespace moe::quant::dev
