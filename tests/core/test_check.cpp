// check.hpp: the tolerance checker must catch what a broken kernel produces:
// NaN, an element never written (poisoned NaN), a shifted vector, a wrong size;
// and pass identical or within-tolerance data.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "moe/check.hpp"
#include "moe/dtype.hpp"
#include "moe/error.hpp"
#include "moe/json_numbers.hpp"
#include "moe/rng.hpp"

namespace {

std::vector<float> randn(size_t n, uint64_t seed) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = moe::rng::normal(seed, moe::rng::Stream::Test, i);
  return v;
}

// What DeviceBuffer::poison(0xFF) leaves in a float.
float poisoned() { return moe::bits_f32(0xFFFFFFFFu); }

const moe::Tolerance kBf16{1e-2, 1e-2, 1e-2};

bool json_ok(const moe::CheckResult& r) {
  const std::string s = r.to_json().dump();
  // Strict parse (no NaN/Infinity literals allowed) and no such text at all.
  const auto back = nlohmann::json::parse(s);
  return s.find("NaN") == std::string::npos && s.find("Infinity") == std::string::npos &&
         back.at("passed").get<bool>() == r.passed && back.at("count").get<int64_t>() == r.count;
}

}  // namespace

TEST_CASE("check_close: identical data passes with zero error") {
  const auto ref = randn(4097, 1);
  const auto r = moe::check_close(ref, ref, moe::Tolerance{});
  CHECK(r.passed);
  CHECK(r.count == 4097);
  CHECK(r.rel_l2 == 0);
  CHECK(r.max_abs == 0);
  CHECK(r.n_outside == 0);
  CHECK(r.first_mismatches.empty());
  CHECK(r.message.rfind("ok", 0) == 0);
  CHECK(json_ok(r));
}

TEST_CASE("check_close: data rounded to bf16 passes a bf16 tolerance") {
  const auto ref = randn(10000, 2);
  std::vector<float> out(ref.size());
  for (size_t i = 0; i < ref.size(); ++i) out[i] = moe::round_to(moe::DType::BF16, ref[i]);
  const auto r = moe::check_close(out, ref, kBf16);
  CHECK(r.passed);
  CHECK(r.max_rel <= 1.0 / 256 + 1e-9);  // RNE: at most half an ulp, u = 2^-8
  CHECK(r.rel_l2 > 0);
  CHECK(r.rel_l2 < 1.0 / 256);
}

TEST_CASE("check_close: the elementwise bound is atol + rtol*|ref|, inclusive") {
  const std::vector<float> ref = {1.0f, -2.0f, 0.0f};
  const moe::Tolerance t{0.5, 0.25, 1.0};
  // Deviations exactly at the bound pass: 0.5 + 0.25*|ref|.
  CHECK(moe::check_close(std::vector<float>{1.75f, -3.0f, 0.5f}, ref, t).passed);
  // Just beyond fails, and the first offending index is listed.
  const auto r = moe::check_close(std::vector<float>{1.75f, -3.01f, 0.5f}, ref, t);
  CHECK_FALSE(r.passed);
  CHECK(r.n_outside == 1);
  REQUIRE(r.first_mismatches.size() == 1);
  CHECK(r.first_mismatches[0].index == 1);
  CHECK(r.first_mismatches[0].got == doctest::Approx(-3.01));
  CHECK(r.first_mismatches[0].expected == -2.0);
  CHECK(r.message.find("[1]") != std::string::npos);
}

TEST_CASE("check_close: relative L2 limit applies on its own") {
  const auto ref = randn(1000, 3);
  std::vector<float> out(ref);
  for (auto& x : out) x *= 1.009f;  // within rtol 1e-2 everywhere, rel_l2 = 9e-3
  CHECK(moe::check_close(out, ref, moe::Tolerance{0, 1e-2, 1e-2}).passed);
  const auto r = moe::check_close(out, ref, moe::Tolerance{0, 1e-2, 5e-3});
  CHECK_FALSE(r.passed);
  CHECK(r.n_outside == 0);
  CHECK(r.rel_l2 == doctest::Approx(0.009).epsilon(1e-3));
}

TEST_CASE("check_close: a NaN where the reference is finite always fails") {
  const auto ref = randn(512, 4);
  std::vector<float> out(ref);
  out[300] = std::numeric_limits<float>::quiet_NaN();
  // Even with a tolerance that accepts anything finite.
  const auto r = moe::check_close(out, ref, moe::Tolerance{1e30, 1e30, 1e30});
  CHECK_FALSE(r.passed);
  CHECK(r.n_nonfinite == 1);
  REQUIRE(!r.first_mismatches.empty());
  CHECK(r.first_mismatches[0].index == 300);
  CHECK(std::isnan(r.first_mismatches[0].got));
  CHECK(json_ok(r));
  // Inf as well.
  out[300] = std::numeric_limits<float>::infinity();
  CHECK_FALSE(moe::check_close(out, ref, moe::Tolerance{1e30, 1e30, 1e30}).passed);
}

TEST_CASE("check_close: an element the kernel never wrote (poison) fails") {
  const auto ref = randn(1 << 16, 5);
  std::vector<float> out(ref.size(), poisoned());  // poisoned, then "the kernel" writes all but one
  for (size_t i = 0; i < ref.size(); ++i)
    if (i != 40000) out[i] = ref[i];
  REQUIRE(std::isnan(out[40000]));
  const auto r = moe::check_close(out, ref, kBf16);
  CHECK_FALSE(r.passed);
  CHECK(r.n_nonfinite == 1);
  CHECK(r.first_mismatches.at(0).index == 40000);
  CHECK(json_ok(r));
  // The last element too (an off-by-one loop bound).
  std::vector<float> out2(ref);
  out2.back() = poisoned();
  CHECK_FALSE(moe::check_close(out2, ref, kBf16).passed);
}

TEST_CASE("check_close: a vector shifted by one element fails") {
  const auto ref = randn(2048, 6);
  std::vector<float> left(ref.size()), right(ref.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    left[i] = ref[(i + 1) % ref.size()];
    right[i] = ref[(i + ref.size() - 1) % ref.size()];
  }
  for (const auto* out : {&left, &right}) {
    const auto r = moe::check_close(*out, ref, kBf16);
    CHECK_FALSE(r.passed);
    CHECK(r.n_outside > 1000);
    CHECK(r.rel_l2 > 1.0);  // uncorrelated: ~sqrt(2)
    CHECK(r.first_mismatches.size() == moe::CheckResult::kMaxListed);
    // Listed in index order.
    for (size_t i = 1; i < r.first_mismatches.size(); ++i)
      CHECK(r.first_mismatches[i - 1].index < r.first_mismatches[i].index);
  }
  // Shifting a smooth signal by one still fails a tight tolerance.
  std::vector<float> ramp(1000), ramp_shift(1000);
  for (int i = 0; i < 1000; ++i) {
    ramp[i] = std::sin(i * 0.01f);
    ramp_shift[i] = std::sin((i + 1) * 0.01f);
  }
  CHECK_FALSE(moe::check_close(ramp_shift, ramp, moe::Tolerance{1e-3, 1e-3, 1e-3}).passed);
}

TEST_CASE("check_close: size mismatch fails") {
  const auto ref = randn(100, 7);
  std::vector<float> out(ref.begin(), ref.end() - 1);
  const auto r = moe::check_close(out, ref, kBf16);
  CHECK_FALSE(r.passed);
  CHECK(r.message.find("size") != std::string::npos);
  std::vector<float> longer(ref);
  longer.push_back(0);
  CHECK_FALSE(moe::check_close(longer, ref, kBf16).passed);
}

TEST_CASE("check_close: non-finite references must be matched in class") {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> ref = {1.0f, inf, -inf, nan};
  CHECK(moe::check_close(std::vector<float>{1.0f, inf, -inf, nan}, ref, kBf16).passed);
  CHECK(moe::check_close(std::vector<float>{1.0f, inf, -inf, poisoned()}, ref, kBf16).passed);
  CHECK_FALSE(moe::check_close(std::vector<float>{1.0f, -inf, -inf, nan}, ref, kBf16).passed);
  CHECK_FALSE(moe::check_close(std::vector<float>{1.0f, 3e38f, -inf, nan}, ref, kBf16).passed);
  CHECK_FALSE(moe::check_close(std::vector<float>{1.0f, inf, -inf, 0.0f}, ref, kBf16).passed);
  const auto r = moe::check_close(std::vector<float>{1.0f, nan, -inf, inf}, ref, kBf16);
  CHECK(r.n_nonfinite == 2);
  CHECK(json_ok(r));  // NaN/inf written as strings, JSON stays valid
  const auto j = r.to_json();
  CHECK(j["first_mismatches"][0]["got"] == "nan");
  CHECK(j["first_mismatches"][0]["expected"] == "inf");
  CHECK(j["first_mismatches"][1]["got"] == "inf");
}

TEST_CASE("check_close: the list of mismatches is capped") {
  const auto ref = randn(100, 8);
  std::vector<float> out(ref.size(), poisoned());
  const auto r = moe::check_close(out, ref, kBf16);
  CHECK(r.n_nonfinite == 100);
  CHECK(r.first_mismatches.size() == moe::CheckResult::kMaxListed);
  CHECK(r.message.find('\n') == std::string::npos);  // one line
  CHECK(json_ok(r));
}

TEST_CASE("check_exact: integers must match exactly") {
  std::vector<int32_t> ref(1000);
  for (int i = 0; i < 1000; ++i) ref[i] = static_cast<int32_t>(moe::rng::bits32(1, moe::rng::Stream::Test, i) % 97);
  CHECK(moe::check_exact(ref, ref).passed);
  auto out = ref;
  out[999] = -1;  // poisoned int32 (0xFFFFFFFF) left unwritten
  auto r = moe::check_exact(out, ref);
  CHECK_FALSE(r.passed);
  CHECK(r.n_outside == 1);
  CHECK(r.first_mismatches.at(0).index == 999);
  CHECK(r.first_mismatches.at(0).got == -1);
  // Shift by one.
  std::vector<int32_t> shifted(ref.begin() + 1, ref.end());
  shifted.push_back(ref.front());
  CHECK_FALSE(moe::check_exact(shifted, ref).passed);
  // Size.
  std::vector<int32_t> shorter(ref.begin(), ref.end() - 1);
  CHECK_FALSE(moe::check_exact(shorter, ref).passed);
  CHECK(json_ok(moe::check_exact(shorter, ref)));
}

TEST_CASE("check_same_sets: order within a group is free, across groups it is not") {
  const std::vector<int32_t> ref = {3, 1, 2, /**/ 7, 7, 9, /**/ 0, 4, 5};
  const std::vector<int32_t> perm = {1, 2, 3, /**/ 9, 7, 7, /**/ 5, 0, 4};
  CHECK(moe::check_same_sets(perm, ref, 3).passed);
  CHECK_FALSE(moe::check_exact(perm, ref).passed);  // the same data fails exact comparison
  // An element swapped between groups: both groups differ.
  const std::vector<int32_t> cross = {3, 1, 7, /**/ 2, 7, 9, /**/ 0, 4, 5};
  const auto r = moe::check_same_sets(cross, ref, 3);
  CHECK_FALSE(r.passed);
  CHECK(r.n_outside == 2);
  REQUIRE(!r.first_mismatches.empty());
  CHECK(r.first_mismatches[0].index < 3);
  // Multisets: {7,7,9} is not {7,9,9}.
  const std::vector<int32_t> dup = {3, 1, 2, /**/ 7, 9, 9, /**/ 0, 4, 5};
  CHECK_FALSE(moe::check_same_sets(dup, ref, 3).passed);
  // One group of everything, and groups of one (= exact).
  CHECK(moe::check_same_sets(perm, ref, 9).passed);
  CHECK_FALSE(moe::check_same_sets(perm, ref, 1).passed);
  CHECK(moe::check_same_sets(ref, ref, 1).passed);
  // Sizes: mismatch, group not dividing the length, non-positive group.
  CHECK_FALSE(moe::check_same_sets(std::vector<int32_t>(ref.begin(), ref.end() - 1), ref, 3).passed);
  CHECK_FALSE(moe::check_same_sets(ref, ref, 4).passed);
  CHECK_FALSE(moe::check_same_sets(ref, ref, 0).passed);
  CHECK_FALSE(moe::check_same_sets(ref, ref, -3).passed);
  CHECK(json_ok(r));
}

TEST_CASE("check: JSON output carries the metrics and no NaN literal") {
  const auto ref = randn(64, 9);
  std::vector<float> out(ref);
  out[3] = std::numeric_limits<float>::quiet_NaN();
  out[5] += 1.0f;
  const auto r = moe::check_close(out, ref, kBf16);
  const auto j = nlohmann::json::parse(r.to_json().dump());
  for (const char* key : {"passed", "count", "rel_l2", "max_abs", "max_rel", "n_outside", "n_nonfinite", "message",
                          "first_mismatches"})
    CHECK(j.contains(key));
  CHECK(j["passed"] == false);
  CHECK(j["n_nonfinite"] == 1);
  CHECK(j["n_outside"] == 1);
  CHECK(j["first_mismatches"].size() == 2);
  CHECK(j["first_mismatches"][0]["index"] == 3);
  CHECK(j["first_mismatches"][0]["got"] == "nan");
  CHECK(j["first_mismatches"][1]["index"] == 5);
  CHECK(j["first_mismatches"][1]["got"].is_number());
}

TEST_CASE("margins: element and rel-L2 margins, the worst element, one JSON vocabulary") {
  // bounds 0.01 + 0.1|want| = {0.11, 0.21, 0.41}; errors {0.05, 0, 0.2}
  const std::vector<float> want{1.0f, 2.0f, 4.0f}, got{1.05f, 2.0f, 4.2f};
  const moe::Tolerance tol{0.01, 0.1, 1.0};
  const auto r = moe::check_close(got, want, tol);
  CHECK(r.passed);
  CHECK(r.worst.index == 2);  // 0.2/0.41 = 0.488 > 0.05/0.11 = 0.4545
  CHECK(r.worst.got == doctest::Approx(4.2));
  CHECK(r.worst.want == 4.0);
  CHECK(r.worst.bound == doctest::Approx(0.41));
  CHECK(r.element_margin == doctest::Approx(0.2 / 0.41).epsilon(1e-5));
  CHECK(r.l2_margin == doctest::Approx(r.rel_l2 / 1.0));
  CHECK(r.margin() == doctest::Approx(0.2 / 0.41).epsilon(1e-5));
  const auto j = r.to_json();
  CHECK(j.at("tolerance").at("atol") == 0.01);
  CHECK(j.at("tolerance").at("rtol") == 0.1);
  CHECK(j.at("tolerance").at("max_rel_l2") == 1.0);
  CHECK(j.at("worst").at("index") == 2);
  CHECK(j.at("margin").get<double>() == doctest::Approx(r.margin()));
  CHECK(j.at("l2_margin").get<double>() == doctest::Approx(r.l2_margin));
  CHECK(json_ok(r));

  // Just outside: margin > 1 and the check fails, naming the same element.
  const std::vector<float> bad{1.0f, 2.0f, 4.5f};
  const auto f = moe::check_close(bad, want, tol);
  CHECK_FALSE(f.passed);
  CHECK(f.worst.index == 2);
  CHECK(f.margin() > 1.0);
  CHECK(f.margin() == doctest::Approx(0.5 / 0.41).epsilon(1e-5));
}

TEST_CASE("margins: the rel-L2 limit can dominate; a NaN output has an infinite margin") {
  const std::vector<float> want{1.0f, 1.0f, 1.0f, 1.0f}, got{1.01f, 1.01f, 1.01f, 1.01f};
  const auto r = moe::check_close(got, want, moe::Tolerance{1.0, 0.0, 0.005});
  CHECK_FALSE(r.passed);
  CHECK(r.element_margin < 0.02);
  CHECK(r.l2_margin == doctest::Approx(0.01 / 0.005).epsilon(1e-4));
  CHECK(r.margin() == r.l2_margin);
  std::vector<float> nan_out = want;
  nan_out[3] = poisoned();
  const auto n = moe::check_close(nan_out, want, moe::Tolerance{1.0, 1.0, 1.0});
  CHECK_FALSE(n.passed);
  CHECK(std::isinf(n.margin()));
  CHECK(n.worst.index == 3);
  CHECK(n.to_json().at("margin") == "inf");
  CHECK(json_ok(n));
}

TEST_CASE("margins: exact comparisons have zero bounds (margin 0 or inf); per-element bounds") {
  const std::vector<int32_t> a{1, 2, 3}, b{1, 5, 3};
  const auto same = moe::check_exact(a, a);
  CHECK(same.margin() == 0);
  CHECK(same.to_json().at("tolerance").at("atol") == 0);
  const auto diff = moe::check_exact(b, a);
  CHECK(std::isinf(diff.margin()));
  CHECK(diff.worst.index == 1);
  CHECK(diff.worst.got == 5);
  CHECK(diff.worst.want == 2);
  const std::vector<double> want{1.0, -2.0}, got{1.1, -2.3}, bound{0.2, 0.2};
  const auto w = moe::check_within(got, want, bound, 1.0, "quant error model");
  CHECK_FALSE(w.passed);
  CHECK(w.worst.index == 1);
  CHECK(w.element_margin == doctest::Approx(1.5));
  CHECK(w.to_json().at("tolerance").at("bound_rule") == "quant error model");
  const auto ok = moe::check_within(want, want, bound, 0.0, "zero");
  CHECK(ok.passed);
  CHECK(ok.margin() == 0);
}

TEST_CASE("json numbers: a golden document's floats must convert without undefined behaviour") {
  const auto doc = nlohmann::json::parse(R"({"M": 5, "logits": [0.5, -8.25], "cases": [{"x": 1e34}]})");
  CHECK_THROWS_WITH_AS(moe::require_bounded_numbers(doc, "g.json"), doctest::Contains("g.json: /cases/0/x: the number"),
                       moe::InputError);
  const auto ok = nlohmann::json::parse(R"({"M": 9007199254740993, "w": [1.5, -2147483648.0], "s": "1e99"})");
  CHECK_NOTHROW(moe::require_bounded_numbers(ok, "ok.json"));  // integers and strings are not floats
  CHECK_THROWS_AS(moe::require_bounded_numbers(ok, "ok.json", 1.0), moe::InputError);
}

TEST_CASE("json numbers: integer fields are checked before the conversion") {
  using moe::json_integer;
  using moe::json_integers;
  const auto j = nlohmann::json::parse(
      R"({"u": 4294967295, "neg": -3, "f": -3.21, "big": 9007199254740993, "s": "7", "a": [0, 1, 255], "b": [1, -3.2]})");
  CHECK(json_integer<uint32_t>(j["u"], "u") == 4294967295u);
  CHECK(json_integer<int32_t>(j["neg"], "neg") == -3);
  CHECK(json_integer<int64_t>(j["big"], "big") == 9007199254740993);
  CHECK(json_integers<uint8_t>(j["a"], "a") == std::vector<uint8_t>{0, 1, 255});
  // A float, a negative for an unsigned type, an integer past the type, a string, a non-array.
  CHECK_THROWS_WITH_AS(json_integer<uint32_t>(j["f"], "x_bits"), "x_bits: expected an integer in [0, 4294967295], got -3.21",
                       moe::InputError);
  CHECK_THROWS_WITH_AS(json_integer<uint32_t>(j["neg"], "u32"), doctest::Contains("got -3"), moe::InputError);
  CHECK_THROWS_WITH_AS(json_integer<int32_t>(j["u"], "i32"),
                       "i32: expected an integer in [-2147483648, 2147483647], got 4294967295", moe::InputError);
  CHECK_THROWS_AS(json_integer<int32_t>(j["s"], "s"), moe::InputError);
  CHECK_THROWS_WITH_AS(json_integers<uint32_t>(j["b"], "b"), doctest::Contains("b: expected an integer in [0, "),
                       moe::InputError);
  CHECK_THROWS_WITH_AS(json_integers<int32_t>(j["u"], "ids"), "ids: expected an array of integers", moe::InputError);
  // json_integer_in: both storages, the bounds themselves, 2^64 - 1 (unsigned only), not integers.
  using moe::json_integer_in;
  const auto r = nlohmann::json::parse(R"({"max": 18446744073709551615, "i64max": 9223372036854775807, "neg": -5})");
  CHECK(json_integer<uint64_t>(r["max"], "max") == UINT64_MAX);
  CHECK_FALSE(json_integer_in(r["max"], 0, INT64_MAX));
  CHECK_FALSE(json_integer_in(r["max"], -10, -1));  // a negative hi: not 2^64 - 1 through a wrap
  CHECK(json_integer_in(r["i64max"], 1, INT64_MAX));
  CHECK(json_integer_in(r["neg"], -5, 0));
  CHECK_FALSE(json_integer_in(r["neg"], -4, 0));
  CHECK_FALSE(json_integer_in(j["u"], 0, 4294967294));
  CHECK(json_integer_in(j["u"], 4294967295, 4294967295));
  CHECK(json_integer_in(r["neg"], -10, -1));
  CHECK_FALSE(json_integer_in(r["neg"], 0, -1));
  CHECK_FALSE(json_integer_in(j["f"], -10, 10));
  CHECK_FALSE(json_integer_in(j["s"], 0, 10));
}
