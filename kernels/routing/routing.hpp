// MoE routing kernels: softmax top-k, sigmoid top-1 fused with the router GEMM,
// and DeepSeek-V3 grouped top-k. Host API; device code lives in
// *_kernels.cuh, launchers in *_launch.hip, CPU references in
// reference/routing/routing_ref.hpp (same semantics, checked by tests).
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
//   div, rint; no hardware exp), in a fixed order, by routing_common.hpp,
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
#include <cstddef>
#include <cstdint>
#include <string>

#include "moe/dtype.hpp"
#include "moe/gpu_runtime.hpp"

namespace moe::routing {

inline constexpr int kMaxExperts = 512;
inline constexpr int kMaxTopK = 32;
inline constexpr int kMaxGroups = 32;
inline constexpr int64_t kMaxHidden = 16384;

// ---------------------------------------------------------------- softmax top-k
struct SoftmaxTopkParams {
  int64_t tokens = 0;     // M >= 0
  int32_t experts = 0;    // E in [1, 512]
  int32_t top_k = 0;      // k in [1, min(E, 32)]
  DType dtype = DType::F32;  // logits: F32, BF16 or F16
  bool renormalize = false;
  // Throws InputError with a one-line message.
  void validate() const;
};

// Each token (row) is handled by `lanes_per_row` lanes holding `V` consecutive
// logits each (V = 8, or 16 when E > 8 * lanes_per_row). Compiled
// (lanes, V): (1,8) (1,16) (2,8) (4,8) (8,8) (16,8) (32,8) (32,16).
struct SoftmaxTopkConfig {
  int lanes_per_row = 0;    // 0 = auto (pick())
  int block_threads = 256;  // multiple of 64 in [64, 512]
  static SoftmaxTopkConfig pick(const SoftmaxTopkParams& p);
  // Empty when valid for p, else why not (one line). Auto fields count as valid.
  std::string why_invalid(const SoftmaxTopkParams& p) const;
  // Auto fields resolved (throws InputError when invalid).
  SoftmaxTopkConfig resolved(const SoftmaxTopkParams& p) const;
  int values_per_lane(const SoftmaxTopkParams& p) const;  // of a resolved config
};

// ---------------------------------------------------------------- grouped top-k
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

struct GroupedTopkConfig {
  int block_threads = 256;  // multiple of 64 in [64, 512]
  std::string why_invalid(const GroupedTopkParams& p) const;
  // True when group scores are reduced in registers (group boundaries fall on
  // lane boundaries with a power-of-two lane count); else through shared memory.
  static bool register_groups(const GroupedTopkParams& p);
  size_t shared_bytes(const GroupedTopkParams& p) const;
};

// ------------------------------------------------ sigmoid top-1 fused with GEMM
enum class Top1Impl : int { Auto = 0, TensorCore = 1, Simt = 2 };
const char* top1_impl_name(Top1Impl i);

struct SigmoidTop1Params {
  int64_t tokens = 0;      // M >= 0
  int64_t hidden = 0;      // K in [1, 16384]
  int32_t experts = 0;     // E in [1, 512]
  DType dtype = DType::BF16;  // x and w: BF16 or F16
  bool shared_expert = false;
  void validate() const;
  int out_cols() const { return shared_expert ? 2 : 1; }
};

struct SigmoidTop1Config {
  Top1Impl impl = Top1Impl::Auto;
  int k_splits = 0;  // 0 = auto; else >= 1 (clamped to the number of 128-wide K chunks)
  std::string why_invalid(const SigmoidTop1Params& p) const;
};

// A resolved launch plan (pure function of params, config and the device's SM
// count / tensor-core support, so it can be computed and tested on a CPU).
struct SigmoidTop1Plan {
  Top1Impl impl = Top1Impl::Simt;
  int bm = 0;            // rows per block
  int bn = 0;            // expert columns per block
  int row_tiles = 0;
  int col_tiles = 0;
  int splits = 1;        // K splits
  int64_t k_chunk = 0;   // K per split (multiple of 128)
  size_t workspace_bytes = 0;  // 0 when splits == 1 and col_tiles == 1
  bool direct() const { return splits == 1 && col_tiles == 1; }
};
SigmoidTop1Plan plan_sigmoid_top1(const SigmoidTop1Params& p, const SigmoidTop1Config& c, int sm_count,
                                  bool tensor_cores);

#if MOE_HAVE_GPU
// logits: (M, E) of p.dtype (fp32 floats or 16-bit bf16/fp16 bits).
// topk_weights, topk_ids: (M, k). Validates everything before launching.
void softmax_topk(const void* logits, float* topk_weights, int32_t* topk_ids, const SoftmaxTopkParams& p,
                  const SoftmaxTopkConfig& cfg = {}, hipStream_t stream = nullptr);

// bias: E fp32 values or nullptr. Outputs (M, top_k).
void grouped_topk(const void* logits, const float* bias, float* topk_weights, int32_t* topk_ids,
                  const GroupedTopkParams& p, const GroupedTopkConfig& cfg = {}, hipStream_t stream = nullptr);

// The plan the launcher will use on the current device.
SigmoidTop1Plan sigmoid_top1_plan(const SigmoidTop1Params& p, const SigmoidTop1Config& cfg = {});
// Bytes of workspace the launch needs (0: none; pass nullptr).
size_t sigmoid_top1_workspace_bytes(const SigmoidTop1Params& p, const SigmoidTop1Config& cfg = {});
// Zero-fills a workspace once after allocation; the kernel leaves it zeroed
// (its split counters reset themselves), so graphs can replay it.
void sigmoid_top1_workspace_init(void* workspace, size_t bytes, hipStream_t stream = nullptr);
// x: (M, K) 16-bit bits of p.dtype, w: (K, E) same dtype, row-major.
// Outputs (M, out_cols). workspace: see above (nullptr when 0 bytes).
void sigmoid_top1(const void* x, const void* w, float* topk_weights, int32_t* topk_ids, void* workspace,
                  size_t workspace_bytes, const SigmoidTop1Params& p, const SigmoidTop1Config& cfg = {},
                  hipStream_t stream = nullptr);
#endif

}  // namespace moe::routing
