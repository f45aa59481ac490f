// Host side of the GPU moe_align: launch-path choice, workspace, status read-back.
#include <algorithm>
#include <limits>

#include <fmt/format.h>

#include "kernels/moe_align/moe_align.hpp"
#include "moe/error.hpp"

#if MOE_HAVE_GPU
#include <map>
#include <mutex>

namespace moe::align {
namespace {

// Path choice and sizes, from the H100 sweep (BM_align_cfg rows of
// reports/moe_align/align.json; docs/notes/moe_align.md).
constexpr int64_t kSingleMaxSlots = 4096;      // Auto: one block up to this many slots...
constexpr int64_t kSingleMaxCapacity = 65536;  // ...and this many output slots to fill
constexpr int64_t kStageMinSlots = 1024;       // SingleBlock: stage the output in shared memory from here
constexpr int kSingleSlotsPerLane = 4;         // SingleBlock: warps = n / (4 * warp size), clamped
constexpr int kMinSingleThreads = 256;
constexpr int64_t kTableCapInts = 128 * 1024;  // MultiBlock: (E+1) * blocks at most (512 KiB)
constexpr int64_t kTableReadCap = 4 << 20;     // MultiBlock: E * blocks^2 (table reads of K2) at most
constexpr int64_t kMinSlotsPerBlock = 256;     // MultiBlock: n/32 slots per block, within [256, 1024]
constexpr int64_t kMaxSlotsPerBlock = 1024;
constexpr int kCountThreads = 256;
constexpr int64_t kSingleManyExpertsMaxSlots = 2048;  // Auto: one block below this many slots when E >= kManyExperts
constexpr int64_t kManyExperts = 64;
constexpr int64_t kFusedMaxSlots = 8192;       // Auto: Fused (one launch, several blocks) up to this many slots...
constexpr int64_t kFusedMinExperts = 256;      // ...with at least this many experts
constexpr int64_t kFusedFillInts = 4096;       // Fused: one block per this many output elements at least
constexpr int kRankThreadsMulti = kAlignMultiRankThreadsMax;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace

AlignDeviceLimits AlignDeviceLimits::current() {
  static std::mutex mu;
  static std::map<int, AlignDeviceLimits> cache;
  int dev = 0;
  MOE_GPU_CHECK(hipGetDevice(&dev));
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(dev);
  if (it != cache.end()) return it->second;
  hipDeviceProp_t prop{};
  MOE_GPU_CHECK(hipGetDeviceProperties(&prop, dev));
  AlignDeviceLimits l;
  l.warp_size = prop.warpSize;
  l.sm_count = prop.multiProcessorCount;
  int smem = 0;
  MOE_GPU_CHECK(hipDeviceGetAttribute(&smem, hipDeviceAttributeMaxSharedMemoryPerBlock, dev));
  l.max_smem_per_block = smem;
  cache.emplace(dev, l);
  return l;
}

int64_t AlignLaunchConfig::rank_smem_bytes(const AlignShape& s) const {
  const int64_t E = s.num_experts;
  const int64_t W = rank_warps;
  if (path == AlignPath::Fused) return (W * E + (E + 1) + E + (E + 1) + kAlignScratchInts) * 4;
  if (path == AlignPath::SingleBlock) {
    const int64_t fixed = (W * E + E + 1 + kAlignScratchInts + 3) / 4 * 4;  // stage starts 16-byte aligned
    return (fixed + (stage ? align_capacity(s) : 0)) * 4;
  }
  return (W * E + (E + 1) + E + kAlignScratchInts) * 4;
}

int64_t AlignLaunchConfig::count_smem_bytes(const AlignShape& s) const { return (int64_t{s.num_experts} + 1) * 4; }

int64_t AlignLaunchConfig::workspace_bytes(const AlignShape& s) const {
  const int64_t E = s.num_experts;
  return (16 + (path == AlignPath::MultiBlock ? (E + 1) * int64_t{num_blocks} : 0)) * 4;
}

std::string AlignLaunchConfig::invalid_reason(const AlignShape& s, const AlignDeviceLimits& lim) const {
  const int64_t n = s.num_slots();
  const int64_t E = s.num_experts;
  if (path != AlignPath::SingleBlock && path != AlignPath::MultiBlock && path != AlignPath::Fused)
    return "path must be SingleBlock, MultiBlock or Fused";
  if (warp_size != lim.warp_size)
    return fmt::format("configured for warp size {}, the device has {}", warp_size, lim.warp_size);
  const int max_warps = 1024 / lim.warp_size;
  if (rank_warps < 1 || rank_warps > max_warps)
    return fmt::format("rank_warps {} outside [1, {}]", rank_warps, max_warps);
  if (rank_smem_bytes(s) > lim.max_smem_per_block)
    return fmt::format("shared memory {} B (rank_warps {} x E {}) exceeds the device limit {} B", rank_smem_bytes(s),
                       rank_warps, E, lim.max_smem_per_block);
  if (path == AlignPath::SingleBlock) {
    if (num_blocks != 1) return fmt::format("SingleBlock needs num_blocks = 1, got {}", num_blocks);
    return {};
  }
  if (stage) return "stage applies to SingleBlock only";
  if (path == AlignPath::Fused) {
    if (num_blocks < 1 || slots_per_block < 1)
      return fmt::format("num_blocks {} and slots_per_block {} must be positive", num_blocks, slots_per_block);
    if (int64_t{num_blocks} * slots_per_block < n)
      return fmt::format("num_blocks {} x slots_per_block {} does not cover M*top_k = {}", num_blocks,
                         slots_per_block, n);
    return {};
  }
  if (rank_threads() > kAlignMultiRankThreadsMax)
    return fmt::format("MultiBlock rank_warps {} x {} exceeds {} threads", rank_warps, warp_size,
                       kAlignMultiRankThreadsMax);
  if (count_threads < lim.warp_size || count_threads > 1024 || count_threads % lim.warp_size != 0)
    return fmt::format("count_threads {} must be a multiple of {} in [{}, 1024]", count_threads, lim.warp_size,
                       lim.warp_size);
  if (count_smem_bytes(s) > lim.max_smem_per_block) return "count kernel shared memory too large";
  if (num_blocks < 1 || slots_per_block < 1)
    return fmt::format("num_blocks {} and slots_per_block {} must be positive", num_blocks, slots_per_block);
  if (int64_t{num_blocks} * slots_per_block < n)
    return fmt::format("num_blocks {} x slots_per_block {} does not cover M*top_k = {}", num_blocks, slots_per_block,
                       n);
  return {};
}

void AlignLaunchConfig::validate(const AlignShape& s, const AlignDeviceLimits& lim) const {
  const std::string why = invalid_reason(s, lim);
  MOE_REQUIRE(why.empty(), "moe_align launch config: " + why);
}

AlignLaunchConfig AlignLaunchConfig::choose(const AlignShape& s, const AlignDeviceLimits& lim, AlignPath path) {
  s.validate();
  const int64_t n = s.num_slots();
  const int64_t E = s.num_experts;
  const int64_t cap = align_capacity(s);
  const int ws = lim.warp_size;
  const int max_warps = 1024 / ws;
  AlignLaunchConfig c;
  c.warp_size = ws;
  // Largest warp count whose configuration fits the shared memory.
  auto fit = [&](AlignLaunchConfig probe, int want) {
    for (int w = want; w >= 1; --w) {
      probe.rank_warps = w;
      if (probe.rank_smem_bytes(s) <= lim.max_smem_per_block) return w;
    }
    return 0;
  };
  // SingleBlock: about 4 slots per lane (each warp's range is then within one
  // register chunk, so the ids are read once), at least kMinSingleThreads threads.
  const int single_want = static_cast<int>(std::clamp<int64_t>(
      ceil_div(n, int64_t{kSingleSlotsPerLane} * ws), std::max(1, kMinSingleThreads / ws), max_warps));
  AlignLaunchConfig single;
  single.path = AlignPath::SingleBlock;
  single.warp_size = ws;
  single.num_blocks = 1;
  single.slots_per_block = n;
  single.stage = n >= kStageMinSlots;
  int single_warps = fit(single, single_want);
  if (single_warps < single_want) {  // the stage does not fit beside the table: write global memory directly
    single.stage = false;
    single_warps = fit(single, single_want);
  }
  single.rank_warps = std::max(1, single_warps);
  // Fused: 8 warps (16 from 4096 slots: the all-slot histogram is per block),
  // own chunks as MultiBlock's, and at least one block per kFusedFillInts
  // output elements so the padding is written by several SMs.
  AlignLaunchConfig fused;
  fused.path = AlignPath::Fused;
  fused.warp_size = ws;
  const int fused_warps = fit(fused, std::min(max_warps, (n >= 4096 ? 512 : 256) / ws));
  fused.rank_warps = std::max(1, fused_warps);
  {
    const int64_t target = std::clamp<int64_t>(n / 32, kMinSlotsPerBlock, kMaxSlotsPerBlock);
    const int64_t blocks = std::clamp<int64_t>(std::max(ceil_div(n, target), ceil_div(cap, kFusedFillInts)), 1,
                                               std::min<int64_t>(lim.sm_count, n));
    fused.slots_per_block = ceil_div(ceil_div(n, blocks), ws) * ws;
    fused.num_blocks = static_cast<int>(ceil_div(n, fused.slots_per_block));
  }
  // Auto, from the H100 per-path rows at 82701ba (BM_align_path in
  // reports/moe_align/align.json): one block below 2048 slots (and up to 4096
  // with few experts), MultiBlock from 2048 slots with E >= 64 (M=256, top_k=8:
  // 6.88 vs 8.13 us single block at E=256), Fused in (4096, 8192] slots with
  // E >= 256 (M=1024: 9.09 vs 11.00 us MultiBlock); its per-block histogram of
  // all slots makes it lose above (M=4096: 21.4 vs 13.0 us).
  if (path == AlignPath::Auto) {
    const bool single_ok = cap <= kSingleMaxCapacity && single_warps >= 1 &&
                           (n < kSingleManyExpertsMaxSlots || (n <= kSingleMaxSlots && E < kManyExperts));
    const bool fused_ok = fused_warps >= 1 && n > kSingleMaxSlots && n <= kFusedMaxSlots && E >= kFusedMinExperts;
    path = single_ok ? AlignPath::SingleBlock : fused_ok ? AlignPath::Fused : AlignPath::MultiBlock;
  }
  if (path == AlignPath::SingleBlock) return single;
  if (path == AlignPath::Fused) return fused;

  c.path = AlignPath::MultiBlock;
  c.count_threads = kCountThreads;
  c.rank_warps = std::max(1, fit(c, kRankThreadsMulti / ws));
  int64_t max_blocks = std::min<int64_t>(int64_t{4} * lim.sm_count, kTableCapInts / (E + 1));
  while (max_blocks > 1 && E * max_blocks * max_blocks > kTableReadCap) --max_blocks;
  max_blocks = std::max<int64_t>(1, max_blocks);
  const int64_t target = std::clamp<int64_t>(n / 32, kMinSlotsPerBlock, kMaxSlotsPerBlock);
  const int64_t blocks = std::clamp<int64_t>(ceil_div(n, target), 1, max_blocks);
  const int64_t quantum = int64_t{ws} * 4;
  c.slots_per_block = ceil_div(ceil_div(n, blocks), quantum) * quantum;
  c.num_blocks = static_cast<int>(ceil_div(n, c.slots_per_block));
  return c;
}

void AlignWorkspace::reserve(int64_t bytes) {
  if (bytes <= this->bytes()) return;
  buf_ = gpu::DeviceBuffer<unsigned char>(static_cast<size_t>(bytes));
  gpu::fill_blocking(buf_.data(), 0, buf_.bytes());
  MOE_GPU_CHECK(hipDeviceSynchronize());
}

int32_t AlignWorkspace::read_status(hipStream_t s) const {
  MOE_REQUIRE(buf_.size() >= 4, "moe_align: read_status on an empty workspace");
  int32_t v = 0;
  MOE_GPU_CHECK(hipMemcpyAsync(&v, buf_.data(), sizeof v, hipMemcpyDeviceToHost, s));
  MOE_GPU_CHECK(hipStreamSynchronize(s));
  return v;
}

void moe_align_block_size(const int32_t* topk_ids, const int32_t* expert_map, const AlignShape& shape,
                          const AlignOutputs& out, AlignWorkspace& ws, hipStream_t stream) {
  moe_align_block_size(topk_ids, expert_map, shape, out, ws, stream,
                       AlignLaunchConfig::choose(shape, AlignDeviceLimits::current()));
}

void moe_align_block_size_checked(const int32_t* topk_ids, const int32_t* expert_map, const AlignShape& shape,
                                  const AlignOutputs& out, AlignWorkspace& ws, hipStream_t stream) {
  moe_align_block_size(topk_ids, expert_map, shape, out, ws, stream);
  const int32_t bad = ws.read_status(stream);
  MOE_REQUIRE(bad == 0, fmt::format("moe_align: {} topk_ids/expert_map entries outside [-1, {}) (dropped on the device)",
                                    bad, shape.num_experts));
}

AlignHostResult run_align_on_device(const AlignShape& shape, std::span<const int32_t> topk_ids,
                                    std::span<const int32_t> expert_map, AlignPath path) {
  validate_align_ids(shape, topk_ids, expert_map);
  return run_align_on_device(shape, topk_ids, expert_map,
                             AlignLaunchConfig::choose(shape, AlignDeviceLimits::current(), path));
}

AlignHostResult run_align_on_device(const AlignShape& shape, std::span<const int32_t> topk_ids,
                                    std::span<const int32_t> expert_map, const AlignLaunchConfig& config) {
  validate_align_ids(shape, topk_ids, expert_map);
  AlignHostResult r;
  r.config = config;
  const int64_t cap = align_capacity(shape), blocks = align_max_blocks(shape);
  gpu::Stream stream;
  gpu::DeviceBuffer<int32_t> ids(topk_ids.size()), map(expert_map.size()), sorted(static_cast<size_t>(cap)),
      eids(static_cast<size_t>(blocks)), num(1);
  ids.upload(topk_ids.data(), topk_ids.size(), stream.get());
  if (!expert_map.empty()) map.upload(expert_map.data(), expert_map.size(), stream.get());
  sorted.poison(0xA5, stream.get());  // 0xA5A5A5A5: negative, never a valid output
  eids.poison(0xA5, stream.get());
  num.poison(0xA5, stream.get());
  AlignWorkspace ws(r.config.workspace_bytes(shape));
  moe_align_block_size(ids.data(), expert_map.empty() ? nullptr : map.data(), shape,
                       AlignOutputs{sorted.data(), eids.data(), num.data()}, ws, stream.get(), r.config);
  r.sorted_token_ids = sorted.download(stream.get());
  r.expert_ids = eids.download(stream.get());
  r.num_tokens_post_padded = num.download(stream.get())[0];
  r.status = ws.read_status(stream.get());
  return r;
}

}  // namespace moe::align
#endif  // MOE_HAVE_GPU
