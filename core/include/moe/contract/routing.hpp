// The routing contract: softmax top-k, sigmoid top-1 fused with the router GEMM,
// and DeepSeek-V3 grouped top-k — semantics, parameters and their validation,
// shared by the kernels (kernels/routing/routing.hpp) and the CPU references
// (reference/routing/routing_ref.hpp).
//
// ============================================================================
// Semantics shared by all three kernels (kernel and reference identical)
// ============================================================================
// Order. Experts are ranked by a total order on fp32 values:
//   NaN  <  -inf  <  ... < -1e30 < ... < -0 == +0 < ... < 1e30 < ... < +inf
// -0 and +0 are the same value. Equal values (a tie) rank the LOWER expert
// index first. So a NaN expert is never selected while a non-NaN expert is
// still available, and a row of NaN selects experts 0, 1, ..., k-1 in that
// order. ±inf and -1e30 are ordinary numbers in this order.
// Outputs are in rank order: topk_ids[t, 0] is the best expert of token t.
// For (a) and (b) the weights are then non-increasing along a row; for (c)
// the rank is by biased score, and the weights are the unbiased scores.
// A NaN expert that is selected (only when fewer than k non-NaN experts exist)
// gets weight NaN.
//
// (a) softmax top-k:   p = softmax(logits[t, :]) in fp32 with max subtraction,
//   selection ranks the LOGITS (the softmax is monotone; ranking logits also
//   separates experts whose probabilities underflow to the same fp32 value).
//   NaN logits are left out of the softmax (probability NaN, mass 0 for the
//   others). Infinite maximum m (+inf, or -inf when every non-NaN logit is
//   -inf): the experts equal to m share the mass equally, all others get 0
//   (softmax([inf, 1, inf]) = [0.5, 0, 0.5]; softmax([-inf, -inf]) = [.5, .5]).
//   renormalize: w_i / sum of the selected non-NaN w (a zero sum divides by 1).
//   Weight accuracy vs an fp64 reference (documented tolerance, used by tests):
//     |w - w_ref| <= 2^-126 + (32 + 2*E + |x_i - m|) * 2^-23 * |w_ref|
//   (fp32 exp of x-m, E-term fp32 sum, one division; renormalize adds k ulps).
//
// (b) sigmoid top-1 fused with the router GEMM:
//   logits = x (M,K) @ w (K,E), bf16 or fp16 operands, fp32 accumulation
//   (tensor cores: mma.sync m16n8k16 on sm_80+, a SIMT path otherwise).
//   id = argmax of the fp32 logits under the order above, weight =
//   sigmoid(logit[id]). With shared_expert the output has 2 columns: column 1
//   holds id E and weight 1.0 for every token. The fp32 logits of the kernel
//   depend on its summation order; ids agree with an fp64 reference except
//   where two logits are within the fp32 accumulation error bound
//   gamma_K * sum_k |x_k w_ke|, gamma_K = K * 2^-24 (tests accept exactly
//   those near-ties and check exact ids everywhere else). Bit-identical
//   columns give bit-identical logits, so exact ties resolve to the lower id.
//   Any M: rows past M are neither read nor written.
//
// (c) grouped top-k (DeepSeek-V3 "noaux_tc"; vLLM grouped_topk):
//   s = sigmoid(logits) or softmax(logits) (fp32, see below),
//   b = s + e_score_correction_bias (fp32 add; b = s without bias),
//   group score = b1 + b2, the two best b of the group (with one expert per
//   group: b1; without bias: max b of the group), NaN if one of them is NaN;
//   keep the topk_group best groups (ties: lower group index); select the
//   top_k best b among the experts of the kept groups (experts of other
//   groups are never selected: top_k <= topk_group * group size is
//   required); weights = unbiased s of the selected experts, renormalized
//   (sum over selected non-NaN weights, zero sum divides by 1) when
//   renormalize, then times routed_scaling_factor.
//   Determinism: every value that takes part in a selection (s, b, group
//   scores) is computed with IEEE-exact operations only (add, mul, fma,
//   div, rint; no hardware exp), in a fixed order, by moe/contract/routing_math.hpp,
//   which the CPU reference shares: selections are bit-for-bit identical on
//   every GPU and on the CPU. The softmax denominator is summed in a fixed
//   order: 32 partial sums of V consecutive experts each (V = the smallest
//   power of two >= ceil(E/32)), combined pairwise in butterfly order
//   (lane j with j^16, then ^8, ^4, ^2, ^1).
//
// ============================================================================
// Worked layout example (softmax top-k, M=2 tokens, E=4 experts, k=2)
// ============================================================================
//   logits (M, E) row-major, fp32:      [[ 1.0, 3.0, NaN, 3.0 ],
//                                         [-inf, NaN, NaN, NaN ]]
//   topk_ids (M, k) int32, row-major:   [[ 1, 3 ],      (tie 3.0/3.0: lower id first)
//                                         [ 0, 1 ]]      (-inf beats NaN; then NaN by index)
//   topk_weights (M, k) fp32:           [[ 0.4683, 0.4683 ],   e^3/(e^1+2e^3), NaN excluded
//                                         [ 1.0,    NaN   ]]  (-inf is the max: its mass is 1)
//   element (t, j) of an output lives at offset t*k + j.
// Grouped example: E=8, n_group=4 (groups {0,1},{2,3},{4,5},{6,7}),
//   topk_group=2, k=2, sigmoid, no bias, s = [.9 .1 | .5 .6 | .95 .2 | .3 .4]:
//   group scores (max) .9 .6 .95 .4 -> keep groups 2, 0 -> ids [4, 0],
//   weights [.95, .9] (renormalize: [.5135, .4865]).
// Fused top-1 example: x (M=3, K) bf16 row-major, w (K, E=16) bf16 row-major,
//   shared_expert: ids (3, 2) = [[a0, 16], [a1, 16], [a2, 16]],
//   weights (3, 2) = [[sigmoid(l0), 1], ...].
#pragma once
#include <cstdint>
#include <string>

#include "moe/dtype.hpp"

namespace moe::routing {

inline constexpr int kMaxExperts = 512;
inline constexpr int kMaxTopK = 32;
inline constexpr int kMaxGroups = 32;
inline constexpr int64_t kMaxHidden = 16384;
// Tokens per call: M * E and M * hidden stay far inside int64 (and inside the
// 2^31 grid rows of the kernels).
inline constexpr int64_t kMaxTokens = int64_t{1} << 31;

struct SoftmaxTopkParams {
  int64_t tokens = 0;     // M >= 0
  int32_t experts = 0;    // E in [1, 512]
  int32_t top_k = 0;      // k in [1, min(E, 32)]
  DType dtype = DType::F32;  // logits: F32, BF16 or F16
  bool renormalize = false;
  // Throws InputError with a one-line message.
  void validate() const;
};

enum class Scoring : int { Softmax = 0, Sigmoid = 1 };
const char* scoring_name(Scoring s);
Scoring parse_scoring(const std::string& s);  // "softmax" | "sigmoid"

struct GroupedTopkParams {
  int64_t tokens = 0;       // M >= 0
  int32_t experts = 0;      // E in [1, 512], divisible by n_group
  int32_t n_group = 1;      // [1, 32]
  int32_t topk_group = 1;   // [1, n_group]
  int32_t top_k = 1;        // [1, min(32, topk_group * E / n_group)]
  Scoring scoring = Scoring::Sigmoid;
  bool renormalize = true;
  float routed_scaling_factor = 1.0f;  // finite
  DType dtype = DType::F32;  // logits: F32, BF16 or F16
  void validate() const;
  int32_t group_size() const { return n_group > 0 ? experts / n_group : 0; }
  // Lanes per token are always 32; values per lane V (power of two <= 16).
  int values_per_lane() const;
};

struct SigmoidTop1Params {
  int64_t tokens = 0;      // M >= 0
  int64_t hidden = 0;      // K in [1, 16384]
  int32_t experts = 0;     // E in [1, 512]
  DType dtype = DType::BF16;  // x and w: BF16 or F16
  bool shared_expert = false;
  void validate() const;
  int out_cols() const { return shared_expert ? 2 : 1; }
};

}  // namespace moe::routing
