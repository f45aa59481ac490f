// GPU tests of the fused MoE kernels against the CPU reference. Outputs,
// intermediate and partial rows are poisoned (NaN) before every run.
//
// Test cases (doctest names, filter with -tc=...):
//   "fused_moe gpu: seed odd shapes"          the peer suite's (M, N=2*inter, K, top_k, E)
//   "fused_moe gpu: tile shapes"               every compiled tile x persistent x dtype x act x weight mode
//   "fused_moe gpu: persistent blocks walk several tiles, ..."  every tile, ~5 tiles per block, an empty split
//   "fused_moe gpu: claimed tiles equal the fixed stride ..."  Workspace::tile_counters on and off
//   "fused_moe gpu: the ws tiles in expert-run order ..."  MOE_FUSED_MOE_GROUP_BY_EXPERT 0 and 1
//   "sanitize: fused_moe claimed tiles"        the same, small (memcheck, racecheck)
//   "fused_moe gpu: routing distributions"     softmax, balanced, zipf, one expert
//   "fused_moe gpu: full layer with GPU align" align kernel + layer, determinism
//   "fused_moe gpu: validation"                InputError before any launch
//   "fused_moe gpu: models small M"            Mixtral / DeepSeek-V3 / Qwen3 at M 1..256
//   "fused_moe gpu big: models large M"        the same at M 1024, 4096 (token subset)
//   "fused_moe gpu big: DeepSeek-V3 M=40000"   64-bit offsets (M*k*model_dim > 2^31)
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "kernels/fused_moe/fused_moe.hpp"
#include "moe/model_config.hpp"
#include "moe/error.hpp"
#include "moe/gpu.hpp"
#include "harness/families/fused_moe/fused_moe_runner.hpp"

using moe::DType;
using moe::InputSpec;
using moe::RoutingDist;
using moe::ValueDist;
using namespace moe::fused_moe;
using namespace moe::fused_moe::check;

namespace {

InputSpec make_spec(int64_t M, int64_t H, int64_t I, int32_t E, int32_t k, DType dt, ValueDist v, RoutingDist r,
                    uint64_t seed) {
  InputSpec s;
  s.shape = {M, H, I, E, k};
  s.dtype = dt;
  s.values = v;
  s.routing = r;
  s.seed = seed;
  return s;
}

TileConfig shape_config(int i) { return TileConfig{kTileShapes[i].tile()}; }

// Shapes this build and device can run (the wgmma ones need an sm_90a build).
bool runnable(int shape) { return !kTileShapes[shape].wgmma || device_limits().wgmma; }
// ... and takes the problem's sizes (wgmma_ws: 16-byte rows).
bool runnable(int shape, const Problem& p) { return runnable(shape) && shape_fits(kTileShapes[shape], p); }
int last_runnable(const Problem& p) {
  int s = kNumTileShapes - 1;
  while (!runnable(s, p)) --s;
  return s;
}

LayerConfig layer_config(int shape, bool persistent, int split_k) {
  LayerConfig c;
  c.stage1 = shape_config(shape);
  c.stage2 = shape_config(shape);
  c.stage1.persistent = c.stage2.persistent = persistent;
  c.stage2.split_k = split_k;
  return c;
}

// Runs the layer with `cfg` and checks it against the reference (all tokens, or
// `subset` of them with weights read back from the device).
void run_and_check(const DeviceLayer& l, const LayerConfig& cfg, const moe::ref::FusedMoeRefResult& want,
                   bool gpu_align, moe::gpu::Stream& stream, const std::string& what) {
  const DeviceAlign a = gpu_align ? align_on_device(l, cfg.block_size(), stream.get())
                                  : align_on_host(l, cfg.block_size());
  const RunOutputs got = run_layer(l, a, cfg, stream.get(), /*want_intermediate=*/true);
  const CompareResult c = compare(l, got, want);
  INFO(what, " cfg ", cfg.to_string());
  CHECK_MESSAGE(c.passed(), c.message());
}

using Model = moe::ModelConfig;

// The "layer" sweep's points (configs/model_configs.json; tests run in the source root)
// at M <= 256 (small) or above.
std::vector<moe::SweepPoint> layer_points(bool small) {
  std::vector<moe::SweepPoint> out;
  for (auto& pt : moe::load_model_table("configs/model_configs.json").points("layer"))
    if ((pt.M <= 256) == small) out.push_back(std::move(pt));
  return out;
}

void check_model(const Model& m, int64_t M, int64_t subset, moe::gpu::Stream& stream) {
  const InputSpec spec = moe::layer_input_spec(m, M);
  const DeviceLayer l(spec, Activation::SiLU, RouterWeight::OnOutput);
  const auto tokens = pick_tokens(M, subset, 1234 + static_cast<uint64_t>(M));
  const auto want = reference_for(l, tokens, /*device_weights=*/true);
  const LayerConfig chosen = choose_config(l.problem, device_limits());
  run_and_check(l, chosen, want, /*gpu_align=*/true, stream, fmt::format("{} M={} chosen", m.name, M));
  // The persistent variant of the chosen config too.
  LayerConfig other = chosen;
  other.stage1.persistent = other.stage2.persistent = !chosen.stage1.persistent;
  run_and_check(l, other, want, false, stream, fmt::format("{} M={} persistent flipped", m.name, M));
}

TEST_CASE("fused_moe gpu: build reports its MMA paths") {
  MESSAGE(fmt::format("wgmma kernels {} in this build; {} tile shapes", device_limits().wgmma ? "present" : "absent",
                      kNumTileShapes));
  // A wgmma config is refused cleanly (InputError) where it was not compiled.
  if (!device_limits().wgmma) {
    moe::gpu::Stream stream;
    const InputSpec spec = make_spec(8, 64, 64, 4, 2, DType::BF16, ValueDist::FanIn, RoutingDist::Softmax, 1);
    const DeviceLayer l(spec, Activation::SiLU, RouterWeight::OnOutput);
    for (int s = 0; s < kNumTileShapes; ++s)
      if (kTileShapes[s].wgmma) {
        const DeviceAlign a = align_on_host(l, kTileShapes[s].block_m);
        CHECK_THROWS_AS(run_layer(l, a, layer_config(s, false, 1), stream.get()), moe::InputError);
      }
  }
}

}  // namespace

TEST_CASE("fused_moe gpu: seed odd shapes") {
  struct Odd {
    int64_t M, N, K;
    int32_t k, E;
  };
  // (M, N = 2*inter, K = model_dim, top_k, E)
  const Odd shapes[] = {{16, 14336, 1, 2, 4},  {4, 4, 8, 1, 2},      {1, 14336, 128, 2, 4}, {3, 14336, 128, 2, 4},
                        {16, 14336, 128, 1, 1}, {64, 7186, 128, 2, 8}, {64, 64, 128, 2, 8},  {1, 1024, 16384, 1, 2}};
  moe::gpu::Stream stream;
  uint64_t seed = 100;
  for (const Odd& o : shapes) {
    for (auto act : {Activation::SiLU, Activation::GeluTanh})
      for (auto rw : {RouterWeight::OnOutput, RouterWeight::OnInput}) {
        const InputSpec spec =
            make_spec(o.M, o.K, o.N / 2, o.E, o.k, DType::BF16, ValueDist::Normal, RoutingDist::Softmax, seed++);
        const DeviceLayer l(spec, act, rw);
        const auto want = reference_for(l, {}, /*device_weights=*/false);
        const std::string what = fmt::format("odd (M={} N={} K={} k={} E={}) act={} w_on={}", o.M, o.N, o.K, o.k,
                                             o.E, activation_name(act), router_weight_name(rw));
        run_and_check(l, choose_config(l.problem, device_limits()), want, false, stream, what + " chosen");
        // Decode tile with split-K, and the largest tile persistent.
        run_and_check(l, layer_config(0, false, 3), want, false, stream, what + " decode splitk3");
        run_and_check(l, layer_config(last_runnable(l.problem), true, 1), want, false, stream, what + " big persistent");
      }
  }
}

TEST_CASE("fused_moe gpu: tile shapes") {
  moe::gpu::Stream stream;
  // Odd sizes everywhere: model_dim 136 (aligned, 2 k-tiles + tail), inter 200.
  for (DType dt : {DType::BF16, DType::F16}) {
    const InputSpec spec = make_spec(97, 136, 200, 6, 3, dt, ValueDist::FanIn, RoutingDist::Zipf, 7);
    for (auto act : {Activation::SiLU, Activation::GeluTanh})
      for (auto rw : {RouterWeight::OnOutput, RouterWeight::OnInput}) {
        const DeviceLayer l(spec, act, rw);
        const auto want = reference_for(l, {}, false);
        for (int s = 0; s < kNumTileShapes; ++s)
          if (runnable(s))
          for (bool persistent : {false, true})
            for (int split : {1, 2}) {
              run_and_check(l, layer_config(s, persistent, split), want, false, stream,
                            fmt::format("{} act={} w_on={}", moe::dtype_name(dt), activation_name(act),
                                        router_weight_name(rw)));
            }
      }
  }
  // Unaligned K in both stages (model_dim 77, inter 45): the element-wise load path.
  const InputSpec spec = make_spec(33, 77, 45, 4, 2, DType::BF16, ValueDist::FanIn, RoutingDist::Softmax, 9);
  const DeviceLayer l(spec, Activation::SiLU, RouterWeight::OnOutput);
  const auto want = reference_for(l, {}, false);
  for (int s = 0; s < kNumTileShapes; ++s) {
    if (runnable(s, l.problem)) {
      run_and_check(l, layer_config(s, s % 2 == 1, 1 + s % 3), want, false, stream, "unaligned K");
    } else if (runnable(s)) {  // a wgmma_ws tile: refused before any launch
      const DeviceAlign a = align_on_host(l, kTileShapes[s].block_m);
      CHECK_THROWS_AS(run_layer(l, a, layer_config(s, false, 1), stream.get()), moe::InputError);
    }
  }
}

TEST_CASE("fused_moe gpu: persistent blocks walk several tiles, with empty K splits") {
  // 12000 slots over 8 experts: ~100 blocks of 128 rows, so stage 1 has ~200 tiles and
  // stage 2 (3 splits) ~600 for 132 SMs; inter 256 is 4 k-tiles of 64 (2 of 128), so
  // the last split of 3 holds no K slice and writes zeros.
  moe::gpu::Stream stream;
  const InputSpec spec = make_spec(6000, 512, 256, 8, 2, DType::BF16, ValueDist::FanIn, RoutingDist::Softmax, 21);
  const DeviceLayer l(spec, Activation::SiLU, RouterWeight::OnOutput);
  const auto want = reference_for(l, {}, false);
  for (int s = 0; s < kNumTileShapes; ++s)
    if (runnable(s, l.problem))
      run_and_check(l, layer_config(s, true, 3), want, s % 2 == 0, stream, "persistent, split 3 of 4 k-tiles");
}

namespace {

// One layer config on the device: its GPU-aligned routing and buffers; run() poisons them, runs the
// layer with the given tile counters and returns (output, intermediate).
struct LayerRun {
  const DeviceLayer& l;
  LayerConfig cfg;
  hipStream_t s;
  DeviceAlign a;
  moe::gpu::DeviceBuffer<uint16_t> inter, out;
  moe::gpu::DeviceBuffer<float> partial;
  LayerRun(const DeviceLayer& layer, const LayerConfig& c, hipStream_t stream)
      : l(layer), cfg(c), s(stream), a(align_on_device(layer, c.block_size(), stream)),
        inter(static_cast<size_t>(workspace_bytes(layer.problem, c).intermediate / 2)),
        out(static_cast<size_t>(layer.problem.tokens * layer.problem.model_dim)),
        partial(static_cast<size_t>(workspace_bytes(layer.problem, c).partial / 4)) {}
  std::pair<std::vector<uint16_t>, std::vector<uint16_t>> run(int32_t* tile_counters) {
    inter.poison(0xFF, s);
    partial.poison(0xFF, s);
    out.poison(0xFF, s);
    fused_moe(l.problem, l.tensors(out.data()), a.view, Workspace{inter.data(), partial.data(), tile_counters}, cfg, s);
    return std::make_pair(out.download(s), inter.download(s));
  }
};

// Persistent one-block ws grids with Workspace::tile_counters claim their tiles from a
// counter; without, each block walks blockIdx.x, += gridDim.x. Same tiles, same per-tile
// arithmetic: equal outputs bit for bit. Three launches on one set of counters (each must
// find them at zero again), outputs poisoned before each. Returns the ws tiles tested.
struct ClaimCase {
  int64_t M, H, I, E, k;
  RoutingDist dist;
  int split;
};
int check_claimed_equals_fixed(const ClaimCase& c, moe::gpu::Stream& stream) {
  const hipStream_t s = stream.get();
  const InputSpec spec = make_spec(c.M, c.H, c.I, c.E, c.k, DType::BF16, ValueDist::FanIn, c.dist, 41 + c.M);
  const DeviceLayer l(spec, Activation::SiLU, RouterWeight::OnOutput);
  int tested = 0;
  for (int shape = 0; shape < kNumTileShapes; ++shape) {
    const TileShape& t = kTileShapes[shape];
    if (!t.ws || t.cluster != 1 || !runnable(shape, l.problem)) continue;
    LayerRun run(l, layer_config(shape, /*persistent=*/true, c.split), s);
    auto counters = moe::gpu::DeviceBuffer<int32_t>::zeros(kTileCounters);
    const auto fixed = run.run(nullptr);
    INFO(fmt::format("M={} H={} I={} E={} k={} {} split {} tile {}", c.M, c.H, c.I, c.E, c.k,
                     moe::routing_dist_name(c.dist), c.split, t.name()));
    for (int rep = 0; rep < 3; ++rep) {
      const auto claimed = run.run(counters.data());
      CHECK(claimed.first == fixed.first);
      CHECK(claimed.second == fixed.second);
      CHECK(counters.download(s) == std::vector<int32_t>(kTileCounters, 0));
    }
    ++tested;
  }
  return tested;
}

}  // namespace

TEST_CASE("fused_moe gpu: claimed tiles equal the fixed stride bit for bit, counters back at zero") {
  // Fewer tiles than blocks (blocks without a tile still make their one claim), many
  // rounds per block, K splits (the last one empty). The fixed stride's outputs against
  // the reference: "persistent blocks walk several tiles"; the other cases run the layer
  // with counters (run_layer).
  moe::gpu::Stream stream;
  int tested = 0;
  for (const ClaimCase& c : {ClaimCase{97, 136, 200, 6, 3, RoutingDist::Balanced, 1},
                             ClaimCase{6000, 512, 256, 8, 2, RoutingDist::Softmax, 3},
                             ClaimCase{3000, 256, 704, 6, 3, RoutingDist::Zipf, 2}})
    tested += check_claimed_equals_fixed(c, stream);
  if (device_limits().wgmma) CHECK(tested > 0);
}

TEST_CASE("sanitize: fused_moe claimed tiles") {
  // Small for the sanitizers: stage 1 ~280 tiles of 2 K slices (blocks take 2-3 tiles
  // each), stage 2 ~100 tiles over 3 splits.
  moe::gpu::Stream stream;
  const int tested = check_claimed_equals_fixed(ClaimCase{2000, 128, 1024, 4, 2, RoutingDist::Softmax, 3}, stream);
  if (device_limits().wgmma) CHECK(tested > 0);
}

TEST_CASE("fused_moe gpu: the ws tiles in expert-run order equal the fixed groups bit for bit") {
  // MOE_FUSED_MOE_GROUP_BY_EXPERT=1 changes only which tile a block takes when: each tile's
  // sums and stores are the same. Experts of 1 to ~40 blocks (at these K the window is
  // kMaxGroupM = 64 blocks, and the ~100 blocks of the Zipf case put a run across its edge), one
  // block per tile and persistent (claimed tiles), the cluster tile, K splits.
  moe::gpu::Stream stream;
  const hipStream_t s = stream.get();
  int tested = 0;
  for (const ClaimCase& c : {ClaimCase{97, 136, 200, 6, 3, RoutingDist::Balanced, 1},
                             ClaimCase{6000, 2048, 704, 8, 2, RoutingDist::Zipf, 3},
                             ClaimCase{3000, 256, 704, 64, 3, RoutingDist::Softmax, 2}}) {
    const InputSpec spec = make_spec(c.M, c.H, c.I, c.E, c.k, DType::BF16, ValueDist::FanIn, c.dist, 43 + c.M);
    const DeviceLayer l(spec, Activation::SiLU, RouterWeight::OnOutput);
    for (int shape = 0; shape < kNumTileShapes; ++shape) {
      const TileShape& t = kTileShapes[shape];
      if (!t.ws || !runnable(shape, l.problem)) continue;
      for (bool persistent : {false, true}) {
        LayerRun layer(l, layer_config(shape, persistent, c.split), s);
        auto counters = moe::gpu::DeviceBuffer<int32_t>::zeros(kTileCounters);
        auto run = [&](const char* by_expert) {
          ::setenv("MOE_FUSED_MOE_GROUP_BY_EXPERT", by_expert, 1);
          auto r = layer.run(counters.data());
          ::unsetenv("MOE_FUSED_MOE_GROUP_BY_EXPERT");
          return r;
        };
        INFO(fmt::format("M={} H={} I={} E={} k={} {} split {} tile {} persistent {}", c.M, c.H, c.I, c.E, c.k,
                         moe::routing_dist_name(c.dist), c.split, t.name(), persistent));
        const auto fixed = run("0");
        const auto runs = run("1");
        CHECK(runs.first == fixed.first);
        CHECK(runs.second == fixed.second);
        CHECK(counters.download(s) == std::vector<int32_t>(kTileCounters, 0));
        ++tested;
      }
    }
  }
  if (device_limits().wgmma) CHECK(tested > 0);
}

TEST_CASE("fused_moe gpu: 2-block clusters equal the single-block tile bit for bit") {
  // The cluster tile multicasts each weight slice to the pair of blocks of m-blocks 2i,
  // 2i+1 when both are one expert's (same n-tile, same K split); every other pair loads
  // alone. Both paths multiply the same shared-memory images in the same order as the
  // single-block tile, so the outputs are equal bit for bit. The cases mix shared and
  // unshared pairs: experts of 1 to ~8 blocks, an odd tile count (a block past the
  // last tile), one expert for everything, and K splits that shift the pairing (pairs
  // whose tiles have different K slice counts). Persistent, each cluster walks several
  // pairs at M = 4000 (~570 stage-1 tiles), shared and unshared in turn.
  moe::gpu::Stream stream;
  int pair = -1, single = -1;
  for (int s = 0; s < kNumTileShapes; ++s)
    if (kTileShapes[s].cluster == 2) pair = s;
  if (pair < 0 || !runnable(pair)) {
    MESSAGE("no 2-block cluster tile in this build");
    return;
  }
  for (int s = 0; s < kNumTileShapes; ++s) {
    const TileShape& t = kTileShapes[s];
    if (t.ws && t.cluster == 1 && t.block_m == kTileShapes[pair].block_m && t.block_n == kTileShapes[pair].block_n &&
        t.stages == kTileShapes[pair].stages)
      single = s;
  }
  REQUIRE(single >= 0);
  struct Case {
    int64_t M, H, I, E, k;
    RoutingDist dist;
  };
  const Case cases[] = {{2000, 512, 384, 8, 2, RoutingDist::Softmax},  // ~4 blocks per expert
                        {1500, 256, 704, 6, 3, RoutingDist::Zipf},     // 1 to ~10 blocks per expert
                        {700, 384, 256, 4, 1, RoutingDist::OneExpert},
                        {97, 136, 200, 6, 3, RoutingDist::Balanced},
                        {4000, 256, 1024, 8, 2, RoutingDist::Zipf}};
  for (const Case& c : cases)
    for (auto rw : {RouterWeight::OnOutput, RouterWeight::OnInput}) {
      const InputSpec spec = make_spec(c.M, c.H, c.I, c.E, c.k, DType::BF16, ValueDist::FanIn, c.dist, 31 + c.M);
      const DeviceLayer l(spec, Activation::SiLU, rw);
      const auto want = reference_for(l, {}, false);
      for (int split : {1, 3})
        for (bool persistent : {false, true}) {
        const LayerConfig cp = layer_config(pair, persistent, split), cs = layer_config(single, false, split);
        const DeviceAlign a = align_on_device(l, cp.block_size(), stream.get());
        const RunOutputs rp = run_layer(l, a, cp, stream.get(), /*want_intermediate=*/true);
        const RunOutputs rs = run_layer(l, a, cs, stream.get(), /*want_intermediate=*/true);
        INFO(fmt::format("M={} H={} I={} E={} k={} {} split {}{}", c.M, c.H, c.I, c.E, c.k,
                         moe::routing_dist_name(c.dist), split, persistent ? " persistent" : ""));
        const CompareResult cmp = compare(l, rp, want);
        CHECK_MESSAGE(cmp.passed(), cmp.message());
        auto same_bits = [](const std::vector<float>& x, const std::vector<float>& y) {
          return x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0;
        };
        CHECK(same_bits(rp.out, rs.out));
        CHECK(same_bits(rp.intermediate, rs.intermediate));
      }
    }
}

TEST_CASE("fused_moe gpu: routing distributions") {
  moe::gpu::Stream stream;
  for (auto dist : {RoutingDist::Softmax, RoutingDist::Balanced, RoutingDist::Zipf, RoutingDist::OneExpert})
    for (int64_t M : {1, 5, 300}) {
      const InputSpec spec = make_spec(M, 256, 320, 16, 4, DType::BF16, ValueDist::FanIn, dist, 11 + M);
      const DeviceLayer l(spec, Activation::SiLU, RouterWeight::OnOutput);
      const auto want = reference_for(l, {}, false);
      const std::string what = fmt::format("dist={} M={}", moe::routing_dist_name(dist), M);
      run_and_check(l, choose_config(l.problem, device_limits()), want, true, stream, what + " chosen");
      for (int s = 0; s < kNumTileShapes; ++s)
        if (runnable(s)) run_and_check(l, layer_config(s, M == 300, 1), want, false, stream, what);
    }
}

TEST_CASE("fused_moe gpu: full layer with GPU align, bitwise deterministic") {
  moe::gpu::Stream stream;
  const InputSpec spec = make_spec(513, 512, 384, 32, 4, DType::BF16, ValueDist::FanIn, RoutingDist::Softmax, 5);
  const DeviceLayer l(spec, Activation::SiLU, RouterWeight::OnOutput);
  const auto want = reference_for(l, {}, false);
  for (int s = 0; s < kNumTileShapes; ++s) {
    if (!runnable(s)) continue;
    const LayerConfig cfg = layer_config(s, s % 2 == 0, 2);
    const DeviceAlign a = align_on_device(l, cfg.block_size(), stream.get());
    const RunOutputs r1 = run_layer(l, a, cfg, stream.get());
    const RunOutputs r2 = run_layer(l, a, cfg, stream.get());
    CHECK(std::memcmp(r1.out.data(), r2.out.data(), r1.out.size() * sizeof(float)) == 0);
    const CompareResult c = compare(l, r1, want);
    INFO(cfg.to_string());
    CHECK_MESSAGE(c.passed(), c.message());
  }
}

TEST_CASE("fused_moe gpu: validation") {
  moe::gpu::Stream stream;
  const InputSpec spec = make_spec(8, 64, 32, 4, 2, DType::BF16, ValueDist::FanIn, RoutingDist::Softmax, 1);
  const DeviceLayer l(spec, Activation::SiLU, RouterWeight::OnOutput);
  const LayerConfig cfg = layer_config(0, false, 1);
  const DeviceAlign a = align_on_host(l, cfg.block_size());
  moe::gpu::DeviceBuffer<uint16_t> inter(8 * 2 * 32), out(8 * 64);
  moe::gpu::DeviceBuffer<float> partial(8 * 2 * 64);
  const Workspace ws{inter.data(), partial.data()};
  const Tensors t = l.tensors(out.data());

  Problem p = l.problem;
  p.top_k = 5;  // > E
  CHECK_THROWS_AS(moe::fused_moe::fused_moe(p, t, a.view, ws, cfg, stream.get()), moe::InputError);
  p = l.problem;
  p.dtype = DType::F32;
  CHECK_THROWS_AS(moe::fused_moe::fused_moe(p, t, a.view, ws, cfg, stream.get()), moe::InputError);
  p = l.problem;
  p.model_dim = 0;
  CHECK_THROWS_AS(moe::fused_moe::fused_moe(p, t, a.view, ws, cfg, stream.get()), moe::InputError);
  LayerConfig bad = cfg;
  bad.stage1.split_k = 2;
  CHECK_THROWS_AS(moe::fused_moe::fused_moe(l.problem, t, a.view, ws, bad, stream.get()), moe::InputError);
  bad = cfg;
  bad.stage2.block_m = 999;
  CHECK_THROWS_AS(moe::fused_moe::fused_moe(l.problem, t, a.view, ws, bad, stream.get()), moe::InputError);
  AlignedRouting r = a.view;
  r.block_size = 64;  // differs from the tile's block_m
  CHECK_THROWS_AS(moe::fused_moe::fused_moe(l.problem, t, r, ws, cfg, stream.get()), moe::InputError);
  r = a.view;
  r.sorted_token_ids = nullptr;
  CHECK_THROWS_AS(moe::fused_moe::fused_moe(l.problem, t, r, ws, cfg, stream.get()), moe::InputError);
  Tensors t2 = t;
  t2.w1 = nullptr;
  CHECK_THROWS_AS(moe::fused_moe::fused_moe(l.problem, t2, a.view, ws, cfg, stream.get()), moe::InputError);
  CHECK_THROWS_AS(moe::fused_moe::fused_moe(l.problem, t, a.view, Workspace{}, cfg, stream.get()), moe::InputError);
  stream.sync();
  MOE_GPU_CHECK(hipGetLastError());
}

TEST_CASE("fused_moe gpu: models small M") {
  moe::gpu::Stream stream;
  for (const auto& pt : layer_points(true)) check_model(pt.model, pt.M, 24, stream);
}

TEST_CASE("fused_moe gpu big: models large M") {
  moe::gpu::Stream stream;
  for (const auto& pt : layer_points(false)) check_model(pt.model, pt.M, 24, stream);
}

TEST_CASE("fused_moe gpu big: DeepSeek-V3 M=40000 (64-bit offsets)") {
  size_t free_b = 0, total_b = 0;
  MOE_GPU_CHECK(hipMemGetInfo(&free_b, &total_b));
  const Model m = moe::load_model_table("configs/model_configs.json").model("deepseek_v3");
  const int64_t M = 40000;
  // weights 22.5 GB + hidden/out 1.1 GB + intermediate 1.3 GB + partial rows 9.2 GB
  const double need = 3.0 * m.experts * m.model_dim * m.inter_dim * 2 + 2.0 * M * m.model_dim * 2 +
                      M * m.top_k * m.inter_dim * 2.0 + M * m.top_k * m.model_dim * 4.0;
  if (static_cast<double>(free_b) < need * 1.05) {
    MESSAGE(fmt::format("skipped: needs {:.1f} GB of device memory, {:.1f} GB free", need / 1e9, free_b / 1e9));
    return;
  }
  REQUIRE(M * m.top_k * m.model_dim > (int64_t{1} << 31));
  moe::gpu::Stream stream;
  const InputSpec spec = moe::layer_input_spec(m, M, 3);
  const DeviceLayer l(spec, Activation::SiLU, RouterWeight::OnOutput);
  auto tokens = pick_tokens(M, 16, 99);
  tokens.push_back(M - 2);  // the highest partial-row offsets
  const auto want = reference_for(l, tokens, true);
  const LayerConfig cfg = choose_config(l.problem, device_limits());
  run_and_check(l, cfg, want, true, stream, "deepseek_v3 M=40000");
}
