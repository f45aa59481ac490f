// Host-only part of the moe_align contract: shape checks, capacity, id checks.
// Built in every backend (also -Dgpu=none).
#include <algorithm>
#include <limits>

#include <fmt/format.h>

#include "moe/contract/moe_align.hpp"
#include "moe/error.hpp"

namespace moe::align {

void AlignShape::validate() const {
  MOE_REQUIRE(num_tokens >= 1, fmt::format("moe_align: num_tokens (M) must be >= 1, got {}", num_tokens));
  MOE_REQUIRE(num_experts >= 1 && num_experts <= kMaxExperts,
              fmt::format("moe_align: num_experts must be in [1, {}], got {}", kMaxExperts, num_experts));
  MOE_REQUIRE(top_k >= 1 && top_k <= kMaxTopK,
              fmt::format("moe_align: top_k must be in [1, {}], got {}", kMaxTopK, top_k));
  MOE_REQUIRE(top_k <= num_experts,
              fmt::format("moe_align: top_k ({}) must not exceed num_experts ({})", top_k, num_experts));
  MOE_REQUIRE(block_size >= kMinBlockSize && block_size <= kMaxBlockSize && (block_size & (block_size - 1)) == 0,
              fmt::format("moe_align: block_size must be a power of two in [{}, {}], got {}", kMinBlockSize,
                          kMaxBlockSize, block_size));
  constexpr int64_t kI32 = std::numeric_limits<int32_t>::max();
  MOE_REQUIRE(num_tokens <= kI32 / top_k,
              fmt::format("moe_align: num_tokens*top_k = {}*{} does not fit int32", num_tokens, top_k));
  MOE_REQUIRE(align_capacity(*this) <= kI32,
              fmt::format("moe_align: padded capacity {} does not fit int32", align_capacity(*this)));
}

int64_t align_capacity(const AlignShape& s) {
  const int64_t n = s.num_slots();
  const int64_t nz = std::min<int64_t>(s.num_experts, n);
  const int64_t bs = s.block_size;
  return bs * ((n + nz * (bs - 1)) / bs);
}

int64_t align_max_blocks(const AlignShape& s) { return align_capacity(s) / s.block_size; }

void validate_align_ids(const AlignShape& s, std::span<const int32_t> topk_ids, std::span<const int32_t> expert_map) {
  s.validate();
  MOE_REQUIRE(static_cast<int64_t>(topk_ids.size()) == s.num_slots(),
              fmt::format("moe_align: topk_ids has {} elements, expected M*top_k = {}*{} = {}", topk_ids.size(),
                          s.num_tokens, s.top_k, s.num_slots()));
  const int32_t E = s.num_experts;
  for (size_t i = 0; i < topk_ids.size(); ++i) {
    const int32_t id = topk_ids[i];
    if (id < -1 || id >= E)
      throw_input_error(fmt::format("moe_align: topk_ids[{}] (token {}, slot {}) = {} is outside [-1, {})", i,
                                    static_cast<int64_t>(i) / s.top_k, static_cast<int64_t>(i) % s.top_k, id, E));
  }
  if (expert_map.empty()) return;
  MOE_REQUIRE(static_cast<int64_t>(expert_map.size()) == E,
              fmt::format("moe_align: expert_map has {} entries, expected num_experts = {}", expert_map.size(), E));
  for (size_t e = 0; e < expert_map.size(); ++e) {
    const int32_t m = expert_map[e];
    if (m < -1 || m >= E)
      throw_input_error(fmt::format("moe_align: expert_map[{}] = {} is outside [-1, {})", e, m, E));
  }
}

}  // namespace moe::align
