// CPU side of the tuner and of the tuned-config lookup of the fused MoE family:
// candidate enumeration, table rows <-> configs, select_config's sources
// (tuned:exact / tuned:nearest / ...(any-device) / heuristic, by the device's
// SM count and name), and a tuner writing rows while being interrupted
// (SIGINT / SIGKILL) never leaving a torn table.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "kernels/fused_moe/fused_moe_config.hpp"
#include "moe/error.hpp"
#include "moe/fused_moe_tuning.hpp"
#include "moe/tuned_config.hpp"
#include "tooling_util.hpp"

using namespace moe;
using namespace moe::fused_moe;

namespace {

Problem problem(int64_t M, int64_t H = 7168, int64_t I = 2048, int32_t E = 256, int32_t k = 8) {
  Problem p;
  p.tokens = M;
  p.model_dim = H;
  p.inter_dim = I;
  p.experts = E;
  p.top_k = k;
  return p;
}

DeviceLimits h100(bool wgmma) {
  DeviceLimits d;
  d.sm_count = 132;
  d.max_smem_per_block = 232448;
  d.wgmma = wgmma;
  return d;
}

bool same(const LayerConfig& a, const LayerConfig& b) { return a.stage1 == b.stage1 && a.stage2 == b.stage2; }

}  // namespace

TEST_CASE("tune candidates: valid, unique, usable here, heuristic included") {
  for (bool wg : {false, true})
    for (int64_t M : {1, 16, 64, 256, 1024, 4096}) {
      const Problem p = problem(M);
      const DeviceLimits dev = h100(wg);
      const auto c = tune_candidates(p, dev);
      REQUIRE(!c.empty());
      std::set<std::string> seen;
      bool has_heuristic = false, has_persistent = false, has_split = false;
      for (const auto& cfg : c) {
        CHECK_MESSAGE(cfg.is_valid(), cfg.why_invalid());
        CHECK(seen.insert(cfg.to_string()).second);
        const int s = find_tile_shape(kTileShapes, cfg.stage1);
        REQUIRE(s >= 0);
        CHECK(shape_usable(kTileShapes[s], dev));
        CHECK(cfg.stage1.block_m == cfg.stage2.block_m);
        CHECK(cfg.stage1.split_k == 1);
        CHECK(cfg.stage2.split_k <= (p.inter_dim + cfg.stage2.block_k - 1) / cfg.stage2.block_k);
        has_heuristic = has_heuristic || same(cfg, choose_config(p, dev));
        has_persistent = has_persistent || cfg.stage1.persistent;
        has_split = has_split || cfg.stage2.split_k > 1;
      }
      CHECK(has_heuristic);
      CHECK(has_persistent);
      CHECK(has_split);
#if !defined(MOE_BACKEND_HIP)
      // 5 mma.sync shapes (+2 wgmma, +1 wgmma_ws, +1 wgmma_ws of 2-block clusters) x 2 grids
      // x 4 splits.
      CHECK(c.size() == (wg ? 9u * 2 * 4 : 5u * 2 * 4));
#endif
    }
  // Restricted spaces.
  TuneSpace only;
  only.persistent = {true};
  only.split_k = {1};
  for (const auto& cfg : tune_candidates(problem(64), h100(false), only)) {
    if (same(cfg, choose_config(problem(64), h100(false)))) continue;  // the heuristic is always there
    CHECK(cfg.stage1.persistent);
    CHECK(cfg.stage2.split_k == 1);
  }
  // A small k range: splits beyond the k-tiles are dropped.
  for (const auto& cfg : tune_candidates(problem(4, 256, 64, 8, 2), h100(false)))
    CHECK(cfg.stage2.split_k <= (64 + cfg.stage2.block_k - 1) / cfg.stage2.block_k);
  // Less shared memory: the big shapes are gone.
  DeviceLimits small = h100(false);
  small.max_smem_per_block = 100 * 1024;
  for (const auto& cfg : tune_candidates(problem(256), small))
    CHECK(tile_smem_bytes(kTileShapes[find_tile_shape(kTileShapes, cfg.stage1)]) <= small.max_smem_per_block);
  CHECK_THROWS_AS(tune_candidates(problem(0), h100(false)), InputError);
}

TEST_CASE("tuned rows <-> configs: every candidate round-trips through the CSV") {
  tooling::TempDir dir;
  const std::string path = dir.path("t.csv");
  const DeviceLimits dev = h100(true);
  for (int64_t M : {1, 4096}) {
    const Problem p = problem(M);
    for (const auto& cfg : tune_candidates(p, dev)) {
      TunedRow r = tuned_row(p, 132, cfg);
      r.us = 1.5;
      r.err = 1e-3;
      CHECK(r.key.act_type == "SiLu");
      CHECK(r.key.dtype == "bf16");
      CHECK(r.impl == impl_of(cfg.stage1));
      CHECK(r.impl == (cfg.stage1.cluster == 2 ? kImplWgmmaWsC2
                       : cfg.stage1.ws       ? kImplWgmmaWs
                       : cfg.stage1.wgmma    ? kImplWgmma
                                             : kImplMmaSync));
      update_tuned_file(path, r, tuned_impls());
      const auto t = TunedTable::load(path, tuned_impls());
      const auto lk = t.lookup(tuned_key(p, 132));
      REQUIRE(lk.source == "exact");
      LayerConfig back;
      CHECK(config_from_row(lk.row, p, dev, true, back) == "");
      CHECK_MESSAGE(same(back, cfg), back.to_string(), " vs ", cfg.to_string());
    }
  }
  // GeLU / fp16 keys.
  Problem g = problem(8);
  g.act = Activation::GeluTanh;
  g.dtype = DType::F16;
  CHECK(tuned_key(g, 80).act_type == "GeLu");
  CHECK(tuned_key(g, 80).dtype == "fp16");
  CHECK(tuned_key(g, 80).cu_num == 80);
}

TEST_CASE("select_config: tuned:exact, tuned:nearest, heuristic, and rows that cannot run here") {
  const DeviceLimits dev = h100(false);
  const Problem p64 = problem(64);
  // A row for M = 64 with the decode tile, split 4, persistent.
  LayerConfig cfg = config_for_shape(p64, dev, 0);
  cfg.stage2.split_k = 4;
  cfg.stage1.persistent = cfg.stage2.persistent = true;
  TunedRow row = tuned_row(p64, 132, cfg);
  std::string csv;
  for (const auto& c : TunedTable::seed_columns()) csv += (csv.empty() ? "" : ",") + c;
  csv += "\n";
  TunedTable t = TunedTable::parse(csv, "mem.csv", tuned_impls());
  t.upsert(row, tuned_impls());

  auto ch = select_config(p64, dev, &t);
  CHECK(ch.source == "tuned:exact");
  CHECK(same(ch.cfg, cfg));
  CHECK(ch.note == "");
  CHECK(ch.to_json()["source"] == "tuned:exact");

  // M = 100: the nearest bucket (64): its tile, split-K/persistence recomputed for M.
  const Problem p100 = problem(100);
  ch = select_config(p100, dev, &t);
  CHECK(ch.source == "tuned:nearest");
  CHECK(same(ch.cfg, config_for_shape(p100, dev, 0)));

  // Another device (cu_num): never borrowed.
  DeviceLimits other = dev;
  other.sm_count = 114;
  ch = select_config(p64, other, &t);
  CHECK(ch.source == "heuristic");
  CHECK(same(ch.cfg, choose_config(p64, other)));

  // Another shape: heuristic. No table: heuristic.
  CHECK(select_config(problem(64, 4096, 14336, 8, 2), dev, &t).source == "heuristic");
  CHECK(select_config(p64, dev, nullptr).source == "heuristic");

  // A wgmma row on a build without wgmma: heuristic, and the note says why.
  const DeviceLimits wdev = h100(true);
  const auto cands = tune_candidates(p64, wdev);
  const auto wg = std::find_if(cands.begin(), cands.end(), [](const LayerConfig& c) { return c.stage1.wgmma; });
#if !defined(MOE_BACKEND_HIP)
  REQUIRE(wg != cands.end());
  TunedTable tw = TunedTable::parse(csv, "w.csv", tuned_impls());
  tw.upsert(tuned_row(p64, 132, *wg), tuned_impls());
  CHECK(select_config(p64, wdev, &tw).source == "tuned:exact");
  ch = select_config(p64, dev, &tw);
  CHECK(ch.source == "heuristic");
  CHECK(ch.note.find("wgmma") != std::string::npos);
#endif
  // A row without tile columns, or a tile that is not compiled: heuristic + note.
  TunedRow bare = row;
  bare.block_m.reset();
  TunedTable tb = TunedTable::parse(csv, "b.csv", tuned_impls());
  tb.upsert(bare, tuned_impls());
  ch = select_config(p64, dev, &tb);
  CHECK(ch.source == "heuristic");
  CHECK(ch.note.find("no tile columns") != std::string::npos);
  TunedRow odd = row;
  odd.block_n = 96;
  TunedTable to = TunedTable::parse(csv, "o.csv", tuned_impls());
  to.upsert(odd, tuned_impls());
  ch = select_config(p64, dev, &to);
  CHECK(ch.source == "heuristic");
  CHECK(ch.note.find("not a compiled shape") != std::string::npos);

}

TEST_CASE("select_config: the table is passed in; two tables give two answers in one process") {
  const DeviceLimits dev = h100(false);
  const Problem p64 = problem(64);
  std::string csv;
  for (const auto& c : TunedTable::seed_columns()) csv += (csv.empty() ? "" : ",") + c;
  csv += "\n";
  // Two different compiled tiles for the same key.
  LayerConfig first = config_for_shape(p64, dev, 0);
  LayerConfig second = config_for_shape(p64, dev, 3);
  REQUIRE(first.stage1.name() != second.stage1.name());
  TunedTable a = TunedTable::parse(csv, "a.csv", tuned_impls());
  TunedTable b = TunedTable::parse(csv, "b.csv", tuned_impls());
  a.upsert(tuned_row(p64, 132, first), tuned_impls());
  b.upsert(tuned_row(p64, 132, second), tuned_impls());
  const auto ca = select_config(p64, dev, &a);
  const auto cb = select_config(p64, dev, &b);
  CHECK(ca.source == "tuned:exact");
  CHECK(cb.source == "tuned:exact");
  CHECK(ca.cfg.stage1.name() == kTileShapes[0].name());
  CHECK(cb.cfg.stage1.name() == kTileShapes[3].name());
  CHECK(ca.row == "a.csv:0");
  CHECK(cb.row == "b.csv:0");
  // Asking the first again after the second: still its own answer.
  CHECK(same(select_config(p64, dev, &a).cfg, ca.cfg));
  CHECK(select_config(p64, dev, nullptr).source == "heuristic");
}

TEST_CASE("select_config: the device's name picks its rows (H100 vs H200, both 132 SMs), then rows without a device") {
  DeviceLimits h200 = h100(false);
  h200.name = "NVIDIA H200";
  DeviceLimits h100n = h100(false);
  h100n.name = "NVIDIA H100 80GB HBM3";
  const Problem p64 = problem(64), p100 = problem(100);
  std::string csv;
  for (const auto& c : TunedTable::seed_columns()) csv += (csv.empty() ? "" : ",") + c;
  csv += "\n";

  // A row without a device (a table from before the column), M = 64: split 4, persistent.
  LayerConfig any_cfg = config_for_shape(p64, h200, 0);
  any_cfg.stage2.split_k = 4;
  any_cfg.stage1.persistent = any_cfg.stage2.persistent = true;
  TunedTable t = TunedTable::parse(csv, "dev.csv", tuned_impls());
  t.upsert(tuned_row(p64, 132, any_cfg), tuned_impls());
  // Exact token count on a row without a device: the row's split-K and persistence are kept (as tuned:exact).
  auto ch = select_config(p64, h200, &t);
  CHECK(ch.source == "tuned:exact(any-device)");
  CHECK(same(ch.cfg, any_cfg));
  CHECK(ch.cfg.stage2.split_k == 4);
  CHECK(ch.to_json()["source"] == "tuned:exact(any-device)");
  // Nearest bucket of a row without a device: its tile, split-K/persistence recomputed for M.
  ch = select_config(p100, h200, &t);
  CHECK(ch.source == "tuned:nearest(any-device)");
  CHECK(same(ch.cfg, config_for_shape(p100, h200, 0)));
  // A device whose name is unknown (dry run without a GPU): the row is an exact key match.
  CHECK(select_config(p64, h100(false), &t).source == "tuned:exact");

  // Rows tuned on the H200 (another tile, split 2) win on the H200; the H100 keeps the row without a device.
  LayerConfig h200_cfg = config_for_shape(p64, h200, 1);
  h200_cfg.stage2.split_k = 2;
  REQUIRE(!same(h200_cfg, any_cfg));
  const TunedRow h200_row = tuned_row(p64, 132, h200_cfg, h200.name);
  CHECK(h200_row.key.device == "NVIDIA H200");
  t.upsert(h200_row, tuned_impls());
  REQUIRE(t.rows().size() == 2);
  ch = select_config(p64, h200, &t);
  CHECK(ch.source == "tuned:exact");
  CHECK(same(ch.cfg, h200_cfg));
  ch = select_config(p100, h200, &t);  // the H200's nearest bucket beats the row without a device
  CHECK(ch.source == "tuned:nearest");
  CHECK(same(ch.cfg, config_for_shape(p100, h200, 1)));
  ch = select_config(p64, h100n, &t);
  CHECK(ch.source == "tuned:exact(any-device)");
  CHECK(same(ch.cfg, any_cfg));

  // Only an H200 row: never used on the H100 (heuristic there), nor on another SM count.
  TunedTable only = TunedTable::parse(csv, "only.csv", tuned_impls());
  only.upsert(h200_row, tuned_impls());
  ch = select_config(p64, h100n, &only);
  CHECK(ch.source == "heuristic");
  CHECK(same(ch.cfg, choose_config(p64, h100n)));
  DeviceLimits h200_114 = h200;
  h200_114.sm_count = 114;
  CHECK(select_config(p64, h200_114, &only).source == "heuristic");
  CHECK(select_config(p64, h200, &only).source == "tuned:exact");

  // The tuner's row (tuned_row with the device's name) goes to the CSV's device column and reads back.
  tooling::TempDir dir;
  const std::string path = dir.path("tuned.csv");
  update_tuned_file(path, h200_row, tuned_impls());
  const auto back = TunedTable::load(path, tuned_impls());
  REQUIRE(back.rows().size() == 1);
  CHECK(back.rows()[0].key.device == "NVIDIA H200");
  CHECK(select_config(p64, h200, &back).source == "tuned:exact");
  CHECK(select_config(p64, h100n, &back).source == "heuristic");
}

TEST_CASE("tuner rows: a tuner interrupted (SIGINT, SIGKILL) while writing never leaves a torn table") {
  tooling::TempDir dir;
  const std::string path = dir.path("tuned.csv");
  const DeviceLimits dev = h100(true);
  const auto cands = tune_candidates(problem(64), dev);
  update_tuned_file(path, tuned_row(problem(64), 132, cands[0]), tuned_impls());
  for (int round = 0; round < 8; ++round) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      // Child: the tuner's write path (one update_tuned_file per finished point). Default
      // SIGINT action: doctest's fatal-signal handler is inherited and must not report here.
      ::signal(SIGINT, SIG_DFL);
      for (int64_t i = 0;; ++i) {
        const Problem p = problem(1 + (i + round * 1000) % 5000);
        TunedRow r = tuned_row(p, 132, cands[static_cast<size_t>(i) % cands.size()]);
        r.us = double(i);
        r.err = 1e-3;
        try {
          update_tuned_file(path, r, tuned_impls());
        } catch (...) {
          ::_exit(3);
        }
      }
    }
    ::usleep(static_cast<useconds_t>(20000 + 7919 * round % 30000));
    ::kill(pid, round % 2 ? SIGKILL : SIGINT);
    int st = 0;
    ::waitpid(pid, &st, 0);
    CHECK(WIFSIGNALED(st));
    // The table parses, and every row is a config this build can run.
    const auto t = TunedTable::load(path, tuned_impls());
    CHECK(!t.rows().empty());
    for (const auto& r : t.rows()) {
      LayerConfig c;
      Problem p = problem(r.key.token);
      CHECK(config_from_row(r, p, dev, true, c) == "");
    }
  }
}

TEST_CASE("tuner rows: concurrent tuners upserting into one table keep every row (update_file_locked)") {
  // Sharded tuners each write their own points' rows into the same CSV. An
  // unlocked re-read/upsert/rename loses the rows another writer renamed in
  // between; under the lock every row of every writer must be there.
  tooling::TempDir dir;
  const std::string path = dir.path("tuned.csv");
  const DeviceLimits dev = h100(true);
  const auto cands = tune_candidates(problem(64), dev);
  constexpr int kWriters = 4, kRowsEach = 15;
  std::vector<pid_t> pids;
  for (int w = 0; w < kWriters; ++w) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      for (int i = 0; i < kRowsEach; ++i) {
        TunedRow r = tuned_row(problem(1 + w * kRowsEach + i), 132, cands[static_cast<size_t>(i) % cands.size()]);
        r.us = double(w);
        try {
          update_tuned_file(path, r, tuned_impls());
        } catch (...) {
          ::_exit(3);
        }
      }
      ::_exit(0);
    }
    pids.push_back(pid);
  }
  for (const pid_t pid : pids) {
    int st = 0;
    ::waitpid(pid, &st, 0);
    CHECK((WIFEXITED(st) && WEXITSTATUS(st) == 0));
  }
  const auto t = TunedTable::load(path, tuned_impls());
  std::set<int64_t> tokens;
  for (const auto& r : t.rows()) tokens.insert(r.key.token);
  CHECK(t.rows().size() == size_t{kWriters * kRowsEach});
  CHECK(tokens.size() == size_t{kWriters * kRowsEach});
}

TEST_CASE("tuned config: the committed configs/tuned_fmoe.csv parses with the tuner's impl names") {
  const auto t = TunedTable::load_or_empty("configs/tuned_fmoe.csv", tuned_impls());
  CHECK(t.file() == "configs/tuned_fmoe.csv");
  for (const auto& row : t.rows()) {
    CHECK(row.key.cu_num > 0);
    CHECK(tuned_impls().count(row.impl) == 1);
  }
}

TEST_CASE("tuned config: every row of the committed configs/tuned_fmoe.csv names a compiled tile and resolves to it") {
#if !defined(MOE_BACKEND_HIP)
  // The file's tile columns, read here as plain text (not through TunedTable).
  const std::string text = tooling::slurp("configs/tuned_fmoe.csv");
  std::vector<std::vector<std::string>> cells;
  {
    std::string line;
    for (char ch : text + "\n") {
      if (ch != '\n') { line += ch; continue; }
      if (!line.empty()) {
        std::vector<std::string> f(1);
        for (char x : line)
          if (x == ',') f.emplace_back();
          else f.back() += x;
        cells.push_back(f);
      }
      line.clear();
    }
  }
  REQUIRE(cells.size() > 1);
  const auto& header = cells[0];
  auto col = [&](const std::string& name) {
    const auto it = std::find(header.begin(), header.end(), name);
    REQUIRE(it != header.end());
    return static_cast<size_t>(it - header.begin());
  };
  const auto t = TunedTable::load("configs/tuned_fmoe.csv", tuned_impls());
  REQUIRE(t.rows().size() == cells.size() - 1);
  for (size_t i = 0; i < t.rows().size(); ++i) {
    const auto& f = cells[i + 1];
    const TunedRow& row = t.rows()[i];
    CAPTURE(row.line);
    const std::string impl = f[col("impl")];
    const bool ws = impl == kImplWgmmaWs || impl == kImplWgmmaWsC2;
    const Tile want{std::stoi(f[col("block_m")]), std::stoi(f[col("block_n")]), std::stoi(f[col("block_k")]),
                    std::stoi(f[col("warps")]),   std::stoi(f[col("stages")]),
                    ws || impl == kImplWgmma,     ws,
                    impl == kImplWgmmaWsC2 ? 2 : 1};
    Tile got;
    CHECK(tile_of_row(row, got) == "");
    CHECK(got == want);
    CHECK(find_tile_shape(kTileShapes, got) >= 0);
    // The row's problem resolves to its tile, split and persistence (an H200 with wgmma: the device column).
    Problem p = problem(row.key.token, row.key.model_dim, row.key.inter_dim, row.key.expert, row.key.topk);
    DeviceLimits dev = h100(true);
    dev.sm_count = row.key.cu_num;
    dev.name = row.key.device;
    const ChosenConfig ch = select_config(p, dev, &t);
    CHECK(ch.source == "tuned:exact");
    CHECK(Tile(ch.cfg.stage1) == want);
    CHECK(Tile(ch.cfg.stage2) == want);
    CHECK(ch.cfg.stage2.split_k == std::stoi(f[col("splitK")]));
    CHECK(ch.cfg.stage1.persistent == (f[col("persistent")] == "1"));
  }
#endif
}
