#include "moe/fused_moe_tuning.hpp"

#include <fmt/format.h>

namespace moe::fused_moe {

namespace {

// The tile kind each impl name stands for.
struct ImplKind {
  const char* impl;
  bool wgmma, ws;
  int cluster;
};
constexpr ImplKind kImplKinds[] = {{kImplMmaSync, false, false, 1},
                                   {kImplWgmma, true, false, 1},
                                   {kImplWgmmaWs, true, true, 1},
                                   {kImplWgmmaWsC2, true, true, 2}};

}  // namespace

const std::set<std::string>& tuned_impls() {
  static const std::set<std::string> s = [] {
    std::set<std::string> names;
    for (const ImplKind& k : kImplKinds) names.insert(k.impl);
    return names;
  }();
  return s;
}

std::string impl_of(const Tile& t) {
  for (const ImplKind& k : kImplKinds)
    if (k.wgmma == t.wgmma && k.ws == t.ws && k.cluster == t.cluster) return k.impl;
  return {};
}

TunedKey tuned_key(const Problem& p, int cu_num, const std::string& device) {
  TunedKey k;
  k.cu_num = cu_num;
  k.device = device;
  k.token = p.tokens;
  k.model_dim = p.model_dim;
  k.inter_dim = p.inter_dim;
  k.expert = p.experts;
  k.topk = p.top_k;
  k.act_type = p.act == Activation::SiLU ? "SiLu" : "GeLu";
  k.dtype = std::string(dtype_name(p.dtype));
  return k;
}

TunedRow tuned_row(const Problem& p, int cu_num, const LayerConfig& cfg, const std::string& device) {
  TunedRow r;
  r.key = tuned_key(p, cu_num, device);
  const Tile& t = cfg.stage1;
  r.impl = impl_of(t);
  r.split_k = cfg.stage2.split_k;
  r.block_m = t.block_m;
  r.block_n = t.block_n;
  r.block_k = t.block_k;
  r.warps = t.warps;
  r.stages = t.stages;
  r.persistent = cfg.stage1.persistent;
  return r;
}

std::string tile_of_row(const TunedRow& row, Tile& out) {
  const ImplKind* kind = nullptr;
  for (const ImplKind& k : kImplKinds)
    if (row.impl == k.impl) kind = &k;
  if (!kind) {
    std::string names;
    for (const ImplKind& k : kImplKinds) names += fmt::format("{}{}", names.empty() ? "" : ", ", k.impl);
    return fmt::format("impl '{}' is not a fused_moe impl ({})", row.impl, names);
  }
  if (!row.block_m || !row.block_n || !row.block_k || !row.warps || !row.stages)
    return "the row has no tile columns (block_m, block_n, block_k, warps, stages)";
  out = Tile{*row.block_m, *row.block_n, *row.block_k, *row.warps, *row.stages, kind->wgmma, kind->ws, kind->cluster};
  return {};
}

nlohmann::json ChosenConfig::to_json() const {
  nlohmann::json j{{"config", cfg.to_string()}, {"tile", cfg.stage1.name()}, {"source", source}};
  if (!row.empty()) j["row"] = row;
  if (!note.empty()) j["note"] = note;
  return j;
}

std::string config_from_row(const TunedRow& row, const Problem& p, const DeviceLimits& dev, bool exact,
                            LayerConfig& out) {
  Tile t;
  if (auto why = tile_of_row(row, t); !why.empty()) return why;
  if (auto why = why_not_compiled(kTileShapes, t); !why.empty()) return why;
  const int shape = find_tile_shape(kTileShapes, t);
  if (t.wgmma && !dev.wgmma) return "wgmma tile, but this is not an sm_90a build on a Hopper GPU";
  if (tile_smem_bytes(kTileShapes[shape]) > dev.max_smem_per_block)
    return fmt::format("tile {} needs more shared memory than the device allows", t.name());
  LayerConfig c = config_for_shape(p, dev, shape);
  if (exact) {
    if (row.split_k >= 1) c.stage2.split_k = row.split_k;
    if (row.persistent) c.stage1.persistent = c.stage2.persistent = *row.persistent;
  }
  if (auto w = c.why_invalid(); !w.empty()) return w;
  if (c.stage2.split_k > 1 && (p.inter_dim + c.stage2.block_k - 1) / c.stage2.block_k < c.stage2.split_k)
    return fmt::format("split_k {} exceeds the {} k-tiles of stage 2", c.stage2.split_k,
                       (p.inter_dim + c.stage2.block_k - 1) / c.stage2.block_k);
  out = c;
  return {};
}

ChosenConfig select_config(const Problem& p, const DeviceLimits& dev, const TunedTable* table) {
  p.validate();
  ChosenConfig ch;
  if (table) {
    const TunedLookup lk =
        table->lookup(tuned_key(p, dev.sm_count, dev.name), [](const TunedKey&) { return TunedRow{}; });
    if (lk.source != "heuristic") {
      LayerConfig c;
      const std::string where = fmt::format("{}:{}", lk.file, lk.row.line);
      const std::string why = config_from_row(lk.row, p, dev, lk.exact, c);
      if (why.empty()) {
        ch.cfg = c;
        ch.source = "tuned:" + lk.source;
        ch.row = where;
        return ch;
      }
      ch.note = fmt::format("tuned row {} ({}) not used: {}", where, lk.source, why);
    }
  }
  ch.cfg = choose_config(p, dev);
  ch.source = "heuristic";
  return ch;
}

}  // namespace moe::fused_moe
