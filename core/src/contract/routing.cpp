// Validation of the routing parameters (the contract in moe/contract/routing.hpp).
#include "moe/contract/routing.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "moe/error.hpp"

namespace moe::routing {

void SoftmaxTopkParams::validate() const {
  MOE_REQUIRE(tokens >= 0 && tokens <= kMaxTokens,
              fmt::format("softmax_topk: tokens (M) must be in [0, {}], got {}", kMaxTokens, tokens));
  MOE_REQUIRE(experts >= 1 && experts <= kMaxExperts,
              fmt::format("softmax_topk: experts must be in [1, {}], got {}", kMaxExperts, experts));
  MOE_REQUIRE(top_k >= 1 && top_k <= std::min(experts, kMaxTopK),
              fmt::format("softmax_topk: top_k must be in [1, min(experts={}, {})], got {}", experts, kMaxTopK, top_k));
  MOE_REQUIRE(is_float_dtype(dtype),
              fmt::format("softmax_topk: logits dtype must be fp32, bf16 or fp16, got {}", dtype_name(dtype)));
}

const char* scoring_name(Scoring s) { return s == Scoring::Softmax ? "softmax" : "sigmoid"; }

Scoring parse_scoring(const std::string& s) {
  if (s == "softmax") return Scoring::Softmax;
  if (s == "sigmoid") return Scoring::Sigmoid;
  throw_input_error(fmt::format("unknown scoring '{}' (expected softmax or sigmoid)", s));
}

void GroupedTopkParams::validate() const {
  MOE_REQUIRE(tokens >= 0 && tokens <= kMaxTokens,
              fmt::format("grouped_topk: tokens (M) must be in [0, {}], got {}", kMaxTokens, tokens));
  MOE_REQUIRE(experts >= 1 && experts <= kMaxExperts,
              fmt::format("grouped_topk: experts must be in [1, {}], got {}", kMaxExperts, experts));
  MOE_REQUIRE(n_group >= 1 && n_group <= kMaxGroups,
              fmt::format("grouped_topk: n_group must be in [1, {}], got {}", kMaxGroups, n_group));
  MOE_REQUIRE(experts % n_group == 0,
              fmt::format("grouped_topk: experts ({}) must be divisible by n_group ({})", experts, n_group));
  MOE_REQUIRE(topk_group >= 1 && topk_group <= n_group,
              fmt::format("grouped_topk: topk_group must be in [1, n_group={}], got {}", n_group, topk_group));
  const int64_t cand = int64_t{topk_group} * (experts / n_group);
  MOE_REQUIRE(top_k >= 1 && top_k <= kMaxTopK && top_k <= cand,
              fmt::format("grouped_topk: top_k must be in [1, min({}, topk_group*group_size={})], got {}", kMaxTopK,
                          cand, top_k));
  MOE_REQUIRE(std::isfinite(routed_scaling_factor),
              fmt::format("grouped_topk: routed_scaling_factor must be finite, got {}", routed_scaling_factor));
  MOE_REQUIRE(scoring == Scoring::Softmax || scoring == Scoring::Sigmoid, "grouped_topk: unknown scoring");
  MOE_REQUIRE(is_float_dtype(dtype),
              fmt::format("grouped_topk: logits dtype must be fp32, bf16 or fp16, got {}", dtype_name(dtype)));
}

void SigmoidTop1Params::validate() const {
  MOE_REQUIRE(tokens >= 0 && tokens <= kMaxTokens,
              fmt::format("sigmoid_top1: tokens (M) must be in [0, {}], got {}", kMaxTokens, tokens));
  MOE_REQUIRE(hidden >= 1 && hidden <= kMaxHidden,
              fmt::format("sigmoid_top1: hidden (K) must be in [1, {}], got {}", kMaxHidden, hidden));
  MOE_REQUIRE(experts >= 1 && experts <= kMaxExperts,
              fmt::format("sigmoid_top1: experts must be in [1, {}], got {}", kMaxExperts, experts));
  MOE_REQUIRE(dtype == DType::BF16 || dtype == DType::F16,
              fmt::format("sigmoid_top1: x and w dtype must be bf16 or fp16, got {}", dtype_name(dtype)));
}

}  // namespace moe::routing
