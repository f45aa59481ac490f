// The moe_align_block_size contract: shapes, capacity, validation. Shared by the
// kernel (kernels/moe_align/moe_align.hpp) and the CPU reference
// (reference/moe_align/moe_align_ref.hpp).
//
//
// Contract (identical in the CPU reference reference/moe_align/moe_align_ref.hpp)
// --------------------------------------------------------------------------
// Input  topk_ids (M, top_k) int32, row-major: the experts of each token, entries
//        in [-1, E). -1 = masked slot, dropped.
//        expert_map (optional, E int32): global expert id -> local id in [0, E)
//        or -1 (expert lives on another rank: its slots are dropped). With a map,
//        every id below is the LOCAL id; without one, local = global.
// Output sorted_token_ids: flat slot indices i = token*top_k + slot, grouped by
//        (local) expert in ascending expert order, ascending i within an expert;
//        each non-empty expert's segment is padded up to a multiple of
//        block_size with the sentinel M*top_k. Experts with no slots get no
//        blocks. Positions past num_tokens_post_padded, up to capacity(), also
//        hold the sentinel.
//        expert_ids: the expert of each block of block_size slots; blocks past
//        the end (up to max_blocks()) hold -1.
//        num_tokens_post_padded: one int32 on the device, the padded total.
// Deterministic: the output is a pure function of the inputs (bit-identical run
// to run, same on every GPU and on the CPU reference).
//
// Worked example: M=3, top_k=2, E=4, block_size=16, no expert_map,
//   topk_ids = [[2, 0],        flat slots 0 1
//               [2, 3],                   2 3
//               [-1, 2]]                  4 5     (slot 4 masked)
//   expert 0: {1}   expert 1: {}   expert 2: {0, 2, 5}   expert 3: {3}
//   sentinel s = M*top_k = 6
//   sorted_token_ids = [1, s x15 | 0, 2, 5, s x13 | 3, s x15 || s x16]
//                       block 0    block 1          block 2     (tail, past the end)
//   expert_ids       = [0, 2, 3 || -1]
//   num_tokens_post_padded = 48
//   align_capacity() = 64 slots, align_max_blocks() = 4 (see below): the output
//   arrays are that long (6 slots can fill at most 4 experts of one block each).
// With expert_map = [-1, -1, 0, 1] (experts 2 and 3 local, 0 and 1 remote) the
// same ids give sorted_token_ids = [0, 2, 5, s x13 | 3, s x15 || s x32],
// expert_ids = [0, 1 || -1, -1], num_tokens_post_padded = 32 (slot 1 dropped).
//
// Capacity (exact worst case, used to size the outputs)
// --------------------------------------------------------------------------
// With n = M*top_k slots and at most nz = min(E, n) non-empty experts, the padded
// total is sum_e ceil(c_e/bs)*bs <= sum_e (c_e + bs - 1) <= n + nz*(bs-1). This
// equals the bound min(n + E*(bs-1), n*bs) (same value in both cases E <= n and
// E > n). The padded total is a multiple of bs, so
//   capacity   = bs * floor((n + min(E, n)*(bs-1)) / bs)
//   max_blocks = capacity / bs = nz + floor((n - nz) / bs).
// This is attained (all ids free: nz experts with counts = 1 mod bs and the rest
// spread so no expert crosses another block boundary), hence tight; tests check
// both the bound on random and adversarial inputs and that it is reached.
//
// Validation (host, before any launch; InputError with a one-line message):
// M >= 1; 1 <= E <= 4096; 1 <= top_k <= min(E, 64); block_size a power of two
// in [16, 256]; capacity and M*top_k fit int32; ids in [-1, E) and expert_map
// entries in [-1, E) (validate_align_ids on the host copy). The kernels never
// read out of bounds whatever the ids hold: out-of-range ids and map entries are
// dropped and counted in a status word the host can read back
// (AlignWorkspace::read_status / moe_align_block_size_checked).
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>


namespace moe::align {

constexpr int32_t kMaxExperts = 4096;
constexpr int32_t kMaxTopK = 64;
constexpr int32_t kMinBlockSize = 16;
constexpr int32_t kMaxBlockSize = 256;

struct AlignShape {
  int64_t num_tokens = 0;   // M
  int32_t top_k = 0;
  int32_t num_experts = 0;  // E (global experts; expert_map has E entries)
  int32_t block_size = 0;

  int64_t num_slots() const { return num_tokens * top_k; }  // n = M*top_k
  int32_t sentinel() const { return static_cast<int32_t>(num_slots()); }
  // Throws InputError for any shape outside the contract (see above).
  void validate() const;
};

// Exact worst-case padded length and block count (see the header comment).
// Valid shapes only (call validate() first); pure arithmetic.
int64_t align_capacity(const AlignShape& s);
int64_t align_max_blocks(const AlignShape& s);

// Host-side checks of the data (the host copy): topk_ids.size() == M*top_k with
// entries in [-1, E); expert_map empty or E entries in [-1, E). Throws InputError
// naming the first bad element.
void validate_align_ids(const AlignShape& s, std::span<const int32_t> topk_ids,
                        std::span<const int32_t> expert_map = {});

}  // namespace moe::align
