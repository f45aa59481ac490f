// moe_align_block_size on the GPU: token sorting and block alignment for grouped GEMM.
// The contract (layouts, worked example, capacity, validation) is in
// core/include/moe/contract/moe_align.hpp, shared with the CPU reference.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "moe/contract/moe_align.hpp"
#include "moe/gpu.hpp"
#include "moe/gpu_runtime.hpp"

namespace moe::align {

// Shared-memory scratch ints of each kernel block (block-scan partials + flags).
constexpr int kAlignScratchInts = 72;
// MultiBlock scatter kernel (K2): threads per block at most.
constexpr int kAlignMultiRankThreadsMax = 512;

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
// Same with caller-owned scratch: `workspace` is device memory of at least
// cfg.workspace_bytes(shape) bytes, 4-byte aligned, used only by this launch (in
// stream order). Never allocates or synchronises: for callers with their own
// allocator (the Python module's stream-ordered scratch).
void moe_align_block_size(const int32_t* topk_ids, const int32_t* expert_map, const AlignShape& shape,
                          const AlignOutputs& out, void* workspace, int64_t workspace_bytes, hipStream_t stream,
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
