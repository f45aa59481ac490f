// GPU tests of the routing kernels against the CPU references
// (reference/routing). Every run: fresh RNG inputs, outputs poisoned before
// each of two launches, ids compared exactly, weights within the documented
// tolerance, and the two launches bit-identical.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/routing/routing.hpp"
#include "moe/error.hpp"
#include "moe/gpu.hpp"
#include "moe/rng.hpp"
#include "reference/routing/routing_ref.hpp"
#include "harness/families/routing/routing_runner.hpp"

using namespace moe;
using namespace moe::ref::routing_run;
using routing::GroupedTopkConfig;
using routing::GroupedTopkParams;
using routing::Scoring;
using routing::SigmoidTop1Config;
using routing::SigmoidTop1Params;
using routing::SoftmaxTopkConfig;
using routing::SoftmaxTopkParams;
using routing::Top1Impl;

namespace {

uint64_t g_seed = 1000;

int g_runs = 0;

void expect(const RunResult& r) {
  ++g_runs;
  INFO(r.message);
  CHECK(r.check.passed);
  CHECK(r.deterministic);
  if (!r.passed()) MESSAGE(r.message);
}

int rand_int(uint64_t seed, int lo, int hi) {  // inclusive
  return lo + static_cast<int>(rng::bits32(seed, rng::Stream::Test, 0) % static_cast<uint32_t>(hi - lo + 1));
}

const std::vector<int> kExperts = {1, 2, 3, 8, 60, 64, 128, 160, 256, 384, 512};
const std::vector<int64_t> kTokens = {1, 2, 3, 127, 128, 129, 4097, 65536};

}  // namespace

// ============================================================== softmax top-k
TEST_CASE("softmax_topk: E x M matrix (fp32), k = min(E, 32) and a random k") {
  for (int E : kExperts) {
    for (int64_t M : kTokens) {
      if (M == 65536 && !(E == 8 || E == 128 || E == 256 || E == 512)) continue;
      const int kmax = std::min(E, 32);
      for (int variant = 0; variant < (M == 65536 ? 1 : 2); ++variant) {
        const uint64_t seed = ++g_seed;
        const int k = variant == 0 ? kmax : rand_int(seed, 1, kmax);
        SoftmaxTopkParams p{.tokens = M, .experts = E, .top_k = k, .dtype = DType::F32,
                            .renormalize = (seed & 1) != 0};
        expect(run_softmax_topk(p, {}, seed, Pattern::Normal));
      }
    }
  }
}

TEST_CASE("softmax_topk: bf16 and fp16 logits") {
  for (DType dt : {DType::BF16, DType::F16}) {
    for (int E : kExperts) {
      for (int64_t M : {int64_t{3}, int64_t{129}, int64_t{4097}}) {
        const uint64_t seed = ++g_seed;
        const int k = rand_int(seed, 1, std::min(E, 32));
        SoftmaxTopkParams p{.tokens = M, .experts = E, .top_k = k, .dtype = dt, .renormalize = (seed & 2) != 0};
        expect(run_softmax_topk(p, {}, seed, Pattern::Normal));
      }
    }
  }
}

TEST_CASE("softmax_topk: engineered ties (values on a 0.5 grid)") {
  for (DType dt : {DType::F32, DType::BF16, DType::F16}) {
    for (int E : {3, 8, 60, 128, 256, 512}) {
      const uint64_t seed = ++g_seed;
      SoftmaxTopkParams p{.tokens = 1000, .experts = E, .top_k = std::min(E, 32), .dtype = dt, .renormalize = true};
      expect(run_softmax_topk(p, {}, seed, Pattern::Ties));
      p.top_k = std::min(E, 8);
      p.renormalize = false;
      expect(run_softmax_topk(p, {}, seed + 7, Pattern::Ties));
    }
  }
}

TEST_CASE("softmax_topk: NaN / +-inf / -1e30 rows") {
  for (DType dt : {DType::F32, DType::BF16, DType::F16}) {
    for (int E : kExperts) {
      const uint64_t seed = ++g_seed;
      SoftmaxTopkParams p{.tokens = 203, .experts = E, .top_k = std::min(E, 32), .dtype = dt,
                          .renormalize = (seed & 1) != 0};
      expect(run_softmax_topk(p, {}, seed, Pattern::Specials));
      p.top_k = 1;
      expect(run_softmax_topk(p, {}, seed + 3, Pattern::Specials));
    }
  }
}

TEST_CASE("softmax_topk: every compiled lanes-per-row config and block size") {
  struct C {
    int E, lanes, threads;
  };
  const std::vector<C> cs = {{8, 1, 256},   {8, 2, 64},    {8, 4, 512},   {8, 8, 128},  {8, 16, 256},
                             {8, 32, 256},  {16, 1, 256},  {13, 1, 64},   {16, 2, 256}, {30, 4, 256},
                             {100, 16, 256}, {100, 32, 64}, {256, 32, 512}, {300, 32, 256}, {512, 32, 64},
                             {200, 32, 128}, {64, 8, 512}};
  for (const C& c : cs) {
    const uint64_t seed = ++g_seed;
    SoftmaxTopkParams p{.tokens = 777, .experts = c.E, .top_k = std::min(c.E, rand_int(seed, 1, 32)),
                        .dtype = DType::F32, .renormalize = true};
    expect(run_softmax_topk(p, {.lanes_per_row = c.lanes, .block_threads = c.threads}, seed, Pattern::Normal));
  }
}

TEST_CASE("softmax_topk: M = 0, invalid input rejected before any launch") {
  SoftmaxTopkParams p{.tokens = 0, .experts = 8, .top_k = 2};
  CHECK_NOTHROW(routing::softmax_topk(nullptr, nullptr, nullptr, p));
  p.tokens = 4;
  CHECK_THROWS_AS(routing::softmax_topk(nullptr, nullptr, nullptr, p), InputError);
  gpu::DeviceBuffer<float> x(32), w(8);
  gpu::DeviceBuffer<int32_t> ids(8);
  p.top_k = 9;
  CHECK_THROWS_AS(routing::softmax_topk(x.data(), w.data(), ids.data(), p), InputError);
  p.top_k = 2;
  CHECK_THROWS_AS(routing::softmax_topk(x.data(), w.data(), ids.data(), p, {.lanes_per_row = 5}), InputError);
  CHECK_THROWS_AS(routing::softmax_topk(x.data(), w.data(), ids.data(), p, {.block_threads = 1024}), InputError);
  MOE_GPU_CHECK(hipDeviceSynchronize());
  CHECK(hipGetLastError() == hipSuccess);
}

// ============================================================== grouped top-k
TEST_CASE("grouped_topk: DeepSeek-V3 (E=256, 8 groups, keep 4, k=8, sigmoid, bias, x2.5) over M") {
  for (int64_t M : kTokens) {
    const uint64_t seed = ++g_seed;
    GroupedTopkParams p{.tokens = M, .experts = 256, .n_group = 8, .topk_group = 4, .top_k = 8,
                        .scoring = Scoring::Sigmoid, .renormalize = true, .routed_scaling_factor = 2.5f};
    expect(run_grouped_topk(p, {}, seed, Pattern::Normal, 1));
  }
  for (DType dt : {DType::BF16, DType::F16}) {
    GroupedTopkParams p{.tokens = 4097, .experts = 256, .n_group = 8, .topk_group = 4, .top_k = 8,
                        .scoring = Scoring::Sigmoid, .renormalize = true, .routed_scaling_factor = 2.5f, .dtype = dt};
    expect(run_grouped_topk(p, {}, ++g_seed, Pattern::Normal, 1));
  }
}

TEST_CASE("grouped_topk: the bias changes the selection, and the kernel follows it") {
  const int64_t M = 512;
  GroupedTopkParams p{.tokens = M, .experts = 256, .n_group = 8, .topk_group = 4, .top_k = 8};
  std::vector<float> logits(static_cast<size_t>(M * 256)), bias(256);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = rng::normal(77, rng::Stream::Logits, i);
  for (int e = 0; e < 256; ++e) bias[static_cast<size_t>(e)] = rng::normal(77, rng::Stream::Bias, e);
  const auto a = ref::grouped_topk(logits, {}, p);
  const auto b = ref::grouped_topk(logits, bias, p);
  int64_t differ = 0;
  for (int64_t t = 0; t < M; ++t)
    differ += !std::equal(a.ids.begin() + t * 8, a.ids.begin() + t * 8 + 8, b.ids.begin() + t * 8);
  MESSAGE("rows whose selection the bias changes: " << differ << " of " << M);
  CHECK(differ > M / 2);
  for (int mode : {1, 2}) expect(run_grouped_topk(p, {}, ++g_seed, Pattern::Normal, mode));
}

TEST_CASE("grouped_topk: E x n_group x scoring, register and shared-memory group paths") {
  for (int E : kExperts) {
    std::vector<int> groups;
    for (int g = 1; g <= 32; ++g)
      if (E % g == 0) groups.push_back(g);
    std::vector<int> pick = {groups.front(), groups.back(), groups[groups.size() / 2]};
    std::sort(pick.begin(), pick.end());
    pick.erase(std::unique(pick.begin(), pick.end()), pick.end());
    for (int ng : pick) {
      for (Scoring sc : {Scoring::Sigmoid, Scoring::Softmax}) {
        const uint64_t seed = ++g_seed;
        const int tg = rand_int(seed, 1, ng);
        const int cand = tg * (E / ng);
        const int k = (seed & 1) ? std::min(32, cand) : rand_int(seed + 1, 1, std::min(32, cand));
        for (int64_t M : {int64_t{1}, int64_t{3}, int64_t{129}}) {
          GroupedTopkParams p{.tokens = M, .experts = E, .n_group = ng, .topk_group = tg, .top_k = k,
                              .scoring = sc, .renormalize = (seed & 2) != 0,
                              .routed_scaling_factor = (seed & 4) ? 2.5f : 1.0f};
          INFO("register_groups=" << GroupedTopkConfig::register_groups(p));
          expect(run_grouped_topk(p, {}, seed + static_cast<uint64_t>(M), Pattern::Normal,
                                  static_cast<int>(seed % 3)));
        }
      }
    }
  }
}

TEST_CASE("grouped_topk: k = E (one group, keep it) and k = 32") {
  for (int E : {1, 2, 3, 8, 32}) {
    GroupedTopkParams p{.tokens = 300, .experts = E, .n_group = 1, .topk_group = 1, .top_k = E};
    expect(run_grouped_topk(p, {}, ++g_seed, Pattern::Normal, 1));
  }
  GroupedTopkParams p{.tokens = 300, .experts = 512, .n_group = 16, .topk_group = 16, .top_k = 32,
                      .scoring = Scoring::Softmax};
  expect(run_grouped_topk(p, {}, ++g_seed, Pattern::Normal, 2));
}

TEST_CASE("grouped_topk: ties and NaN / inf rows") {
  for (DType dt : {DType::F32, DType::BF16, DType::F16}) {
    for (Scoring sc : {Scoring::Sigmoid, Scoring::Softmax}) {
      for (int bias : {0, 1}) {
        GroupedTopkParams p{.tokens = 1000, .experts = 256, .n_group = 8, .topk_group = 4, .top_k = 8,
                            .scoring = sc, .routed_scaling_factor = 2.5f, .dtype = dt};
        expect(run_grouped_topk(p, {}, ++g_seed, Pattern::Ties, bias));
        expect(run_grouped_topk(p, {}, ++g_seed, Pattern::Specials, bias));
        GroupedTopkParams q{.tokens = 333, .experts = 160, .n_group = 8, .topk_group = 3, .top_k = 6,
                            .scoring = sc, .dtype = dt};
        expect(run_grouped_topk(q, {.block_threads = 128}, ++g_seed, Pattern::Specials, bias));
      }
    }
  }
}

// ============================================================== sigmoid top-1
TEST_CASE("sigmoid_top1: Llama-4-Scout router (K=5120, E=16) over M, with and without shared expert") {
  for (int64_t M : {int64_t{1}, int64_t{2}, int64_t{3}, int64_t{127}, int64_t{128}, int64_t{129}, int64_t{4097}}) {
    SigmoidTop1Params p{.tokens = M, .hidden = 5120, .experts = 16, .dtype = DType::BF16,
                        .shared_expert = (M & 1) != 0};
    expect(run_sigmoid_top1(p, {}, ++g_seed, Pattern::Normal));
  }
  SigmoidTop1Params big{.tokens = 65536, .hidden = 1024, .experts = 16, .dtype = DType::BF16, .shared_expert = true};
  expect(run_sigmoid_top1(big, {}, ++g_seed, Pattern::Normal));
  SigmoidTop1Params f16{.tokens = 1000, .hidden = 5120, .experts = 16, .dtype = DType::F16};
  expect(run_sigmoid_top1(f16, {}, ++g_seed, Pattern::Normal));
}

TEST_CASE("sigmoid_top1: E, K, splits and both implementations") {
  const std::vector<int> Es = {1, 3, 8, 16, 60, 128, 160, 512};
  const std::vector<int64_t> Ks = {1, 7, 64, 100, 128, 1000, 5120, 16384};
  int i = 0;
  for (int E : Es) {
    for (int64_t K : Ks) {
      if ((i++ % 3) != 0 && !(E == 16 || K == 128)) continue;  // a diagonal sample of the grid
      for (Top1Impl impl : {Top1Impl::TensorCore, Top1Impl::Simt}) {
        const uint64_t seed = ++g_seed;
        const int64_t M = std::vector<int64_t>{1, 65, 129, 300}[seed % 4];
        const int splits = std::vector<int>{0, 1, 7}[(seed / 4) % 3];
        SigmoidTop1Params p{.tokens = M, .hidden = K, .experts = E,
                            .dtype = (seed & 1) ? DType::BF16 : DType::F16, .shared_expert = (seed & 2) != 0};
        expect(run_sigmoid_top1(p, {.impl = impl, .k_splits = splits}, seed, Pattern::Normal));
      }
    }
  }
}

TEST_CASE("sigmoid_top1: exact ties from duplicate expert columns resolve to the lower id") {
  for (Top1Impl impl : {Top1Impl::TensorCore, Top1Impl::Simt}) {
    for (int E : {16, 160}) {
      SigmoidTop1Params p{.tokens = 1000, .hidden = 512, .experts = E, .dtype = DType::BF16};
      expect(run_sigmoid_top1(p, {.impl = impl}, ++g_seed, Pattern::DupCols));
      expect(run_sigmoid_top1(p, {.impl = impl, .k_splits = 3}, ++g_seed, Pattern::DupCols));
    }
  }
}

TEST_CASE("sigmoid_top1: NaN and inf in x") {
  for (Top1Impl impl : {Top1Impl::TensorCore, Top1Impl::Simt}) {
    SigmoidTop1Params p{.tokens = 200, .hidden = 256, .experts = 16, .dtype = DType::BF16, .shared_expert = true};
    expect(run_sigmoid_top1(p, {.impl = impl}, ++g_seed, Pattern::Specials));
    p.dtype = DType::F16;
    expect(run_sigmoid_top1(p, {.impl = impl, .k_splits = 2}, ++g_seed, Pattern::Specials));
  }
}

TEST_CASE("sigmoid_top1: workspace and input validation") {
  SigmoidTop1Params p{.tokens = 5, .hidden = 5120, .experts = 16};
  const auto pl = routing::sigmoid_top1_plan(p);
  CHECK(pl.splits > 1);
  CHECK(pl.workspace_bytes > 0);
  gpu::DeviceBuffer<uint16_t> x(5 * 5120), w(5120 * 16);
  gpu::DeviceBuffer<float> ow(10);
  gpu::DeviceBuffer<int32_t> oid(10);
  CHECK_THROWS_AS(routing::sigmoid_top1(x.data(), w.data(), ow.data(), oid.data(), nullptr, 0, p), InputError);
  p.hidden = 20000;
  CHECK_THROWS_AS(routing::sigmoid_top1(x.data(), w.data(), ow.data(), oid.data(), nullptr, 0, p), InputError);
  p = {.tokens = 0, .hidden = 64, .experts = 16};
  CHECK_NOTHROW(routing::sigmoid_top1(nullptr, nullptr, nullptr, nullptr, nullptr, 0, p));
  MOE_GPU_CHECK(hipDeviceSynchronize());
}

// ============================================================== sanitizer subset
// Small shapes of every kernel and path (run under compute-sanitizer).
TEST_CASE("sanitize: small shapes of every kernel") {
  expect(run_softmax_topk({.tokens = 3, .experts = 60, .top_k = 5, .dtype = DType::BF16}, {}, 1, Pattern::Normal));
  expect(run_softmax_topk({.tokens = 5, .experts = 3, .top_k = 3, .dtype = DType::F16}, {}, 2, Pattern::Specials));
  expect(run_softmax_topk({.tokens = 33, .experts = 512, .top_k = 32, .renormalize = true}, {}, 3, Pattern::Ties));
  expect(run_softmax_topk({.tokens = 7, .experts = 8, .top_k = 2}, {}, 4, Pattern::Normal));
  expect(run_grouped_topk({.tokens = 3, .experts = 256, .n_group = 8, .topk_group = 4, .top_k = 8,
                           .routed_scaling_factor = 2.5f},
                          {}, 5, Pattern::Normal, 1));
  expect(run_grouped_topk({.tokens = 9, .experts = 160, .n_group = 8, .topk_group = 2, .top_k = 5,
                           .scoring = Scoring::Softmax, .dtype = DType::BF16},
                          {}, 6, Pattern::Specials, 2));
  expect(run_sigmoid_top1({.tokens = 3, .hidden = 5120, .experts = 16, .shared_expert = true}, {}, 7, Pattern::Normal));
  expect(run_sigmoid_top1({.tokens = 65, .hidden = 100, .experts = 160, .dtype = DType::F16}, {}, 8, Pattern::Normal));
  expect(run_sigmoid_top1({.tokens = 70, .hidden = 300, .experts = 7}, {.impl = Top1Impl::Simt, .k_splits = 2}, 9,
                          Pattern::Normal));
  MESSAGE("routing GPU runs so far: " << g_runs);
}
