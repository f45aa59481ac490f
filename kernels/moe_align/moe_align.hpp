// moe_align_block_size: token sorting and block alignment for grouped GEMM.
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
// equals the min(n + E*(bs-1), n*bs) (same value in both cases E <= n and
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

#include "moe/gpu.hpp"
#include "moe/gpu_runtime.hpp"

namespace moe::align {

constexpr int32_t kMaxExperts = 4096;
constexpr int32_t kMaxTopK = 64;
constexpr int32_t kMinBlockSize = 16;
constexpr int32_t kMaxBlockSize = 256;
// Shared-memory scratch ints of each kernel block (block-scan partials + flags).
constexpr int kAlignScratchInts = 72;
// MultiBlock scatter kernel (K2): threads per block at most.
constexpr int kAlignMultiRankThreadsMax = 512;

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

// Which code path runs.
//  SingleBlock: one launch, one thread block: per-warp stable counting sort in
//    shared memory (sentinel pre-fill, histogram, scan over experts, scatter,
//    expert_ids); optionally the whole output is staged in shared memory and
//    copied out coalesced.
//  MultiBlock: two launches. K1 (count): each block histograms a contiguous
//    chunk of slots into one column of an (E+1) x blocks table, and the grid
//    pre-fills sorted_token_ids with the sentinel. K2 (scatter): every block
//    reduces the table (all blocks, and the blocks before it), scans the padded
//    totals, re-ranks its chunk with per-warp counters and writes the slots;
//    the grid writes expert_ids. No atomics in global memory, no inter-block
//    waiting: deterministic and safe under any scheduling.
//  Fused: one launch, several blocks. Every block histograms all slots itself
//    (so no table and no second launch), ranks and scatters its own contiguous
//    chunk, and writes the sentinel only into the padding of its share of the
//    experts and its share of the tail: no two blocks write one element.
enum class AlignPath : int { Auto = 0, SingleBlock = 1, MultiBlock = 2, Fused = 3 };

}  // namespace moe::align

#if MOE_HAVE_GPU
namespace moe::align {


struct AlignDeviceLimits {
  int warp_size = 32;
  int sm_count = 1;
  int max_smem_per_block = 48 * 1024;  // opt-in maximum
  // Limits of the current device (cached per device index).
  static AlignDeviceLimits current();
};

// A resolved launch configuration. All sizes are explicit so a benchmark or a
// test can force any path; choose() picks the default for a shape.
struct AlignLaunchConfig {
  AlignPath path = AlignPath::SingleBlock;
  int rank_warps = 0;          // warps per block that own a column of the per-warp rank table
  int count_threads = 0;       // MultiBlock K1 threads per block
  int num_blocks = 1;          // MultiBlock/Fused grid size (SingleBlock: 1)
  int64_t slots_per_block = 0; // MultiBlock/Fused contiguous chunk of flat slots per block
  bool stage = false;          // SingleBlock: build the output in shared memory
  int warp_size = 32;

  int rank_threads() const { return rank_warps * warp_size; }
  // Dynamic shared memory of the rank kernel (single-block kernel or K2), bytes.
  int64_t rank_smem_bytes(const AlignShape& s) const;
  // Dynamic shared memory of K1, bytes.
  int64_t count_smem_bytes(const AlignShape& s) const;
  // Workspace bytes this configuration needs (status word, table).
  int64_t workspace_bytes(const AlignShape& s) const;
  // Empty when valid for this shape and device, else the reason.
  std::string invalid_reason(const AlignShape& s, const AlignDeviceLimits& lim) const;
  // Throws InputError with invalid_reason() when not valid.
  void validate(const AlignShape& s, const AlignDeviceLimits& lim) const;

  // The default configuration (path Auto: by size), or the default for a forced path.
  static AlignLaunchConfig choose(const AlignShape& s, const AlignDeviceLimits& lim,
                                  AlignPath path = AlignPath::Auto);
};

// Device scratch: status word (count of out-of-range ids/map entries seen by
// the last launch) and the MultiBlock (E+1) x blocks count table. Zero-filled
// when (re)allocated. One workspace per stream: launches sharing one must be
// ordered.
class AlignWorkspace {
 public:
  AlignWorkspace() = default;
  explicit AlignWorkspace(int64_t bytes) { reserve(bytes); }
  // Grows (reallocating and zero-filling, synchronously) when needed.
  void reserve(int64_t bytes);
  void* data() { return buf_.data(); }
  int64_t bytes() const { return static_cast<int64_t>(buf_.bytes()); }
  // Synchronises `s` and returns the number of out-of-range entries the last
  // launch dropped (0 for valid input).
  int32_t read_status(hipStream_t s) const;

 private:
  gpu::DeviceBuffer<unsigned char> buf_;
};

// Device output pointers: sorted_token_ids and expert_ids must hold
// align_capacity() and align_max_blocks() int32s; every element is written.
struct AlignOutputs {
  int32_t* sorted_token_ids = nullptr;
  int32_t* expert_ids = nullptr;
  int32_t* num_tokens_post_padded = nullptr;  // one int32
};

// Enqueues the alignment on `stream` (no synchronisation). topk_ids: M*top_k
// device int32; expert_map: nullptr or E device int32. Validates the shape and
// configuration on the host (InputError); reserves the workspace if too small
// (that allocation synchronises; size it beforehand with
// cfg.workspace_bytes(shape) for graph capture).
void moe_align_block_size(const int32_t* topk_ids, const int32_t* expert_map, const AlignShape& shape,
                          const AlignOutputs& out, AlignWorkspace& ws, hipStream_t stream,
                          const AlignLaunchConfig& cfg);
// Same with AlignLaunchConfig::choose(shape, AlignDeviceLimits::current()).
void moe_align_block_size(const int32_t* topk_ids, const int32_t* expert_map, const AlignShape& shape,
                          const AlignOutputs& out, AlignWorkspace& ws, hipStream_t stream);
// Launch, synchronise, and throw InputError if any id or map entry was out of
// range (the device-side validation pre-pass is the count kernel itself).
void moe_align_block_size_checked(const int32_t* topk_ids, const int32_t* expert_map, const AlignShape& shape,
                                  const AlignOutputs& out, AlignWorkspace& ws, hipStream_t stream);

// Host convenience for tests and the harness: validates the host data, uploads,
// poisons the outputs (0xA5 bytes: a negative int32 no output can hold, unlike
// 0xFF = -1), runs, downloads. Vectors have capacity and
// max_blocks elements.
struct AlignHostResult {
  std::vector<int32_t> sorted_token_ids;
  std::vector<int32_t> expert_ids;
  int32_t num_tokens_post_padded = 0;
  int32_t status = 0;
  AlignLaunchConfig config;
};
AlignHostResult run_align_on_device(const AlignShape& shape, std::span<const int32_t> topk_ids,
                                    std::span<const int32_t> expert_map = {},
                                    AlignPath path = AlignPath::Auto);
// The same with an explicit configuration.
AlignHostResult run_align_on_device(const AlignShape& shape, std::span<const int32_t> topk_ids,
                                    std::span<const int32_t> expert_map, const AlignLaunchConfig& config);

}  // namespace moe::align
#endif  // MOE_HAVE_GPU
