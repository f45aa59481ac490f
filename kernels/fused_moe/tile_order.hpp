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

// Tile `rest` of one split -> (m-block, n-tile), with groups that follow the runs of one
// expert's m-blocks (expert_at(b): the expert of m-block b), cut at windows of `window` blocks
// ([w0, w0 + window), w0 a multiple of window): inside a run the m-block varies fastest, so an
// expert's m-blocks read each weight tile one after the other. The tiles of run [g0, g1) are
// [g0 * n_tiles, g1 * n_tiles), so a tile finds its run by looking at its neighbours, not at a
// prefix over all runs. A bijection of [0, valid_m * n_tiles) onto [0, valid_m) x [0, n_tiles);
// a later `rest` gives m_blk = valid_m (a tile without rows).
template <class ExpertAt>
MOE_HD void expert_run_tile(int64_t rest, int valid_m, int window, int n_tiles, ExpertAt&& expert_at, int& m_blk,
                            int& n_tile) {
  const int64_t q64 = rest / n_tiles;
  if (q64 >= valid_m) {
    m_blk = valid_m;
    n_tile = 0;
    return;
  }
  const int q = static_cast<int>(q64);
  const int w0 = q / window * window;
  const int w1 = valid_m - w0 < window ? valid_m : w0 + window;
  const int e = expert_at(q);
  int g0 = q, g1 = q + 1;
  while (g0 > w0 && expert_at(g0 - 1) == e) --g0;
  while (g1 < w1 && expert_at(g1) == e) ++g1;
  const int local = static_cast<int>(rest - static_cast<int64_t>(g0) * n_tiles);
  m_blk = g0 + local % (g1 - g0);
  n_tile = local / (g1 - g0);
}

}  // namespace moe::fused_moe
