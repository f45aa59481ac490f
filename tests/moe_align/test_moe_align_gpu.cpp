// GPU tests of moe_align_block_size against the CPU reference: exact comparison
// of all outputs over their full capacity (outputs poisoned before every run),
// both code paths, expert_map, masked ids, skewed routing, determinism and
// validation. Test cases whose name starts with "sanitize:" are the small subset
// run under compute-sanitizer (doctest -tc='sanitize:*').
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include <fmt/format.h>

#include "kernels/moe_align/moe_align.hpp"
#include "moe/error.hpp"
#include "moe/gpu.hpp"
#include "moe/registry.hpp"
#include "reference/moe_align/moe_align_ref.hpp"

using moe::align::AlignPath;
using moe::align::AlignShape;
using moe::ref::AlignIds;

namespace {

struct Case {
  int64_t M;
  int32_t E;
  int32_t k;
  int32_t bs;
  AlignIds ids = AlignIds::Uniform;
  double masked = 0.0;
  bool half_remote = false;
  uint64_t seed = 1;
};

std::string describe(const Case& c, AlignPath path) {
  return fmt::format("M={} E={} top_k={} block={} ids={} masked={} map={} path={}", c.M, c.E, c.k, c.bs,
                     moe::ref::align_ids_name(c.ids), c.masked, c.half_remote ? "half_remote" : "none",
                     static_cast<int>(path));
}

// Runs the kernel on `path` and compares with the reference; returns the device result.
moe::align::AlignHostResult run_case(const Case& c, AlignPath path, int stage = -1) {
  const AlignShape s{c.M, c.k, c.E, c.bs};
  const auto ids = moe::ref::make_align_ids(s, c.ids, c.seed, c.masked);
  const auto map = c.half_remote ? moe::ref::make_half_remote_map(c.E, c.seed) : std::vector<int32_t>{};
  const auto ref = moe::ref::expand_to_capacity(moe::ref::moe_align_block_size(s, ids, map), s);
  auto cfg = moe::align::AlignLaunchConfig::choose(s, moe::align::AlignDeviceLimits::current(), path);
  if (stage >= 0) cfg.stage = stage != 0;
  auto got = moe::align::run_align_on_device(s, ids, map, cfg);
  const auto chk = moe::ref::compare_align(ref, got.sorted_token_ids, got.expert_ids, got.num_tokens_post_padded);
  INFO(describe(c, got.config.path), " blocks=", got.config.num_blocks, " warps=", got.config.rank_warps,
       " stage=", got.config.stage);
  INFO(chk.message);
  CHECK(chk.passed);
  CHECK(got.status == 0);
  return got;
}

// Every path where it can hold the shape (Fused where its shared memory fits), else Auto.
void run_both(const Case& c) {
  const AlignShape s{c.M, c.k, c.E, c.bs};
  const auto lim = moe::align::AlignDeviceLimits::current();
  (void)run_case(c, AlignPath::Auto);
  if (s.num_slots() <= 65536) {
    const auto single = moe::align::AlignLaunchConfig::choose(s, lim, AlignPath::SingleBlock);
    if (single.invalid_reason(s, lim).empty() && moe::align::align_capacity(s) <= (1 << 20)) {
      (void)run_case(c, AlignPath::SingleBlock);
      if (single.stage) (void)run_case(c, AlignPath::SingleBlock, 0);  // also straight to global memory
    }
    (void)run_case(c, AlignPath::MultiBlock);
    const auto fused = moe::align::AlignLaunchConfig::choose(s, lim, AlignPath::Fused);
    if (fused.invalid_reason(s, lim).empty()) (void)run_case(c, AlignPath::Fused);
  }
}

const std::vector<int64_t> kMs = {1, 3, 7, 16, 256, 2256, 4096, 16384, 65536, 131072};
const std::vector<int32_t> kEs = {1, 2, 8, 32, 64, 128, 160, 256, 257, 384, 512, 1024, 4096};
const std::vector<int32_t> kKs = {1, 2, 4, 6, 8, 16, 64};
const std::vector<int32_t> kBlocks = {16, 32, 64, 128, 256};

// A covering subset of M x E x top_k x block: every (M, E) pair once, top_k and
// block cycling so every value of each meets many of the others.
std::vector<Case> covering_subset() {
  std::vector<Case> out;
  for (size_t i = 0; i < kMs.size(); ++i) {
    for (size_t j = 0; j < kEs.size(); ++j) {
      Case c;
      c.M = kMs[i];
      c.E = kEs[j];
      int32_t k = kKs[(i + 2 * j) % kKs.size()];
      while (k > c.E) k = kKs[static_cast<size_t>(std::find(kKs.begin(), kKs.end(), k) - kKs.begin()) - 1];
      // Keep M*top_k at or below 2^23 (the 1M+ scale) so the sweep stays fast.
      while (c.M * k > (int64_t{1} << 23) && k > 1) k /= 2;
      c.k = k;
      c.bs = kBlocks[(3 * i + j) % kBlocks.size()];
      // Routing: softmax top-k where generating it is cheap, else uniform ids.
      c.ids = c.M * c.E <= (int64_t{1} << 21) ? AlignIds::Softmax : AlignIds::Uniform;
      c.masked = (i + j) % 4 == 0 ? 0.1 : 0.0;
      c.half_remote = (i + j) % 5 == 0;
      c.seed = 1000 + i * 31 + j;
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

TEST_CASE("sanitize: worked example and small shapes on both paths") {
  const AlignShape s{3, 2, 4, 16};
  const std::vector<int32_t> ids = {2, 0, 2, 3, -1, 2};
  for (auto path : {AlignPath::SingleBlock, AlignPath::MultiBlock, AlignPath::Fused}) {
    const auto got = moe::align::run_align_on_device(s, ids, {}, path);
    const int32_t S = 6;
    std::vector<int32_t> want = {1};
    want.insert(want.end(), 15, S);
    want.insert(want.end(), {0, 2, 5});
    want.insert(want.end(), 13, S);
    want.push_back(3);
    want.insert(want.end(), 15 + 16, S);
    CHECK(got.sorted_token_ids == want);
    CHECK(got.expert_ids == std::vector<int32_t>{0, 2, 3, -1});
    CHECK(got.num_tokens_post_padded == 48);
    const auto m = moe::align::run_align_on_device(s, ids, std::vector<int32_t>{-1, -1, 0, 1}, path);
    CHECK(m.num_tokens_post_padded == 32);
    CHECK(m.expert_ids == std::vector<int32_t>{0, 1, -1, -1});
  }
  for (const Case& c : {Case{1, 8, 2, 16}, Case{7, 257, 6, 64, AlignIds::Softmax, 0.1, true},
                        Case{16, 4096, 8, 256, AlignIds::Uniform}, Case{256, 256, 8, 64, AlignIds::Softmax},
                        Case{100, 160, 4, 32, AlignIds::OneExpert, 0.0, true}})
    run_both(c);
}

TEST_CASE("sanitize: multi-block with several blocks, masked ids and a map") {
  for (const Case& c : {Case{2256, 64, 4, 16, AlignIds::Softmax, 0.1, true}, Case{700, 1024, 16, 128},
                        Case{1500, 8, 2, 32, AlignIds::FewExperts}}) {
    (void)run_case(c, AlignPath::MultiBlock);
    (void)run_case(c, AlignPath::Fused);
  }
}

TEST_CASE("sanitize: warp ranges longer than one register chunk (ids re-read), forced configs") {
  const auto lim = moe::align::AlignDeviceLimits::current();
  for (const Case& c : {Case{1000, 64, 4, 16, AlignIds::Softmax, 0.1, true}, Case{517, 257, 8, 64, AlignIds::Uniform}}) {
    const AlignShape s{c.M, c.k, c.E, c.bs};
    const auto ids = moe::ref::make_align_ids(s, c.ids, c.seed, c.masked);
    const auto map = c.half_remote ? moe::ref::make_half_remote_map(c.E, c.seed) : std::vector<int32_t>{};
    const auto ref = moe::ref::expand_to_capacity(moe::ref::moe_align_block_size(s, ids, map), s);
    std::vector<moe::align::AlignLaunchConfig> cfgs;
    for (int warps : {1, 3}) {
      for (bool stage : {false, true}) {
        auto cfg = moe::align::AlignLaunchConfig::choose(s, lim, AlignPath::SingleBlock);
        cfg.rank_warps = warps;
        cfg.stage = stage;
        cfgs.push_back(cfg);
      }
      auto cfg = moe::align::AlignLaunchConfig::choose(s, lim, AlignPath::MultiBlock);
      cfg.rank_warps = warps;
      cfg.slots_per_block = 1500;
      cfg.num_blocks = static_cast<int>((s.num_slots() + 1499) / 1500);
      cfgs.push_back(cfg);
      // Fused: ranges over one chunk, several blocks, more blocks than slot
      // chunks need (empty ranges that only pad), and a single block.
      for (int64_t spb : {int64_t{1500}, int64_t{96}, s.num_slots()}) {
        auto f = moe::align::AlignLaunchConfig::choose(s, lim, AlignPath::Fused);
        f.rank_warps = warps;
        f.slots_per_block = spb;
        f.num_blocks = static_cast<int>((s.num_slots() + spb - 1) / spb) + (spb == 96 ? 3 : 0);
        cfgs.push_back(f);
      }
    }
    for (const auto& cfg : cfgs) {
      REQUIRE(cfg.invalid_reason(s, lim).empty());
      const auto got = moe::align::run_align_on_device(s, ids, map, cfg);
      const auto chk = moe::ref::compare_align(ref, got.sorted_token_ids, got.expert_ids, got.num_tokens_post_padded);
      INFO(describe(c, cfg.path), " warps=", cfg.rank_warps, " stage=", cfg.stage, " blocks=", cfg.num_blocks);
      INFO(chk.message);
      CHECK(chk.passed);
    }
  }
}

TEST_CASE("align gpu: covering subset of M x E x top_k x block_size") {
  const auto cases = covering_subset();
  MESSAGE("covering subset: " << cases.size() << " shapes");
  for (const Case& c : cases) run_both(c);
}

TEST_CASE("align gpu: every block size and top_k on a mid shape, both paths") {
  for (int32_t bs : kBlocks)
    for (int32_t k : kKs) run_both(Case{300, 256, k, bs, AlignIds::Softmax, 0.0, false, static_cast<uint64_t>(bs + k)});
}

TEST_CASE("align gpu: all tokens to one expert") {
  for (const Case& c : {Case{1, 1, 1, 16, AlignIds::OneExpert}, Case{4096, 256, 8, 64, AlignIds::OneExpert},
                        Case{65536, 128, 8, 16, AlignIds::OneExpert}, Case{131072, 4096, 64, 256, AlignIds::OneExpert},
                        Case{2256, 8, 2, 128, AlignIds::OneExpert, 0.3}})
    run_both(c);
}

TEST_CASE("align gpu: most experts empty") {
  for (const Case& c : {Case{3, 4096, 2, 256, AlignIds::FewExperts}, Case{4096, 4096, 8, 64, AlignIds::FewExperts},
                        Case{16384, 512, 4, 32, AlignIds::FewExperts, 0.2},
                        Case{256, 1024, 16, 16, AlignIds::Zipf}})
    run_both(c);
}

TEST_CASE("align gpu: expert_map with half the experts remote") {
  for (const Case& c : {Case{1, 8, 2, 16, AlignIds::Softmax, 0.0, true},
                        Case{256, 256, 8, 64, AlignIds::Softmax, 0.0, true},
                        Case{4096, 256, 8, 64, AlignIds::Softmax, 0.05, true},
                        Case{16384, 4096, 6, 128, AlignIds::Uniform, 0.0, true},
                        Case{65536, 384, 8, 256, AlignIds::Uniform, 0.1, true}})
    run_both(c);
}

TEST_CASE("align gpu: run-to-run and path-to-path bit-identical") {
  const AlignShape s{4096, 8, 256, 64};
  const auto ids = moe::ref::make_align_ids(s, AlignIds::Softmax, 7);
  const auto a = moe::align::run_align_on_device(s, ids);
  for (int rep = 0; rep < 3; ++rep) {
    const auto b = moe::align::run_align_on_device(s, ids);
    CHECK(b.sorted_token_ids == a.sorted_token_ids);
    CHECK(b.expert_ids == a.expert_ids);
    CHECK(b.num_tokens_post_padded == a.num_tokens_post_padded);
  }
  for (auto path : {AlignPath::SingleBlock, AlignPath::MultiBlock, AlignPath::Fused}) {
    const auto b = moe::align::run_align_on_device(s, ids, {}, path);
    CHECK(b.sorted_token_ids == a.sorted_token_ids);
    CHECK(b.expert_ids == a.expert_ids);
  }

  // Repeated launches on one workspace and stream (the ticket must be reset by
  // each launch), with forced configurations of different grid sizes.
  const auto lim = moe::align::AlignDeviceLimits::current();
  moe::gpu::Stream stream;
  moe::gpu::DeviceBuffer<int32_t> d_ids(ids.size()), sorted(static_cast<size_t>(moe::align::align_capacity(s))),
      eids(static_cast<size_t>(moe::align::align_max_blocks(s))), num(1);
  d_ids.upload(ids, stream.get());
  moe::align::AlignWorkspace ws;
  for (int64_t spb : {128, 1024, 4096, 32768, -128, -1024, -32768}) {  // negative: Fused
    auto cfg = moe::align::AlignLaunchConfig::choose(s, lim, spb > 0 ? AlignPath::MultiBlock : AlignPath::Fused);
    spb = spb > 0 ? spb : -spb;
    cfg.slots_per_block = spb;
    cfg.num_blocks = static_cast<int>((s.num_slots() + spb - 1) / spb);
    for (int rep = 0; rep < 2; ++rep) {
      sorted.poison(0xA5, stream.get());
      eids.poison(0xA5, stream.get());
      moe::align::moe_align_block_size(d_ids.data(), nullptr, s, {sorted.data(), eids.data(), num.data()}, ws,
                                       stream.get(), cfg);
      CAPTURE(spb);
      CHECK(sorted.download(stream.get()) == a.sorted_token_ids);
      CHECK(eids.download(stream.get()) == a.expert_ids);
      CHECK(ws.read_status(stream.get()) == 0);
    }
  }
}

TEST_CASE("sanitize: validation errors are thrown on the host, bad ids never fault") {
  // Host validation before any launch.
  auto bad_shape = [](AlignShape s, std::vector<int32_t> ids) {
    CHECK_THROWS_AS((void)moe::align::run_align_on_device(s, ids), moe::InputError);
  };
  bad_shape({2, 2, 4, 16}, {0, 1, 2, 4});
  bad_shape({2, 2, 4, 16}, {0, 1, -5, 3});
  bad_shape({0, 2, 4, 16}, {});
  bad_shape({2, 2, 4, 48}, {0, 1, 2, 3});
  bad_shape({1, 4, 2, 16}, {0, 1, 0, 1});
  bad_shape({1, 65, 4096, 16}, std::vector<int32_t>(65, 0));
  bad_shape({1, 1, 5000, 16}, {0});
  CHECK_THROWS_AS((void)moe::align::run_align_on_device(AlignShape{2, 2, 4, 16}, std::vector<int32_t>{0, 1, 2, 3},
                                                        std::vector<int32_t>{0, 1, 7, 2}),
                  moe::InputError);

  // Bypassing host validation: out-of-range ids and map entries are dropped on
  // the device, counted in the status word, and never read out of bounds.
  const AlignShape s{64, 4, 32, 16};
  std::vector<int32_t> ids = moe::ref::make_align_ids(s, AlignIds::Uniform, 5);
  std::vector<int32_t> clean = ids;
  const std::vector<std::pair<size_t, int32_t>> poke = {{3, 32}, {10, -7}, {77, 1 << 30}, {200, -2147483647 - 1}};
  for (auto [i, v] : poke) {
    ids[i] = v;
    clean[i] = -1;
  }
  std::vector<int32_t> map = moe::ref::make_half_remote_map(32, 9);
  map[static_cast<size_t>(ids[20])] = 1000;  // a map entry out of range, hit by slot 20 at least
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] == ids[20]) clean[i] = -1;
  std::vector<int32_t> clean_map = map;
  clean_map[static_cast<size_t>(ids[20])] = -1;
  const auto ref = moe::ref::expand_to_capacity(moe::ref::moe_align_block_size(s, clean, clean_map), s);
  int expected_bad = static_cast<int>(poke.size());
  for (size_t i = 0; i < ids.size(); ++i) expected_bad += ids[i] == ids[20];
  const auto lim = moe::align::AlignDeviceLimits::current();
  for (auto path : {AlignPath::SingleBlock, AlignPath::MultiBlock, AlignPath::Fused}) {
    moe::gpu::Stream stream;
    moe::gpu::DeviceBuffer<int32_t> d_ids(ids.size()), d_map(map.size()),
        sorted(static_cast<size_t>(moe::align::align_capacity(s))),
        eids(static_cast<size_t>(moe::align::align_max_blocks(s))), num(1);
    d_ids.upload(ids, stream.get());
    d_map.upload(map, stream.get());
    sorted.poison(0xA5, stream.get());
    eids.poison(0xA5, stream.get());
    auto cfg = moe::align::AlignLaunchConfig::choose(s, lim, path);
    if (path != AlignPath::SingleBlock) {  // several blocks
      cfg.slots_per_block = 64;
      cfg.num_blocks = 4;
    }
    moe::align::AlignWorkspace ws;
    moe::align::moe_align_block_size(d_ids.data(), d_map.data(), s, {sorted.data(), eids.data(), num.data()}, ws,
                                     stream.get(), cfg);
    CHECK(ws.read_status(stream.get()) == expected_bad);
    const auto chk = moe::ref::compare_align(ref, sorted.download(stream.get()), eids.download(stream.get()),
                                             num.download(stream.get())[0]);
    INFO(chk.message);
    CHECK(chk.passed);
    CHECK_THROWS_AS(moe::align::moe_align_block_size_checked(d_ids.data(), d_map.data(), s,
                                                             {sorted.data(), eids.data(), num.data()}, ws,
                                                             stream.get()),
                    moe::InputError);
  }

  // Launch configurations are validated too.
  auto cfg = moe::align::AlignLaunchConfig::choose(s, lim, AlignPath::SingleBlock);
  cfg.rank_warps = 1024 / lim.warp_size + 1;
  CHECK_FALSE(cfg.invalid_reason(s, lim).empty());
  const AlignShape big{16, 2, 4096, 16};
  auto cfg2 = moe::align::AlignLaunchConfig::choose(big, lim, AlignPath::MultiBlock);
  cfg2.rank_warps = 1024 / lim.warp_size;  // 32 x 4096 ints: far above any shared memory
  CHECK(cfg2.invalid_reason(big, lim).find("shared memory") != std::string::npos);
  cfg2 = moe::align::AlignLaunchConfig::choose(big, lim, AlignPath::MultiBlock);
  cfg2.num_blocks = 1;
  cfg2.slots_per_block = 8;  // does not cover 32 slots
  CHECK_FALSE(cfg2.invalid_reason(big, lim).empty());
  moe::align::AlignWorkspace ws;
  moe::gpu::DeviceBuffer<int32_t> dummy(64);
  CHECK_THROWS_AS(moe::align::moe_align_block_size(dummy.data(), nullptr, big, {dummy.data(), dummy.data(), dummy.data()},
                                                   ws, nullptr, cfg2),
                  moe::InputError);
}

TEST_CASE("align gpu: default configs of the model shapes fit and choose one launch for small M") {
  const auto lim = moe::align::AlignDeviceLimits::current();
  for (auto [E, k] : std::vector<std::pair<int32_t, int32_t>>{{256, 8}, {8, 2}, {128, 8}, {4096, 8}}) {
    for (int64_t M : {1, 16, 64, 256, 1024, 4096, 16384, 65536}) {
      for (int32_t bs : {64, 128}) {
        const AlignShape s{M, k, E, bs};
        const auto cfg = moe::align::AlignLaunchConfig::choose(s, lim);
        CAPTURE(M);
        CAPTURE(E);
        CHECK(cfg.invalid_reason(s, lim).empty());
        if (M <= 64 && E <= 256) CHECK(cfg.path == AlignPath::SingleBlock);  // one launch
        if (M == 1024 && E == 256 && k == 8) CHECK(cfg.path == AlignPath::Fused);  // one launch
      }
    }
  }
}

namespace moe {
KernelFamily make_moe_align_family();
}

TEST_CASE("align gpu: the verify family's quick cases pass (golden on CPU, kernels on GPU)") {
  moe::VerifyOptions o;
  o.gpu_available = true;
  o.quick = true;
  o.models = moe::load_model_table("configs/model_configs.json");
  const auto fam = moe::make_moe_align_family();
  const auto cases = fam.cases(o);
  int gpu = 0;
  for (const auto& vc : cases) {
    const auto r = vc.run();
    INFO(vc.name, ": ", r.message);
    CHECK(r.passed);
    gpu += vc.needs_gpu;
  }
  CHECK(gpu >= 10);
  MESSAGE("verify family quick: " << cases.size() << " cases, " << gpu << " on the GPU");
}
