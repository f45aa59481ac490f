// CPU tests of the moe_align reference and contract helpers: hand-computed cases,
// expert_map, masked ids, empty experts, the capacity bound, validation, and the
// golden vectors written by data/moe_align/make_golden.py.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <vector>

#include "kernels/moe_align/moe_align.hpp"
#include "moe/error.hpp"
#include "reference/moe_align/moe_align_ref.hpp"

using moe::align::AlignShape;
using moe::ref::AlignIds;

namespace {

std::vector<int32_t> rep(int32_t v, int n) { return std::vector<int32_t>(static_cast<size_t>(n), v); }

std::vector<int32_t> cat(std::initializer_list<std::vector<int32_t>> parts) {
  std::vector<int32_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// Properties every result must have, checked independently of the reference's
// construction: each kept slot exactly once, in its expert's segment, ascending;
// padding is the sentinel; segments are whole blocks in expert order.
void check_properties(const AlignShape& s, const std::vector<int32_t>& ids, const std::vector<int32_t>& map,
                      const moe::ref::AlignResult& r) {
  const int32_t sentinel = s.sentinel(), bs = s.block_size;
  REQUIRE(r.num_tokens_post_padded == static_cast<int32_t>(r.sorted_token_ids.size()));
  REQUIRE(r.sorted_token_ids.size() % static_cast<size_t>(bs) == 0);
  REQUIRE(r.expert_ids.size() * static_cast<size_t>(bs) == r.sorted_token_ids.size());
  CHECK(static_cast<int64_t>(r.sorted_token_ids.size()) <= moe::align::align_capacity(s));
  std::vector<int32_t> want_expert(ids.size(), -1);
  for (size_t i = 0; i < ids.size(); ++i) {
    int32_t e = ids[i];
    if (e >= 0 && !map.empty()) e = map[static_cast<size_t>(e)];
    want_expert[i] = e;
  }
  std::vector<int> seen(ids.size(), 0);
  int32_t prev_expert = -1, prev_slot = -1;
  for (size_t b = 0; b < r.expert_ids.size(); ++b) {
    const int32_t e = r.expert_ids[b];
    REQUIRE(e >= 0);
    REQUIRE(e >= prev_expert);
    if (e != prev_expert) prev_slot = -1;
    bool block_has_slot = false;
    for (int j = 0; j < bs; ++j) {
      const int32_t v = r.sorted_token_ids[b * static_cast<size_t>(bs) + static_cast<size_t>(j)];
      if (v == sentinel) {
        prev_slot = sentinel;  // padding only at the end of an expert's segment
        continue;
      }
      REQUIRE(v >= 0);
      REQUIRE(v < sentinel);
      REQUIRE(prev_slot != sentinel);
      REQUIRE(want_expert[static_cast<size_t>(v)] == e);
      REQUIRE(v > prev_slot);
      prev_slot = v;
      ++seen[static_cast<size_t>(v)];
      block_has_slot = true;
    }
    REQUIRE(block_has_slot);  // no all-padding block: experts with no slots get no blocks
    prev_expert = e;
  }
  for (size_t i = 0; i < ids.size(); ++i) REQUIRE(seen[i] == (want_expert[i] >= 0 ? 1 : 0));
}

}  // namespace

TEST_CASE("moe_align ref: worked example of the header (M=3, top_k=2, E=4, block 16)") {
  const AlignShape s{3, 2, 4, 16};
  const std::vector<int32_t> ids = {2, 0, 2, 3, -1, 2};
  const auto r = moe::ref::moe_align_block_size(s, ids);
  const int32_t S = 6;
  CHECK(r.sorted_token_ids == cat({{1}, rep(S, 15), {0, 2, 5}, rep(S, 13), {3}, rep(S, 15)}));
  CHECK(r.expert_ids == std::vector<int32_t>{0, 2, 3});
  CHECK(r.num_tokens_post_padded == 48);
  CHECK(moe::align::align_capacity(s) == 64);
  CHECK(moe::align::align_max_blocks(s) == 4);
  const auto f = moe::ref::expand_to_capacity(r, s);
  CHECK(f.sorted_token_ids == cat({r.sorted_token_ids, rep(S, 16)}));
  CHECK(f.expert_ids == std::vector<int32_t>{0, 2, 3, -1});

  // Same ids, experts 2 and 3 local (as 0 and 1), 0 and 1 remote.
  const std::vector<int32_t> map = {-1, -1, 0, 1};
  const auto m = moe::ref::moe_align_block_size(s, ids, map);
  CHECK(m.sorted_token_ids == cat({{0, 2, 5}, rep(S, 13), {3}, rep(S, 15)}));
  CHECK(m.expert_ids == std::vector<int32_t>{0, 1});
  CHECK(m.num_tokens_post_padded == 32);
  // The legacy positional overload is the same function.
  const auto m2 = moe::ref::moe_align_block_size(ids, 3, 2, 4, 16, map);
  CHECK(m2.sorted_token_ids == m.sorted_token_ids);
}

TEST_CASE("moe_align ref: exact multiple of block_size needs no padding; one more slot opens a block") {
  const AlignShape s{8, 2, 2, 16};  // 16 slots
  std::vector<int32_t> ids(16, 1);
  auto r = moe::ref::moe_align_block_size(s, ids);
  std::vector<int32_t> want(16);
  for (int i = 0; i < 16; ++i) want[static_cast<size_t>(i)] = i;
  CHECK(r.sorted_token_ids == want);
  CHECK(r.expert_ids == std::vector<int32_t>{1});
  ids[7] = 0;  // slot 7 to expert 0: expert 0 gets a block of 1 + 15 padding
  r = moe::ref::moe_align_block_size(s, ids);
  CHECK(r.num_tokens_post_padded == 32);
  CHECK(r.sorted_token_ids[0] == 7);
  CHECK(r.sorted_token_ids[1] == 16);
  CHECK(r.expert_ids == std::vector<int32_t>{0, 1});
  CHECK(r.sorted_token_ids[16 + 7] == 8);  // expert 1 skips slot 7
  CHECK(r.sorted_token_ids[31] == 16);
}

TEST_CASE("moe_align ref: masked ids, all masked, all remote") {
  const AlignShape s{4, 2, 8, 16};
  std::vector<int32_t> ids = {-1, 3, 3, -1, -1, -1, 7, 3};
  auto r = moe::ref::moe_align_block_size(s, ids);
  CHECK(r.sorted_token_ids == cat({{1, 2, 7}, rep(8, 13), {6}, rep(8, 15)}));
  CHECK(r.expert_ids == std::vector<int32_t>{3, 7});
  check_properties(s, ids, {}, r);

  std::fill(ids.begin(), ids.end(), -1);
  r = moe::ref::moe_align_block_size(s, ids);
  CHECK(r.num_tokens_post_padded == 0);
  CHECK(r.sorted_token_ids.empty());
  CHECK(r.expert_ids.empty());
  const auto f = moe::ref::expand_to_capacity(r, s);
  CHECK(f.sorted_token_ids == rep(8, static_cast<int>(moe::align::align_capacity(s))));
  CHECK(f.expert_ids == rep(-1, static_cast<int>(moe::align::align_max_blocks(s))));

  ids = {0, 1, 2, 3, 4, 5, 6, 7};
  r = moe::ref::moe_align_block_size(s, ids, rep(-1, 8));
  CHECK(r.num_tokens_post_padded == 0);
}

TEST_CASE("moe_align ref: E=1, M=1, top_k=E, empty experts get no blocks") {
  {
    const AlignShape s{5, 1, 1, 16};
    const std::vector<int32_t> ids(5, 0);
    const auto r = moe::ref::moe_align_block_size(s, ids);
    CHECK(r.sorted_token_ids == cat({{0, 1, 2, 3, 4}, rep(5, 11)}));
    CHECK(r.expert_ids == std::vector<int32_t>{0});
  }
  {
    const AlignShape s{1, 4, 4, 32};
    const std::vector<int32_t> ids = {3, 1, 0, 2};
    const auto r = moe::ref::moe_align_block_size(s, ids);
    CHECK(r.expert_ids == std::vector<int32_t>{0, 1, 2, 3});
    CHECK(r.sorted_token_ids[0] == 2);
    CHECK(r.sorted_token_ids[32] == 1);
    CHECK(r.sorted_token_ids[64] == 3);
    CHECK(r.sorted_token_ids[96] == 0);
    CHECK(r.num_tokens_post_padded == 128);
    CHECK(moe::align::align_capacity(s) == 128);  // n < E... here n == E: every slot its own block
  }
  {
    const AlignShape s{64, 2, 256, 64};
    const auto ids = moe::ref::make_align_ids(s, AlignIds::FewExperts, 3);
    const auto r = moe::ref::moe_align_block_size(s, ids);
    for (int32_t e : r.expert_ids) CHECK((e == 0 || e == 128 || e == 255));
    check_properties(s, ids, {}, r);
  }
}

TEST_CASE("moe_align ref: capacity formula equals the issue's bound and is attained") {
  for (int64_t M : {1, 2, 3, 7, 16, 100, 4096}) {
    for (int32_t E : {1, 2, 8, 64, 257, 4096}) {
      for (int32_t k : {1, 2, 8, 64}) {
        if (k > E) continue;
        for (int32_t bs : {16, 64, 256}) {
          const AlignShape s{M, k, E, bs};
          const int64_t n = M * k;
          const int64_t issue = std::min<int64_t>(n + int64_t{E} * (bs - 1), n * bs);
          const int64_t cap = moe::align::align_capacity(s);
          CAPTURE(M);
          CAPTURE(E);
          CAPTURE(k);
          CAPTURE(bs);
          CHECK(cap % bs == 0);
          CHECK(cap <= issue);
          CHECK(cap > issue - bs);  // the issue's bound rounded down to whole blocks
          CHECK(moe::align::align_max_blocks(s) * bs == cap);
        }
      }
    }
  }
  // Attained: nz = min(E, n) experts each with 1 (mod bs) slots, the rest of the
  // slots added to expert 0 in whole blocks, the remainder (< bs) to expert 0 too.
  for (const auto& shape : std::vector<std::tuple<int64_t, int32_t, int32_t, int32_t>>{
           {3, 2, 4, 16}, {1, 8, 256, 64}, {100, 8, 256, 64}, {4096, 8, 256, 64}, {37, 3, 5, 16}, {9, 1, 4096, 256}}) {
    const int64_t M = std::get<0>(shape);  // named, not bound: doctest's CAPTURE captures them
    const int32_t k = std::get<1>(shape), E = std::get<2>(shape), bs = std::get<3>(shape);
    const AlignShape s{M, k, E, bs};
    const int64_t n = s.num_slots();
    const int64_t nz = std::min<int64_t>(E, n);
    std::vector<int32_t> ids(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) ids[static_cast<size_t>(i)] = i < nz ? static_cast<int32_t>(i) : 0;
    // Expert 0 holds 1 + (n - nz) slots: ceil((1 + q*bs + r)/bs) = 1 + q blocks with r < bs.
    const auto r = moe::ref::moe_align_block_size(s, ids);
    CAPTURE(M);
    CAPTURE(E);
    CHECK(r.num_tokens_post_padded == moe::align::align_capacity(s));
    check_properties(s, ids, {}, r);
  }
  // Never exceeded on random and skewed inputs.
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const AlignShape s{static_cast<int64_t>(1 + seed * 37 % 300), static_cast<int32_t>(1 + seed % 8), 16, 16};
    for (auto kind : {AlignIds::Uniform, AlignIds::Zipf, AlignIds::OneExpert, AlignIds::FewExperts}) {
      const auto ids = moe::ref::make_align_ids(s, kind, seed, seed % 3 == 0 ? 0.2 : 0.0);
      const auto r = moe::ref::moe_align_block_size(s, ids);
      check_properties(s, ids, {}, r);
    }
  }
}

TEST_CASE("moe_align ref: random cases with and without a half-remote expert_map") {
  for (uint64_t seed = 0; seed < 12; ++seed) {
    const int32_t E = std::vector<int32_t>{1, 2, 8, 32, 160, 257}[seed % 6];
    const int32_t k = std::min<int32_t>(E, std::vector<int32_t>{1, 2, 6, 8}[seed % 4]);
    const AlignShape s{static_cast<int64_t>(1 + (seed * 97) % 513), k, E, 16 << (seed % 5)};
    const auto ids = moe::ref::make_align_ids(s, seed % 2 ? AlignIds::Softmax : AlignIds::Uniform, seed, 0.05);
    check_properties(s, ids, {}, moe::ref::moe_align_block_size(s, ids));
    const auto map = moe::ref::make_half_remote_map(E, seed);
    const auto r = moe::ref::moe_align_block_size(s, ids, map);
    check_properties(s, ids, map, r);
    // The map path equals: replace ids by their local ids (-1 when remote), no map.
    std::vector<int32_t> local(ids);
    for (auto& v : local)
      if (v >= 0) v = map[static_cast<size_t>(v)];
    const auto r2 = moe::ref::moe_align_block_size(s, local);
    CHECK(r2.sorted_token_ids == r.sorted_token_ids);
    CHECK(r2.expert_ids == r.expert_ids);
  }
}

TEST_CASE("moe_align ref: validation errors") {
  const std::vector<int32_t> ok = {0, 1, 2, 3};
  auto bad = [](AlignShape s, std::vector<int32_t> ids, std::vector<int32_t> map = {}) {
    CHECK_THROWS_AS((void)moe::ref::moe_align_block_size(s, ids, map), moe::InputError);
  };
  CHECK_NOTHROW((void)moe::ref::moe_align_block_size(AlignShape{2, 2, 4, 16}, ok));
  bad({2, 2, 4, 16}, {0, 1, 2, 4});                       // id == E
  bad({2, 2, 4, 16}, {0, 1, -2, 3});                      // id < -1
  bad({2, 2, 4, 16}, {0, 1, 2});                          // size mismatch
  bad({0, 2, 4, 16}, {});                                 // M = 0
  bad({2, 2, 4, 24}, ok);                                 // not a power of two
  bad({2, 2, 4, 8}, ok);                                  // below 16
  bad({2, 2, 4, 512}, ok);                                // above 256
  bad({1, 4, 2, 16}, ok);                                 // top_k > E
  bad({1, 65, 4096, 16}, rep(0, 65));                     // top_k > 64
  bad({1, 1, 4097, 16}, {0});                             // E > 4096
  bad({1, 1, 0, 16}, {0});                                // E = 0
  bad({2, 2, 4, 16}, ok, {0, 1, 2});                      // map size
  bad({2, 2, 4, 16}, ok, {0, 1, 4, -1});                  // map entry == E
  bad({2, 2, 4, 16}, ok, {0, -2, 1, 2});                  // map entry < -1
  bad({int64_t{1} << 26, 64, 4096, 16}, {});              // M*top_k beyond int32
  try {
    (void)moe::ref::moe_align_block_size(AlignShape{2, 2, 4, 16}, std::vector<int32_t>{0, 1, 9, 3});
  } catch (const moe::InputError& e) {
    const std::string msg = e.what();
    CHECK(msg.find("topk_ids[2]") != std::string::npos);
    CHECK(msg.find('\n') == std::string::npos);
  }
}

TEST_CASE("moe_align ref: golden vectors from data/moe_align (independent implementation)") {
  const auto cases = moe::ref::load_align_golden("data");
  REQUIRE(cases.size() >= 10);
  int errors = 0, checked = 0;
  for (const auto& c : cases) {
    CAPTURE(c.file);
    const auto g = moe::ref::check_align_golden(c);
    INFO(g.message);
    CHECK(g.passed);
    errors += c.expect_error;
    ++checked;
  }
  CHECK(errors >= 2);
  MESSAGE("golden cases checked: " << checked << " (" << errors << " invalid-input cases), generator "
                                   << cases.front().generator);
}
