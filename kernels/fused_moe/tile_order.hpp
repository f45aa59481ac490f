// The grouped tile order of the fused MoE stage kernels (both layers), host- and
// device-callable so that the CPU tests check it.
#pragma once
#include <cstdint>

#include "moe/gpu_runtime.hpp"

namespace moe::fused_moe {

// Tile `rest` of one split -> (m-block, n-tile), with the m-block varying fastest inside
// groups of group_m blocks (the last group may be smaller), so the blocks of a group share
// each weight tile in L2 and their A rows stay in L2 across the n sweep. A bijection of
// [0, num_m * n_tiles) onto [0, num_m) x [0, n_tiles) for every group_m >= 1.
MOE_HD void grouped_tile(int64_t rest, int num_m, int group_m, int n_tiles, int& m_blk, int& n_tile) {
  const int64_t group_span = static_cast<int64_t>(group_m) * n_tiles;
  const int first_m = static_cast<int>(rest / group_span) * group_m;
  const int gsize = (num_m - first_m) < group_m ? (num_m - first_m) : group_m;
  const int in_g = static_cast<int>(rest % group_span);
  m_blk = first_m + in_g % gsize;
  n_tile = in_g / gsize;
}

}  // namespace moe::fused_moe
