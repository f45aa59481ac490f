// CPU reference of moe_align_block_size (the seed's token sorting/alignment).
// Identical contract to kernels/moe_align/moe_align.hpp; see the worked example there.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

namespace moe::ref {

struct AlignResult {
  std::vector<int32_t> sorted_token_ids;   // length num_tokens_post_padded
  std::vector<int32_t> expert_ids;         // one per block, length num_tokens_post_padded / block_size
  int32_t num_tokens_post_padded = 0;
};

// topk_ids: (num_tokens, top_k) row-major; entries in [-1, num_experts).
// expert_map: empty, or num_experts entries mapping a global expert id to a
// local id in [0, num_local_experts) or -1 (expert lives on another rank).
// Tokens of -1 ids and of remote experts are dropped. Within an expert the flat
// indices token*top_k+slot are ascending. Padding slots hold num_tokens*top_k.
// expert_ids are local ids when expert_map is given.
AlignResult moe_align_block_size(std::span<const int32_t> topk_ids, int64_t num_tokens, int32_t top_k,
                                 int32_t num_experts, int32_t block_size,
                                 std::span<const int32_t> expert_map = {});

}  // namespace moe::ref
