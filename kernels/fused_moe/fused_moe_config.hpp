// Heuristic tile-config chooser of the fused MoE GEMMs, kept apart from the
// kernels (host-only C++, built in every backend so it is testable on the CPU).
// A tuned table (the configs issue) can replace it; choose_config() is the
// fallback when no tuned entry matches.
#pragma once
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/fused_moe/fused_moe_types.hpp"
#include "moe/tuned_config.hpp"

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

// ---- the tuned-config table (configs/tuned_fmoe.csv) ------------------------
// Rows of this family: impl "mma_sync_tiles" (mma.sync / MFMA atom) or
// "wgmma_tiles" (Hopper warpgroup MMA); block_m, block_n, block_k, warps, stages
// name one compiled tile shape used by both stages; splitK is stage 2's split;
// persistent applies to both stages.
inline constexpr const char* kImplMmaSync = "mma_sync_tiles";
inline constexpr const char* kImplWgmma = "wgmma_tiles";
const std::set<std::string>& tuned_impls();

// The table key of a problem on a device with `cu_num` SMs/CUs and name
// `device` ("" = unknown: only rows without a device match)
// (act_type SiLu / GeLu, dtype bf16 / fp16).
TunedKey tuned_key(const Problem& p, int cu_num, const std::string& device = {});
// The table row describing `cfg` for `p` (us/err left unset).
TunedRow tuned_row(const Problem& p, int cu_num, const LayerConfig& cfg, const std::string& device = {});

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

// The config of a tuned row for `p`: the row's tile shape for both stages; with
// exact=true the row's split-K and persistence (where set), else (nearest token
// bucket) split-K and persistence recomputed for p.tokens as config_for_shape
// does. Returns an empty string and sets `out`, or says why the row cannot be
// used here (not a compiled shape, wgmma without an sm_90a build, shared memory).
std::string config_from_row(const TunedRow& row, const Problem& p, const DeviceLimits& dev, bool exact,
                            LayerConfig& out);

// TunedTable lookup for (dev.sm_count, dev.name, p): the exact row, else the
// nearest token bucket, else the same among rows without a device, else
// choose_config (the heuristic); see moe/tuned_config.hpp. A row that cannot run here falls
// back to the heuristic and says why in `note`. table == nullptr: heuristic.
ChosenConfig select_config(const Problem& p, const DeviceLimits& dev, const TunedTable* table);

// The process-wide table used by select_config(p, dev) (set by the CLI's
// --tuned-config, and by bench executables from $MOE_TUNED_CONFIG).
void set_tuned_table(std::shared_ptr<const TunedTable> table);
std::shared_ptr<const TunedTable> tuned_table();
ChosenConfig select_config(const Problem& p, const DeviceLimits& dev);

// ---- tuner candidates ------------------------------------------------------
struct TuneSpace {
  std::vector<int> split_k{1, 2, 4, 8};      // stage-2 splits tried (each must leave >= 1 k-tile per split)
  std::vector<bool> persistent{false, true};  // grid kinds tried
};
// Every candidate for `p` on `dev`: each usable compiled shape (index order) x
// persistent x split-K, de-duplicated, all valid (LayerConfig::is_valid()).
// The heuristic's choice is always among them.
std::vector<LayerConfig> tune_candidates(const Problem& p, const DeviceLimits& dev, const TuneSpace& space = {});

}  // namespace moe::fused_moe
