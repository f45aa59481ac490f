// Heuristic tile-config chooser of the fused MoE GEMMs, kept apart from the
// kernels (host-only C++, built in every backend so it is testable on the CPU).
// The harness's tuned table (moe/fused_moe_tuning.hpp) can replace it;
// choose_config() is the fallback when no tuned entry matches.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/fused_moe/fused_moe_types.hpp"

namespace moe::fused_moe {

struct DeviceLimits {
  int sm_count = 132;                    // SMs / CUs
  int64_t max_smem_per_block = 232448;   // opt-in dynamic shared memory (bytes)
  bool wgmma = false;                    // the wgmma tile shapes were compiled (sm_90a build)
  std::string name{};                    // the GPU's name ("NVIDIA H200"): the tuned table's device column
};

// Expected rows per routed (non-empty) expert: M*k / min(E, M*k).
double expected_rows_per_expert(const Problem& p);

// Picks block_m from the expected rows per expert (small blocks stream weights
// for decode; large blocks reuse each weight tile across many rows), split-K for
// stage 2 when there are too few tiles to fill the device, and the persistent
// grid when the worst-case block count would launch mostly empty blocks.
LayerConfig choose_config(const Problem& p, const DeviceLimits& dev);

// The same config with a given tile shape (index into kTileShapes) for both
// stages; split-K and persistence chosen as choose_config does.
LayerConfig config_for_shape(const Problem& p, const DeviceLimits& dev, int shape_index);

// Whether a compiled shape can run on `dev` (shared memory, wgmma availability).
bool shape_usable(const TileShape& t, const DeviceLimits& dev);
// Whether a compiled shape takes the problem's sizes: wgmma_ws tiles copy by TMA
// and need model_dim and inter_dim to be multiples of 8 (16-byte rows).
bool shape_fits(const TileShape& t, const Problem& p);

// ---- launch grid -------------------------------------------------------------
// The grid of one stage kernel of either layer (fused_moe, fused_moe_q8).
struct TileGrid {
  int grid = 0;          // blocks to launch
  int max_m_blocks = 0;  // m-blocks the kernel may walk (0: no routed block can exist)
};
// max_m_blocks = min(worst-case aligned blocks of `slots` over `experts`, capacity / block_m).
// Persistent: min(tiles, sm_count x resident blocks per SM), the kernel's residency from
// resident_blocks_per_sm (the kernel tables' entries ask the runtime once) taken as at
// least 1, in whole clusters (tile.cluster) either way. Otherwise one block per tile of
// the worst case, rounded up to whole clusters. Tiles are
// max_m_blocks x tiles_per_m_block. InputError starting with `family` when a count does not
// fit a 32-bit grid.
TileGrid tile_grid(std::string_view family, int64_t slots, int64_t experts, int64_t capacity, const Tile& tile,
                   bool persistent, int64_t tiles_per_m_block, int sm_count, int (*resident_blocks_per_sm)());
// The counter a stage kernel claims its tiles from (kernels/fused_moe/ws_kernel.cuh), or
// nullptr for the fixed stride: `counter` (a workspace's, zeroed once; the kernels leave
// it zero) on a persistent grid of a one-block wgmma_ws tile whose claims fit 32 bits.
// MOE_FUSED_MOE_TILE_COUNTER=0 gives nullptr everywhere (the fixed stride, for A/B runs);
// a value other than 0, 1 or empty is an InputError.
int32_t* tile_counter_for(const Tile& tile, bool persistent, const TileGrid& grid, int64_t tiles_per_m_block,
                          int32_t* counter);

// ---- tile order --------------------------------------------------------------
// m-blocks per group of the grouped tile order (m-block fastest within a group) of `tile`
// for a problem of `slots` routed rows over `experts`: the bf16 layer's fixed groups (its ws
// tiles walk expert runs instead, expert_run_window) and the q8 layer's ws tiles (its older
// tiles keep a compiled 8). A group's m-blocks share
// each weight tile in L2 when they belong to one expert. On a ws tile, when the mean expert
// has at most one m-block (slots <= experts * block_m), they belong to different experts
// and share nothing, so the group is 1: one m-block's n sweep runs together and its
// activation rows stay in L2 (H200 sweep at M = 1024/4096, docs/notes/fused_moe.md: the
// bf16 layer of DeepSeek-V3 M = 4096 7 % faster and no bf16 layer point slower, the fp8
// layer within 2 %; where experts have several m-blocks, 8 keeps Mixtral's stage 1 up to
// 19 % faster than 1). Other tiles keep 8 (not measured with 1). MOE_FUSED_MOE_GROUP_M=<1..64>
// overrides it for tile-order experiments (InputError for another value). Read at each launch.
int32_t tile_group_m(int64_t slots, int64_t experts, const Tile& tile);
// The 16-bit layer's other tile order, groups that follow the runs of one expert's m-blocks
// (expert_run_tile): the window of m-blocks its runs are cut at (as many blocks' activation rows
// of k 16-bit elements as fit in ~36 MB of L2, at most kMaxGroupM), or 0 where the fixed groups
// stay. The ws tiles take the runs by default: an expert's m-blocks then read each weight tile one
// after the other, so it comes from DRAM about once (H100 A/B, docs/notes/fused_moe.md v21: the
// bf16 layer 2.6-7.7 % faster at M = 4096 and 4.4 % at Mixtral M = 1024, the same elsewhere).
// MOE_FUSED_MOE_GROUP_BY_EXPERT=0 gives every tile the fixed groups, =1 the runs to every tile of
// >= 64 rows (the older tiles were 1-12 % slower with them, v3); another value is an InputError.
// The 8-bit layer walks fixed groups (its ws kernels do not compile the runs). Read at each launch.
int32_t expert_run_window(int64_t k, const Tile& tile);

// ---- tuner candidates ------------------------------------------------------
struct TuneSpace {
  std::vector<int> split_k{1, 2, 4, 8};      // stage-2 splits tried (each must leave >= 1 k-tile per split)
  std::vector<bool> persistent{false, true};  // grid kinds tried
};
// Every candidate for `p` on `dev`: each usable compiled shape that fits p (index order) x
// persistent x split-K, de-duplicated, all valid (LayerConfig::is_valid()).
// The heuristic's choice is always among them.
std::vector<LayerConfig> tune_candidates(const Problem& p, const DeviceLimits& dev, const TuneSpace& space = {});

}  // namespace moe::fused_moe
