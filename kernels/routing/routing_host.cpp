// Host-only part of the routing kernels: config checks and the sigmoid top-1
// launch plan. Built in every backend (also -Dgpu=none) so the
// CLI and the CPU tests can validate inputs without a GPU.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "kernels/routing/routing.hpp"
#include "moe/error.hpp"

namespace moe::routing {

namespace {

int next_pow2(int v) {
  int p = 1;
  while (p < v) p <<= 1;
  return p;
}

std::string check_block_threads(int b) {
  if (b < 64 || b > 512 || b % 64 != 0)
    return fmt::format("block_threads must be a multiple of 64 in [64, 512], got {}", b);
  return {};
}

}  // namespace

// ------------------------------------------------------------- softmax top-k

SoftmaxTopkConfig SoftmaxTopkConfig::pick(const SoftmaxTopkParams& p) {
  SoftmaxTopkConfig c;
  if (p.experts > 256) {
    c.lanes_per_row = 32;
  } else {
    c.lanes_per_row = std::min(32, next_pow2((p.experts + 7) / 8));
  }
  return c;
}

int SoftmaxTopkConfig::values_per_lane(const SoftmaxTopkParams& p) const {
  const int lanes = lanes_per_row > 0 ? lanes_per_row : pick(p).lanes_per_row;
  const int need = (p.experts + lanes - 1) / lanes;
  return need <= 8 ? 8 : 16;
}

std::string SoftmaxTopkConfig::why_invalid(const SoftmaxTopkParams& p) const {
  if (auto s = check_block_threads(block_threads); !s.empty()) return "softmax_topk: " + s;
  if (lanes_per_row == 0) return {};
  if (lanes_per_row < 1 || lanes_per_row > 32 || (lanes_per_row & (lanes_per_row - 1)) != 0)
    return fmt::format("softmax_topk: lanes_per_row must be 0 (auto) or a power of two in [1, 32], got {}",
                       lanes_per_row);
  const int need = (p.experts + lanes_per_row - 1) / lanes_per_row;
  if (need > 16)
    return fmt::format("softmax_topk: {} lanes per row cannot hold {} experts (at most 16 per lane)", lanes_per_row,
                       p.experts);
  if (need > 8 && lanes_per_row != 1 && lanes_per_row != 32)
    return fmt::format("softmax_topk: {} lanes per row with {} experts needs 16 values per lane, compiled only for "
                       "1 or 32 lanes",
                       lanes_per_row, p.experts);
  return {};
}

SoftmaxTopkConfig SoftmaxTopkConfig::resolved(const SoftmaxTopkParams& p) const {
  const std::string why = why_invalid(p);
  MOE_REQUIRE(why.empty(), why);
  SoftmaxTopkConfig c = *this;
  if (c.lanes_per_row == 0) c.lanes_per_row = pick(p).lanes_per_row;
  return c;
}

// ------------------------------------------------------------- grouped top-k


int GroupedTopkParams::values_per_lane() const {
  int v = 1;
  while (v * 32 < experts) v <<= 1;
  return v;
}


bool GroupedTopkConfig::register_groups(const GroupedTopkParams& p) {
  const int v = p.values_per_lane();
  const int gs = p.group_size();
  if (gs % v != 0) return false;
  const int lanes = gs / v;
  return lanes >= 1 && lanes <= 32 && (lanes & (lanes - 1)) == 0;
}

size_t GroupedTopkConfig::shared_bytes(const GroupedTopkParams& p) const {
  if (register_groups(p)) return 0;
  return static_cast<size_t>(block_threads / 32) * 32 * static_cast<size_t>(p.values_per_lane()) * 4;
}

std::string GroupedTopkConfig::why_invalid(const GroupedTopkParams& p) const {
  if (auto s = check_block_threads(block_threads); !s.empty()) return "grouped_topk: " + s;
  if (shared_bytes(p) > 48 * 1024)
    return fmt::format("grouped_topk: {} threads need {} bytes of shared memory for E={} (limit 49152)", block_threads,
                       shared_bytes(p), p.experts);
  return {};
}

// ------------------------------------------------------------- sigmoid top-1
const char* top1_impl_name(Top1Impl i) {
  switch (i) {
    case Top1Impl::Auto: return "auto";
    case Top1Impl::TensorCore: return "tensor_core";
    case Top1Impl::Simt: return "simt";
  }
  return "?";
}


std::string SigmoidTop1Config::why_invalid(const SigmoidTop1Params&) const {
  if (k_splits < 0) return fmt::format("sigmoid_top1: k_splits must be >= 0 (0 = auto), got {}", k_splits);
  if (impl != Top1Impl::Auto && impl != Top1Impl::TensorCore && impl != Top1Impl::Simt)
    return "sigmoid_top1: unknown impl";
  return {};
}

SigmoidTop1Plan plan_sigmoid_top1(const SigmoidTop1Params& p, const SigmoidTop1Config& c, int sm_count,
                                  bool tensor_cores) {
  p.validate();
  const std::string why = c.why_invalid(p);
  MOE_REQUIRE(why.empty(), why);
  SigmoidTop1Plan pl;
  pl.impl = c.impl == Top1Impl::Auto ? (tensor_cores ? Top1Impl::TensorCore : Top1Impl::Simt) : c.impl;
  MOE_REQUIRE(pl.impl != Top1Impl::TensorCore || tensor_cores,
              "sigmoid_top1: impl tensor_core needs an NVIDIA GPU of compute capability 8.0 or newer");
  if (pl.impl == Top1Impl::TensorCore) {
    pl.bm = 64;
    pl.bn = 8 * std::min(16, next_pow2((p.experts + 7) / 8));
  } else {
    pl.bm = 32;
    pl.bn = 32;
  }
  pl.row_tiles = static_cast<int>((p.tokens + pl.bm - 1) / pl.bm);
  pl.col_tiles = (p.experts + pl.bn - 1) / pl.bn;
  const int kchunks = static_cast<int>((p.hidden + 127) / 128);
  int splits = 1;
  if (c.k_splits > 0) {
    splits = std::min(c.k_splits, kchunks);
  } else {
    const int64_t base = std::max<int64_t>(1, int64_t{pl.row_tiles} * pl.col_tiles);
    const int64_t target = 2 * std::max(1, sm_count);
    if (base < target) {
      const int64_t want = (target + base - 1) / base;
      // Fitted to the H100 split sweep (K=5120, E=16; docs/notes/routing.md): the
      // last-arriving block sums the splits with dependent L2 loads, so more than
      // 8 splits pays only while M is tiny (M <= 16: up to kchunks / 2).
      const int64_t half = std::max(1, kchunks / 2);
      const int64_t cap = p.tokens <= 16 ? half : std::min<int64_t>(8, half);
      splits = static_cast<int>(std::min<int64_t>(want, cap));
    }
  }
  const int per = (kchunks + splits - 1) / splits;
  pl.k_chunk = int64_t{128} * per;
  pl.splits = (kchunks + per - 1) / per;
  if (pl.direct() || p.tokens == 0) {
    pl.workspace_bytes = 0;
  } else {
    const size_t partial = static_cast<size_t>(pl.splits) * static_cast<size_t>(p.tokens) *
                           static_cast<size_t>(p.experts) * sizeof(float);
    pl.workspace_bytes = (partial + 255) / 256 * 256 + static_cast<size_t>(pl.row_tiles) * sizeof(int);
  }
  return pl;
}

}  // namespace moe::routing
