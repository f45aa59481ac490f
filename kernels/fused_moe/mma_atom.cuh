// The per-architecture "MMA atom" of the fused MoE GEMMs: one warp-level matrix
// multiply-accumulate D(MxN, fp32) += A(MxK) * B(KxN) plus the fragment loads
// from shared memory and the accumulator layout. The tiling code in
// fused_moe_kernels.cuh only uses this interface, so it is shared by NVIDIA and
// AMD:
//
//   Atom::M, N, K            atom shape
//   Atom::AFrag, BFrag       per-lane operand registers
//   Atom::kAcc               fp32 accumulators per lane per atom
//   Atom::kColPair           2 when accumulators (i, i+1), i even, are adjacent
//                            columns of one row (lets the epilogue store pairs)
//   Atom::acc_row/acc_col    (row, col) inside the atom of accumulator i
//   Atom::load_a(f, s, r, k)        A rows r..r+M-1, k..k+K-1 of a swizzled tile
//   Atom::load_b_pair(f0, f1, s, n, k)  B rows n..n+N-1 -> f0, n+N..n+2N-1 -> f1
//   Atom::mma<Elem>(c, a, b)
//
// Shared-memory tiles are row-major [rows][BK] of 16-bit elements, K contiguous
// (both A and the weights are K-contiguous, so C = A * W^T), with the 16-byte
// chunks of each row XOR-swizzled by the row index (swz_offset) so ldmatrix and
// the cp.async stores are bank-conflict free.
//
// NVIDIA (sm_80+, used on sm_90): mma.sync.aligned.m16n8k16.row.col, operands
// from ldmatrix.x4. AMD (gfx90a): v_mfma_f32_16x16x16{bf16_1k,f16}, operands
// from 8-byte LDS reads.
#pragma once
#include <cstdint>

#include "fmoe_device.cuh"

namespace moe::fused_moe::dev {

// Element offset of (row, k) in a [rows][BK] tile with XOR-swizzled 16-byte chunks.
template <int BK>
__device__ __forceinline__ int swz_offset(int row, int k) {
  constexpr int kChunks = BK / 8;
  constexpr int kMask = kChunks >= 8 ? 7 : kChunks - 1;
  return row * BK + ((((k >> 3) ^ (row & kMask))) << 3) + (k & 7);
}

#if !defined(__HIP_PLATFORM_AMD__)
// ---------------------------------------------------------------- NVIDIA
struct MmaAtom {
  static constexpr int M = 16, N = 8, K = 16;
  static constexpr int kAcc = 4;
  static constexpr int kColPair = 2;
  struct AFrag {
    uint32_t r[4];
  };
  struct BFrag {
    uint32_t r[2];
  };
  // c0,c1: row g, cols 2t,2t+1; c2,c3: row g+8 (g = lane/4, t = lane%4).
  __device__ static int acc_row(int i, int lane) { return (lane >> 2) + 8 * (i >> 1); }
  __device__ static int acc_col(int i, int lane) { return ((lane & 3) << 1) + (i & 1); }

  template <int BK>
  __device__ static void load_a(AFrag& f, const uint16_t* s, int row0, int k0, int lane) {
    // matrices: (rows 0-7, k 0-7), (rows 8-15, k 0-7), (rows 0-7, k 8-15), (rows 8-15, k 8-15)
    const int row = row0 + (lane & 7) + ((lane >> 3) & 1) * 8;
    const int k = k0 + (lane >> 4) * 8;
#if defined(__CUDA_ARCH__)
    const uint32_t addr = smem_u32(s + swz_offset<BK>(row, k));
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(f.r[0]), "=r"(f.r[1]), "=r"(f.r[2]), "=r"(f.r[3])
                 : "r"(addr));
#else
    (void)s; (void)row; (void)k;
    f.r[0] = f.r[1] = f.r[2] = f.r[3] = 0;  // host pass only; never executed
#endif
  }

  template <int BK>
  __device__ static void load_b_pair(BFrag& f0, BFrag& f1, const uint16_t* s, int n0, int k0, int lane) {
    // matrices: (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7), (n 8-15, k 8-15)
    const int n = n0 + (lane & 7) + (lane >> 4) * 8;
    const int k = k0 + ((lane >> 3) & 1) * 8;
#if defined(__CUDA_ARCH__)
    const uint32_t addr = smem_u32(s + swz_offset<BK>(n, k));
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(f0.r[0]), "=r"(f0.r[1]), "=r"(f1.r[0]), "=r"(f1.r[1])
                 : "r"(addr));
#else
    (void)s; (void)n; (void)k;
    f0.r[0] = f0.r[1] = f1.r[0] = f1.r[1] = 0;
#endif
  }

  template <class Elem>
  __device__ static void mma(float (&c)[4], const AFrag& a, const BFrag& b) {
#if defined(__CUDA_ARCH__)
    if constexpr (Elem::dtype == DType::BF16) {
      asm volatile(
          "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
          "{%0,%1,%2,%3};\n"
          : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
          : "r"(a.r[0]), "r"(a.r[1]), "r"(a.r[2]), "r"(a.r[3]), "r"(b.r[0]), "r"(b.r[1]));
    } else {
      asm volatile(
          "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
          "{%0,%1,%2,%3};\n"
          : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
          : "r"(a.r[0]), "r"(a.r[1]), "r"(a.r[2]), "r"(a.r[3]), "r"(b.r[0]), "r"(b.r[1]));
    }
#else
    (void)c; (void)a; (void)b;
#endif
  }
};

#else
// ---------------------------------------------------------------- AMD gfx90a
typedef short fmoe_short4 __attribute__((ext_vector_type(4)));
typedef _Float16 fmoe_half4 __attribute__((ext_vector_type(4)));
typedef float fmoe_float4 __attribute__((ext_vector_type(4)));

struct MmaAtom {
  static constexpr int M = 16, N = 16, K = 16;
  static constexpr int kAcc = 4;
  static constexpr int kColPair = 1;
  struct AFrag {
    uint2 v;  // 4 x 16-bit: row lane%16, k = 4*(lane/16) + 0..3
  };
  struct BFrag {
    uint2 v;  // 4 x 16-bit: col lane%16, k = 4*(lane/16) + 0..3
  };
  // D: col lane%16, rows 4*(lane/16) + i.
  __device__ static int acc_row(int i, int lane) { return 4 * (lane >> 4) + i; }
  __device__ static int acc_col(int i, int lane) { return lane & 15; }

  template <int BK>
  __device__ static void load_a(AFrag& f, const uint16_t* s, int row0, int k0, int lane) {
    f.v = *reinterpret_cast<const uint2*>(s + swz_offset<BK>(row0 + (lane & 15), k0 + 4 * (lane >> 4)));
  }
  template <int BK>
  __device__ static void load_b_pair(BFrag& f0, BFrag& f1, const uint16_t* s, int n0, int k0, int lane) {
    const int k = k0 + 4 * (lane >> 4);
    f0.v = *reinterpret_cast<const uint2*>(s + swz_offset<BK>(n0 + (lane & 15), k));
    f1.v = *reinterpret_cast<const uint2*>(s + swz_offset<BK>(n0 + 16 + (lane & 15), k));
  }

  template <class Elem>
  __device__ static void mma(float (&c)[4], const AFrag& a, const BFrag& b) {
#if defined(__HIP_DEVICE_COMPILE__)
    fmoe_float4 acc = {c[0], c[1], c[2], c[3]};
    if constexpr (Elem::dtype == DType::BF16) {
      fmoe_short4 av, bv;
      __builtin_memcpy(&av, &a.v, 8);
      __builtin_memcpy(&bv, &b.v, 8);
      acc = __builtin_amdgcn_mfma_f32_16x16x16bf16_1k(av, bv, acc, 0, 0, 0);
    } else {
      fmoe_half4 av, bv;
      __builtin_memcpy(&av, &a.v, 8);
      __builtin_memcpy(&bv, &b.v, 8);
      acc = __builtin_amdgcn_mfma_f32_16x16x16f16(av, bv, acc, 0, 0, 0);
    }
    c[0] = acc[0];
    c[1] = acc[1];
    c[2] = acc[2];
    c[3] = acc[3];
#else
    (void)c; (void)a; (void)b;  // host pass only
#endif
  }
};
#endif

}  // namespace moe::fused_moe::dev
