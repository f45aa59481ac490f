// CPU reference of the quantized fused MoE layer (kernels/fused_moe_q8):
// dequantize exactly (decode(code) * scale in double: 4 + 24 significant bits,
// exact), then the same math as the bf16 reference (reference/fused_moe) in
// double, per expert over only its routed slots (Eigen GEMMs, threads over
// (expert, row-chunk) items, weights dequantized chunk by chunk so model-sized
// experts never need a full dequantized copy):
//   stage 1  h[s] = round_h( act(c g) * (c u) ),  g/u = deq(a1[tok(s)]) . deq(w1[e_s] gate/up rows)^T,
//            c = w_s (router weight on input) or 1; round_h = the layer's 16-bit dtype
//   stage 2  y[s] = deq(a2[s]) . deq(w2[e_s])^T (* w_s on output);  out[t] = sum_j y[t*k+j] (not rounded)
// The stages take the quantized activations as inputs (codes + scales), so a GPU
// test feeds both sides the same codes: the GPU quantizer equals ref::quantize
// bit for bit (tests/quant), so the layer check is (i) intermediate vs stage 1,
// (ii) GPU a2 == ref::quantize(GPU intermediate), (iii) out vs stage 2 on GPU a2.
//
// ---- Tolerances (q8_inter_tolerance / q8_out_tolerance) --------------------------
// The kernel sees the same codes, so quantization error is not part of the
// comparison; what differs is the arithmetic. With u_32 = 2^-24:
//   products: fp8 x fp8 products are exact in fp32 (4+4 significant bits);
//     int8 x int8 products and their sums are exact in int32 (|sum| <= 127^2 K
//     < 2^31 for K < 133000; validated), converted to fp32 once (u_32).
//   accumulation: fp32 on the tensor cores, acc(K) = u_32 (sqrt(K) + K/8)
//     relative to the rms of the result (derivation in reference/fused_moe);
//     int8: 0 (exact) -- we still use acc(K) (an upper bound). Hopper's fp8
//     wgmma keeps only 13 fraction bits (fp8_mma_accum.hpp): no fp32 tolerance
//     covers that, so for those tiles the reference runs the bit-exact model
//     (Q8Accumulation::HopperFp8Mma, chosen by the harness's q8_ref_options_for) and the
//     comparison keeps the tolerance below; what the model loses against exact
//     sums is documented there (rel-L2 1.2e-4 at K = 128 to 1.9e-3 at K = 7168).
//   scales: non-block: acc * (a_s * w_s), 2 roundings (2 u_32); block: per
//     128-K group acc_g * (a_s w_s) added in fp32: K/128 more additions, covered
//     by acc(K) since they are among its K/8 terms; 2 u_32 per group product.
//   stage 1 result stored in the 16-bit dtype: one ulp (2 u_h) where a tiny
//     difference crosses a rounding boundary -- exactly the bf16 family's
//     fused_moe_inter_tolerance, plus rtol 4 u_32 for the scale products.
//   stage 2 + reduce: fused_moe_out_tolerance with no intermediate rounding term
//     (a2 is an input): rtol = u_o, atol = sigma * 4 acc(K1 + K2),
//     rel-L2 <= u_o + 4 acc(K1 + K2), plus 4 u_32 for the scales.
// Quantization step model (what the q8 layer loses against the unquantized
// layer; reference/quant's quant_error_bound per element): fp8 |x - deq| <=
// 2^-4 |x| + s 2^-10 (+ fp32 prescale 2^-22 |x|); int8 <= s/2. Four quantized
// operands (x, w1, h, w2), each with relative rms error <= 2^-4/sqrt(3) (fp8,
// uniform rounding within half an ulp) propagate to the output with relative
// rms <= sqrt(4) 2^-4/sqrt(3) ~ 0.072 and to within q8_vs_exact_rel_l2 =
// 4 * 2^-4 = 0.25 in the worst (fully correlated) case; int8 per-token: the
// step is s = amax/127, rms error s/sqrt(12) per element. tests/fused_moe_q8
// checks the reference against the fp64 unquantized layer with that bound.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "moe/contract/fused_moe_q8.hpp"
#include "moe/check.hpp"
#include "reference/quant/quant_ref.hpp"

namespace moe::ref {

using fused_moe_q8::Q8Problem;

// Dequantized rows [row0, row0 + nrows) of expert e of a weight tensor, row-major
// into out (nrows * K doubles), and, where `decoded` is not null, the same rows'
// code values without their scales (the Hopper fp8 accumulation model works on
// those). row0 is a multiple of 128.
using Q8WeightFn = std::function<void(int32_t e, int64_t row0, int64_t nrows, double* out, double* decoded)>;

// Weight source over host codes + scales of the whole tensor (layout of p = w1_quant()/w2_quant()).
Q8WeightFn q8_weights_from_host(const quant::QuantProblem& p, std::span<const uint8_t> q, std::span<const float> scales);

struct Q8RefInputs {
  Q8WeightFn w1, w2;
  std::span<const float> topk_weights;  // (M, k)
  std::span<const int32_t> topk_ids;    // (M, k)
};

// How the GEMM products are added up. Exact: in double (the mma.sync and MFMA
// tiles accumulate in fp32/int32, within the tolerance below). HopperFp8Mma: the
// bit-exact model of Hopper's fp8 wgmma (fp8_mma_accum.hpp), chained over each
// accumulator's K range as the kernel runs it; int8 schemes ignore it (exact).
enum class Q8Accumulation { Exact, HopperFp8Mma };

struct Q8RefOptions {
  int threads = 0;           // 0: hardware concurrency
  int64_t chunk_rows = 256;  // weight rows per work item (multiple of 128)
  Q8Accumulation accumulation = Q8Accumulation::Exact;
  // HopperFp8Mma: K elements per accumulator before the kernel starts a fresh one
  // (a stage-2 split-K range); <= 0: all of K. The block scheme restarts every
  // 128 (its scale group) regardless.
  int64_t segment_k = 0;
};

// (Which options model a given kernel tile config is the harness's knowledge:
// q8_ref_options_for in harness/families/fused_moe_q8/fused_moe_q8_runner.hpp.)

struct Q8Stage1Result {
  std::vector<int64_t> tokens;      // computed tokens, ascending
  std::vector<float> intermediate;  // (tokens, k, I), rounded to base.dtype; 0 for invalid slots
  double inter_rms = 0;
};
struct Q8Stage2Result {
  std::vector<int64_t> tokens;
  std::vector<float> out;  // (tokens, H), not rounded
  double out_rms = 0;
};

// Stage 1 from quantized hidden (a1 codes + scales of p.a1_quant(), all M rows).
// tokens: subset to compute (empty = all).
Q8Stage1Result q8_ref_stage1(const Q8Problem& p, std::span<const uint8_t> a1, std::span<const float> a1_scale,
                             const Q8RefInputs& in, const Q8RefOptions& opt = {}, std::span<const int64_t> tokens = {});
// Stage 2 + reduce from the quantized intermediate (a2 codes + scales of p.a2_quant(), all M*k rows).
Q8Stage2Result q8_ref_stage2(const Q8Problem& p, std::span<const uint8_t> a2, std::span<const float> a2_scale,
                             const Q8RefInputs& in, const Q8RefOptions& opt = {}, std::span<const int64_t> tokens = {});

// The whole layer from the 16-bit hidden values (widened to float): quantize
// (ref::quantize, throws InputError on Inf/NaN), stage 1 over all tokens,
// quantize the intermediate, stage 2.
struct Q8LayerResult {
  QuantResult a1, a2;
  Q8Stage1Result stage1;
  Q8Stage2Result stage2;
};
Q8LayerResult q8_ref_layer(const Q8Problem& p, std::span<const float> hidden, const Q8RefInputs& in,
                           const Q8RefOptions& opt = {});
// The same with options per stage (a kernel config whose stages accumulate differently,
// e.g. a split-K stage 2 on Hopper's fp8 wgmma).
Q8LayerResult q8_ref_layer(const Q8Problem& p, std::span<const float> hidden, const Q8RefInputs& in,
                           const Q8RefOptions& stage1, const Q8RefOptions& stage2);

Tolerance q8_inter_tolerance(const Q8Problem& p, double inter_rms);
Tolerance q8_out_tolerance(const Q8Problem& p, double out_rms);
// Bound on rel-L2 between the quantized layer and the unquantized layer (step model above).
double q8_vs_exact_rel_l2(const Q8Problem& p);

}  // namespace moe::ref
