// CPU reference of moe_align_block_size (aiter's token sorting/alignment).
// Same contract as the kernel: core/include/moe/contract/moe_align.hpp (with the worked example).
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "moe/contract/moe_align.hpp"
#include "moe/check.hpp"

namespace moe::ref {

struct AlignResult {
  std::vector<int32_t> sorted_token_ids;   // length num_tokens_post_padded
  std::vector<int32_t> expert_ids;         // one per block, length num_tokens_post_padded / block_size
  int32_t num_tokens_post_padded = 0;
};

// topk_ids: (num_tokens, top_k) row-major; entries in [-1, num_experts).
// expert_map: empty, or num_experts entries mapping a global expert id to a
// local id in [0, num_experts) or -1 (expert lives on another rank).
// Tokens of -1 ids and of remote experts are dropped. Within an expert the flat
// indices token*top_k+slot are ascending. Padding slots hold num_tokens*top_k.
// expert_ids are local ids when expert_map is given.
// Throws InputError for anything outside the contract (same checks as the kernel's host API).
AlignResult moe_align_block_size(std::span<const int32_t> topk_ids, int64_t num_tokens, int32_t top_k,
                                 int32_t num_experts, int32_t block_size,
                                 std::span<const int32_t> expert_map = {});
AlignResult moe_align_block_size(const align::AlignShape& shape, std::span<const int32_t> topk_ids,
                                 std::span<const int32_t> expert_map = {});

// The reference result laid out like the device outputs: sorted_token_ids of
// align_capacity() elements (sentinel past the end), expert_ids of
// align_max_blocks() elements (-1 past the end).
struct AlignFull {
  std::vector<int32_t> sorted_token_ids;
  std::vector<int32_t> expert_ids;
  int32_t num_tokens_post_padded = 0;
};
AlignFull expand_to_capacity(const AlignResult& r, const align::AlignShape& shape);

// Exact comparison of device-layout outputs with the reference (all three
// outputs; the message names the first output that differs).
CheckResult compare_align(const AlignFull& ref, std::span<const int32_t> sorted_token_ids,
                          std::span<const int32_t> expert_ids, int32_t num_tokens_post_padded);

// Golden vectors written by data/moe_align/make_golden.py (one JSON file per case).
struct AlignGoldenCase {
  std::string name;
  std::string file;
  std::string generator;            // "torch <version>" or "python"
  align::AlignShape shape;
  std::vector<int32_t> topk_ids;
  std::vector<int32_t> expert_map;  // empty: none
  bool expect_error = false;        // the inputs violate the contract
  AlignResult expected;             // when !expect_error
  int64_t capacity = 0;             // the script's own bound (0 when expect_error)
};
AlignGoldenCase parse_align_golden(const nlohmann::json& j, const std::string& file = {});
// The golden files data_dir/moe_align/*.json in name order; throws Error when none exist.
std::vector<std::string> align_golden_files(const std::string& data_dir);
// One golden file; InputError (naming the file) when it cannot be read or parsed.
AlignGoldenCase load_align_golden_file(const std::string& path);
// Every golden file, parsed (the first bad one throws).
std::vector<AlignGoldenCase> load_align_golden(const std::string& data_dir);

// Outcome of checking the reference against one golden case (one line).
struct GoldenCheck {
  bool passed = false;
  std::string message;
};
GoldenCheck check_align_golden(const AlignGoldenCase& c);

// ---- inputs for tests, the verify family and the benchmark ------------------------
// How the ids of a generated case are drawn.
enum class AlignIds {
  Softmax,    // moe::make_routing softmax top-k (distinct experts per token)
  Zipf,       // moe::make_routing Zipf-skewed top-k
  Uniform,    // independent uniform ids in [0, E) (may repeat within a token; O(1) per slot)
  OneExpert,  // every slot of every token to expert E-1 (ids repeat within a token)
  FewExperts  // only experts {0, E/2, E-1} used: most experts empty
};
const char* align_ids_name(AlignIds k);
// (M, top_k) ids for `shape`; masked_fraction of the slots (pseudo-random) set to -1.
std::vector<int32_t> make_align_ids(const align::AlignShape& shape, AlignIds kind, uint64_t seed,
                                    double masked_fraction = 0.0);
// expert_map with about half the experts remote (-1) and the rest numbered
// 0, 1, ... in global order (an EP rank's local experts).
std::vector<int32_t> make_half_remote_map(int32_t num_experts, uint64_t seed);

}  // namespace moe::ref
