// Runs a routing kernel on generated inputs and compares it with the CPU
// reference (used by tests/routing and the verify family). Inputs come from
// the counter-based RNG (moe/rng.hpp), filled on the GPU and downloaded, then
// optionally reshaped into a pattern (ties, NaN/inf rows, duplicate columns).
// Every output buffer is poisoned (0xFF: NaN weights, -1 ids) before each
// launch, so unwritten elements fail the comparison.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "kernels/routing/routing.hpp"
#include "reference/routing/routing_ref.hpp"

namespace moe::ref::routing_run {

enum class Pattern : int {
  Normal = 0,    // N(0, 1) logits
  Ties = 1,      // values on a 0.5 grid in [-3, 3]: many exact ties
  Specials = 2,  // rows of NaN, +inf, -inf, -1e30 mixed with normal values
  DupCols = 3,   // sigmoid top-1: w column e = column e % 4 (exact logit ties)
};
const char* pattern_name(Pattern p);

// Row patterns of Specials (row % 8): 0 all NaN, 1 half NaN, 2 two +inf,
// 3 all -inf, 4 -1e30 (or -6e4 in fp16) / -inf mix, 5 +inf and NaN,
// 6 one finite among NaN, 7 normal.
void apply_specials(std::vector<float>& v, int64_t M, int E, DType dt);

struct RunResult {
  RoutingCheck check;
  bool deterministic = true;  // two launches gave bit-identical outputs
  std::string message;        // one line
  bool passed() const { return check.passed && deterministic; }
};

#if MOE_HAVE_GPU
RunResult run_softmax_topk(const routing::SoftmaxTopkParams& p, const routing::SoftmaxTopkConfig& cfg,
                           uint64_t seed, Pattern pat);

// bias_mode: 0 none, 1 random N(0, 0.1) (often changes the selection), 2 large
// (N(0,1): almost always changes it).
RunResult run_grouped_topk(const routing::GroupedTopkParams& p, const routing::GroupedTopkConfig& cfg,
                           uint64_t seed, Pattern pat, int bias_mode);

RunResult run_sigmoid_top1(const routing::SigmoidTop1Params& p, const routing::SigmoidTop1Config& cfg,
                           uint64_t seed, Pattern pat);
#endif

}  // namespace moe::ref::routing_run
