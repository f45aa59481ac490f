// The fused_moe tile config of a problem from a tuned table (configs/tuned_fmoe.csv,
// moe/tuned_config.hpp), else the kernels' heuristic (choose_config). The table
// is always passed in: the caller (CLI command, bench executable, test) owns it.
//
// Rows of this family: impl "mma_sync_tiles" (mma.sync / MFMA atom),
// "wgmma_tiles" (Hopper warpgroup MMA), "wgmma_ws_tiles" (warp-specialized Hopper
// warpgroup MMA with TMA weight loads) or "wgmma_ws_c2_tiles" (the same in 2-block
// clusters sharing each weight slice by multicast); block_m, block_n, block_k, warps, stages
// and the impl name one compiled tile (kernels/fused_moe/tile.hpp) used by both
// stages; splitK is stage 2's split; persistent applies to both stages.
#pragma once
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "kernels/fused_moe/fused_moe_config.hpp"
#include "moe/tuned_config.hpp"

namespace moe::fused_moe {

inline constexpr const char* kImplMmaSync = "mma_sync_tiles";
inline constexpr const char* kImplWgmma = "wgmma_tiles";
inline constexpr const char* kImplWgmmaWs = "wgmma_ws_tiles";
inline constexpr const char* kImplWgmmaWsC2 = "wgmma_ws_c2_tiles";
const std::set<std::string>& tuned_impls();
// The impl name of a tile's kind (mma, wgmma, wgmma_ws, wgmma_ws in clusters of 2);
// "" for a kind no impl names.
std::string impl_of(const Tile& t);

// The table key of a problem on a device with `cu_num` SMs/CUs and name
// `device` ("" = unknown: only rows without a device match)
// (act_type SiLu / GeLu, dtype bf16 / fp16).
TunedKey tuned_key(const Problem& p, int cu_num, const std::string& device = {});
// The table row describing `cfg` for `p` (us/err left unset).
TunedRow tuned_row(const Problem& p, int cu_num, const LayerConfig& cfg, const std::string& device = {});

// The tile a row names (its impl and tile columns), or why it names none: an
// impl of another family, or a tile column left empty.
std::string tile_of_row(const TunedRow& row, Tile& out);

// A config chosen for a problem and where it came from.
struct ChosenConfig {
  LayerConfig cfg;
  // "tuned:exact" | "tuned:nearest" (a row for this device's name) |
  // "tuned:exact(any-device)" | "tuned:nearest(any-device)" (a row without a device) | "heuristic"
  std::string source;
  std::string row;     // "file:line" of the tuned row used ("" for heuristic)
  std::string note;    // why a matching row was not used, if one was rejected
  nlohmann::json to_json() const;
};

// The config of a tuned row for `p`: the row's tile for both stages; with
// exact=true the row's split-K and persistence (where set), else (nearest token
// bucket) split-K and persistence recomputed for p.tokens as config_for_shape
// does. Returns an empty string and sets `out`, or says why the row cannot be
// used here (not a compiled shape, wgmma without an sm_90a build, shared memory).
std::string config_from_row(const TunedRow& row, const Problem& p, const DeviceLimits& dev, bool exact,
                            LayerConfig& out);

// TunedTable lookup for (dev.sm_count, dev.name, p): the exact row, else the
// nearest token bucket, else the same among rows without a device, else
// choose_config (the heuristic); see moe/tuned_config.hpp. A row that cannot run
// here falls back to the heuristic and says why in `note`. table == nullptr: the heuristic.
ChosenConfig select_config(const Problem& p, const DeviceLimits& dev, const TunedTable* table);

}  // namespace moe::fused_moe
