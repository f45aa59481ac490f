// CPU references of the routing kernels (kernels/routing/routing.hpp has the
// contract and a worked example). Selections follow exactly the same rules as
// the kernels; the selection scores of grouped top-k are the same bit-exact
// fp32 values (moe/contract/routing_math.hpp); weights and the router
// GEMM are computed in fp64.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "moe/contract/routing.hpp"
#include "moe/check.hpp"

namespace moe::ref {

struct TopkResult {
  int64_t tokens = 0;
  int32_t cols = 0;                // k (or 1/2 for sigmoid top-1)
  std::vector<float> weights;      // (tokens, cols)
  std::vector<int32_t> ids;        // (tokens, cols)
};

// bf16/fp16 bits widened exactly to fp32.
std::vector<float> widen(std::span<const uint16_t> bits, DType t);

// logits: (M, E) as fp32 values (16-bit inputs widened with widen()).
TopkResult softmax_topk(std::span<const float> logits, const routing::SoftmaxTopkParams& p);

// bias: empty (none) or E values.
TopkResult grouped_topk(std::span<const float> logits, std::span<const float> bias,
                        const routing::GroupedTopkParams& p);

struct Top1Ref {
  TopkResult out;                // id = argmax of the fp64 logits, weight = sigmoid (fp64)
  std::vector<double> logits;    // (M, E) fp64
  std::vector<double> abs_dot;   // (M, E): sum_k |x_k w_ke|, for the fp32 error bound
};
// x: (M, K), w: (K, E) as fp32 values.
Top1Ref sigmoid_top1(std::span<const float> x, std::span<const float> w, const routing::SigmoidTop1Params& p);

// ---- comparisons with documented tolerances (kernels/routing/routing.hpp) --
struct RoutingCheck {
  bool passed = true;
  CheckResult ids;       // exact
  CheckResult weights;   // per-element tolerance
  int64_t near_ties = 0; // sigmoid top-1 only: ids accepted within the fp32 error bound
  std::string message;   // one line
};

RoutingCheck check_softmax_topk(std::span<const float> got_w, std::span<const int32_t> got_ids,
                                const TopkResult& ref, std::span<const float> logits,
                                const routing::SoftmaxTopkParams& p);
RoutingCheck check_grouped_topk(std::span<const float> got_w, std::span<const int32_t> got_ids,
                                const TopkResult& ref, std::span<const float> logits,
                                const routing::GroupedTopkParams& p);
RoutingCheck check_sigmoid_top1(std::span<const float> got_w, std::span<const int32_t> got_ids, const Top1Ref& ref,
                                const routing::SigmoidTop1Params& p);

}  // namespace moe::ref
