// How Hopper's fp8 tensor cores add up their products, as a bit-exact CPU model.
//
// PTX wgmma.mma_async ... .f32.e4m3.e4m3 (SASS QGMMA, the q8 kernels' wgmma
// tiles) does not accumulate in fp32. Measured on an NVIDIA H200 (driver
// 580.159.04) by tests/fused_moe_q8/wgmma_fp8_probe.cu: all 1,048,576 results of
// a first run (8 input sets) matched this model bit for bit, and so did the 480
// kept results of a second run on a fresh seed with two more sets of zero and
// subnormal factors (data/fused_moe_q8/hopper_fp8_mma_golden.json; the CPU test
// test_fp8_mma_accum.cpp replays it).
// One k32 step D = C + sum_{j<32} a_j b_j (a_j, b_j e4m3 values, C, D fp32):
//   E = max( exponent(C), max_j exponent(a_j) + exponent(b_j) ) over the nonzero
//       terms, exponent(x) = floor(log2|x|) (subnormal codes: their own exponent).
//       The product exponent is the sum of the factors' exponents, so a product
//       whose significand reaches [2, 4) keeps one bit more than its neighbours.
//   Every term (C and each exact product) is truncated toward zero to a multiple
//   of 2^(E - 13); D = their exact sum, truncated toward zero to 13 fraction bits
//   (the low 10 bits of the fp32 result are always zero).
// Consequences: each step loses up to about 33 * 2^-13 of its largest term, and
// since C takes part in the alignment, the loss grows with the running sum, so
// with K. Simulated on N(0,1) fp8 inputs (rel-L2 of the dot product against exact;
// test_fp8_mma_accum.cpp reproduces these within 25 %):
//   K        128      512      2048     4096     7168
//   chained  1.2e-4   3.5e-4   8.4e-4   1.3e-3   1.9e-3
//   restart every 128 (4 steps), partials added in fp32: 1.3e-4 at every K
// (the fp8 rounding of the operands themselves is ~5e-2). mma.sync m16n8k32 e4m3
// on sm_90 is different: it converts to f16 and runs HMMA with fp32 accumulation
// (SASS F2FP + HMMA) and matches the exact sum to fp32 rounding.
#pragma once
#include <cstdint>

namespace moe::ref {

// One step: D = C + sum_{j<n} a[j] b[j], n <= 32 (missing products are zero).
double fp8_mma_k32_step(double c, const double* a, const double* b, int n);

// Chained k32 steps over a[0, K) . b[0, K) (a K tail is zero-padded), starting
// a fresh accumulator (C = 0) every `segment` elements (a multiple of 32; <= 0:
// one chain over all of K). partials[s] = the accumulator of segment s, i.e.
// ceil(K / segment) values; the caller scales and adds them as the kernel does.
void fp8_mma_dot(const double* a, const double* b, int64_t K, int64_t segment, double* partials);

}  // namespace moe::ref
