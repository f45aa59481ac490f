// CPU reference of the quantizers: layouts, scale rules, error model, edge cases.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "kernels/quant/quant.hpp"
#include "moe/dtype.hpp"
#include "moe/error.hpp"
#include "moe/rng.hpp"
#include "reference/quant/quant_ref.hpp"

using namespace moe;
using namespace moe::quant;

namespace {

// Normal values with a per-row magnitude spread over 6 decades, rounded to `dt`.
std::vector<float> make_input(const QuantProblem& p, uint64_t seed) {
  std::vector<float> x(static_cast<size_t>(p.numel()));
  const int64_t C = p.shape.cols;
  for (size_t i = 0; i < x.size(); ++i) {
    const int64_t row = static_cast<int64_t>(i) / C;
    const float mag = std::pow(10.0f, 6.0f * rng::uniform(seed, rng::Stream::Scores, static_cast<uint64_t>(row)) - 3.0f);
    x[i] = round_to(p.in_dtype, rng::normal(seed, rng::Stream::Test, i) * mag);
  }
  return x;
}

std::vector<QuantProblem> sample_problems() {
  std::vector<QuantProblem> v;
  for (QType t : {QType::FP8_E4M3FN, QType::FP8_E4M3FNUZ, QType::INT8}) {
    QuantProblem p;
    p.spec.qtype = t;
    p.shape = {1, 37, 1000};
    p.spec.granularity = Granularity::PerTensor;
    v.push_back(p);
    p.shape = {3, 5, 77};  // per-expert
    v.push_back(p);
    p.spec.granularity = Granularity::PerRow;
    p.shape = {1, 19, 333};
    v.push_back(p);
    p.spec.granularity = Granularity::PerGroup;
    p.shape = {1, 9, 1000};  // 7 full groups + 1 of 104
    v.push_back(p);
    p.spec.group_layout = GroupScaleLayout::ColMajor;
    v.push_back(p);
    p.spec.group_layout = GroupScaleLayout::RowMajor;
    p.spec.granularity = Granularity::PerBlock;
    p.shape = {2, 130, 300};
    v.push_back(p);
  }
  return v;
}

}  // namespace

TEST_CASE("quant ref: the worked layout example of quant.hpp") {
  QuantProblem p = fp8_per_token_group(2, 256, DType::F32, Fp8Format::E4M3FN, 128);
  std::vector<float> x(512, 0.25f);
  x[0] = 1.0f;
  x[1] = -0.3f;
  x[2] = 3.5f;  // amax of row 0, group 0
  x[300] = -7.0f;  // row 1 (starts at 256), column 44: group 0
  const auto r = ref::quantize(p, x);
  REQUIRE(r.scales.size() == 4);
  CHECK(p.scale_shape() == std::vector<int64_t>{1, 2, 2});
  CHECK(r.scales[0] == 0x1p-7f);
  CHECK(r.q[0] == 0x70);
  CHECK(r.q[1] == 0xE2);
  CHECK(r.q[2] == 0x7E);
  CHECK(r.scales[1] == 0.25f / 448.0f);  // row 0, group 1: all 0.25
  CHECK(r.q[200] == 0x7E);
  CHECK(r.scales[2] == 7.0f / 448.0f);  // row 1, group 0
  CHECK(r.q[300] == 0xFE);
  // Column-major: the scale of (r, g) at g*2 + r.
  QuantProblem pc = fp8_per_token_group(2, 256, DType::F32, Fp8Format::E4M3FN, 128, GroupScaleLayout::ColMajor);
  const auto rc = ref::quantize(pc, x);
  CHECK(pc.scale_shape() == std::vector<int64_t>{1, 2, 2});
  CHECK(rc.q == r.q);
  for (int row = 0; row < 2; ++row)
    for (int g = 0; g < 2; ++g) CHECK(rc.scales[static_cast<size_t>(g * 2 + row)] == r.scales[static_cast<size_t>(row * 2 + g)]);
}

TEST_CASE("quant ref: problem validation names the bad field") {
  QuantProblem p = fp8_per_token(4, 64, DType::BF16, Fp8Format::E4M3FN, "a1");
  auto bad = [&](auto mutate, const char* needle) {
    QuantProblem q = p;
    mutate(q);
    try {
      q.validate();
      FAIL("no error for ", needle);
    } catch (const InputError& e) {
      CHECK_MESSAGE(std::string(e.what()).find(needle) != std::string::npos, e.what());
      CHECK(std::string(e.what()).find("'a1'") != std::string::npos);
    }
  };
  bad([](QuantProblem& q) { q.shape.rows = 0; }, "shape");
  bad([](QuantProblem& q) { q.shape.cols = -3; }, "shape");
  bad([](QuantProblem& q) { q.in_dtype = DType::I32; }, "dtype");
  bad([](QuantProblem& q) { q.spec.granularity = Granularity::PerGroup; q.spec.group = 0; }, "group size");
  bad([](QuantProblem& q) { q.spec.granularity = Granularity::PerBlock; q.spec.block_cols = 0; }, "block");
  bad([](QuantProblem& q) { q.spec.static_scale = true; }, "static");
  bad([](QuantProblem& q) { q.spec.group_layout = GroupScaleLayout::ColMajor; }, "column-major");
  bad([](QuantProblem& q) { q.spec.qtype = static_cast<QType>(9); }, "quantized type");
  bad([](QuantProblem& q) { q.shape = {1, int64_t{1} << 40, int64_t{1} << 40}; }, "too large");
  CHECK_THROWS_AS(parse_qtype("fp4"), InputError);
  CHECK(parse_qtype("e4m3fnuz") == QType::FP8_E4M3FNUZ);
  CHECK(LaunchConfig{.threads = 96}.why_invalid() != "");
  CHECK(LaunchConfig{.threads = 512}.why_invalid() == "");
  // Reference input size must match.
  std::vector<float> x(10);
  CHECK_THROWS_AS(ref::quantize(p, x), InputError);
}

TEST_CASE("quant ref: scale shapes and indices of every granularity") {
  CHECK(fp8_per_tensor(5, 7, DType::BF16, Fp8Format::E4M3FN).scale_shape() == std::vector<int64_t>{1});
  CHECK(weight_per_expert(8, 6, 4, DType::BF16, QType::INT8).scale_shape() == std::vector<int64_t>{8});
  CHECK(weight_per_channel(8, 6, 4, DType::BF16, QType::INT8).scale_shape() == std::vector<int64_t>{8, 6});
  CHECK(weight_per_block(2, 300, 129, DType::BF16, QType::FP8_E4M3FN).scale_shape() == std::vector<int64_t>{2, 3, 2});
  const QuantProblem g = fp8_per_token_group(3, 1000, DType::BF16, Fp8Format::E4M3FN, 128);
  CHECK(g.scale_shape() == std::vector<int64_t>{1, 3, 8});
  CHECK(g.scale_index(0, 2, 999) == 2 * 8 + 7);
  const QuantProblem b = weight_per_block(2, 300, 129, DType::BF16, QType::FP8_E4M3FN);
  CHECK(b.scale_index(1, 299, 128) == (1 * 3 + 2) * 2 + 1);
  CHECK(b.describe_segment(11) == "block rows [256, 300), columns [128, 129) of batch entry 1");
  CHECK(g.describe_segment(23) == "row 2, columns [896, 1000) of batch entry 0");
  CHECK(g.min_bytes() == 3000.0 * 2 + 3000.0 + 24 * 4.0);
}

TEST_CASE("quant ref: every scheme obeys the error model; amax hits the max code") {
  uint64_t seed = 11;
  for (QuantProblem p : sample_problems()) {
    for (DType dt : {DType::BF16, DType::F32}) {
      p.in_dtype = dt;
      CAPTURE(p.summary());
      const auto x = make_input(p, ++seed);
      const auto r = ref::quantize(p, x);
      CHECK(r.bad_segments == 0);
      CHECK(ref::error_model_check(p, x, r) == "");
      // Independent scale check: amax per segment in double, then the fp32 rule.
      std::vector<double> amax(static_cast<size_t>(p.num_scales()), 0.0);
      std::vector<int> maxcode_hits(amax.size(), 0);
      const uint8_t mc = p.spec.qtype == QType::INT8 ? 127 : fp8_max_code(fp8_format_of(p.spec.qtype));
      for (int64_t b = 0; b < p.shape.batch; ++b)
        for (int64_t row = 0; row < p.shape.rows; ++row)
          for (int64_t c = 0; c < p.shape.cols; ++c) {
            const size_t i = static_cast<size_t>((b * p.shape.rows + row) * p.shape.cols + c);
            const size_t s = static_cast<size_t>(p.scale_index(b, row, c));
            amax[s] = std::max(amax[s], std::fabs(static_cast<double>(x[i])));
            const uint8_t code = r.q[i];
            const uint8_t mag = p.spec.qtype == QType::INT8
                                    ? static_cast<uint8_t>(std::abs(static_cast<int>(static_cast<int8_t>(code))))
                                    : static_cast<uint8_t>(code & 0x7F);
            if (mag == mc) ++maxcode_hits[s];
            if (p.spec.qtype == QType::INT8) CHECK(static_cast<int8_t>(code) != -128);
          }
      for (size_t s = 0; s < amax.size(); ++s) {
        const float want = static_cast<float>(amax[s]) / qtype_max(p.spec.qtype);
        CHECK(r.scales[s] == (want < FLT_MIN ? FLT_MIN : want));
        CHECK(maxcode_hits[s] >= 1);
      }
    }
  }
}

TEST_CASE("quant ref: all-zero input gives scale 0, codes 0, dequantized 0 (no NaN)") {
  for (QuantProblem p : sample_problems()) {
    CAPTURE(p.summary());
    std::vector<float> x(static_cast<size_t>(p.numel()), 0.0f);
    for (size_t i = 0; i < x.size(); i += 3) x[i] = -0.0f;
    const auto r = ref::quantize(p, x);
    for (float s : r.scales) CHECK(s == 0.0f);
    for (uint8_t c : r.q) REQUIRE(c == 0);
    for (double d : ref::dequantize(p, r.q, r.scales)) REQUIRE(d == 0.0);
  }
}

TEST_CASE("quant ref: tiny amax clamps the scale to FLT_MIN and stays finite") {
  QuantProblem p = fp8_per_token(1, 4, DType::F32, Fp8Format::E4M3FN);
  std::vector<float> x = {1e-40f, -2e-40f, 0.0f, 5e-41f};
  const auto r = ref::quantize(p, x);
  CHECK(r.scales[0] == FLT_MIN);
  CHECK(ref::error_model_check(p, x, r) == "");
  for (double d : ref::dequantize(p, r.q, r.scales)) CHECK(std::isfinite(d));
}

TEST_CASE("quant ref: Inf / NaN input is an InputError naming the tensor and the segment") {
  for (QuantProblem p : sample_problems()) {
    p.name = "a2";
    CAPTURE(p.summary());
    for (float badv : {INFINITY, -INFINITY, std::numeric_limits<float>::quiet_NaN()}) {
      std::vector<float> x(static_cast<size_t>(p.numel()), 1.0f);
      const int64_t at = p.numel() - 2;  // last row, second last column
      x[static_cast<size_t>(at)] = badv;
      x[static_cast<size_t>(p.numel() - 1)] = badv;
      const int64_t b = at / (p.shape.rows * p.shape.cols), row = (at / p.shape.cols) % p.shape.rows,
                    c = at % p.shape.cols;
      const int64_t seg = p.scale_index(b, row, c);
      const auto u = ref::quantize_unchecked(p, x);
      CHECK(u.first_bad == seg);
      CHECK(std::isnan(u.scales[static_cast<size_t>(seg)]));
      try {
        ref::quantize(p, x);
        FAIL("no error");
      } catch (const InputError& e) {
        const std::string m = e.what();
        CHECK_MESSAGE(m.find("'a2'") != std::string::npos, m);
        CHECK_MESSAGE(m.find("Inf or NaN") != std::string::npos, m);
        CHECK_MESSAGE(m.find(p.describe_segment(seg)) != std::string::npos, m);
      }
    }
  }
}

TEST_CASE("quant ref: static per-tensor scale saturates at +-448 / +-240 / +-127") {
  for (QType t : {QType::FP8_E4M3FN, QType::FP8_E4M3FNUZ, QType::INT8}) {
    QuantProblem p = weight_per_expert(1, 1, 8, DType::F32, t);
    p.spec.static_scale = true;
    const float qmax = qtype_max(t);
    const std::vector<float> x = {qmax, -qmax, 2 * qmax, -1e30f, qmax * 0.5f, 0.0f, -0.0f, 1.0f};
    const std::vector<float> scale = {1.0f};
    const auto r = ref::quantize(p, x, scale);
    CHECK(r.scales[0] == 1.0f);
    if (t == QType::INT8) {
      CHECK(r.q == std::vector<uint8_t>{127, 0x81, 127, 0x81, 64, 0, 0, 1});  // 63.5 -> 64 (even)
    } else {
      const uint8_t mc = fp8_max_code(fp8_format_of(t));
      CHECK(r.q[0] == mc);
      CHECK(r.q[1] == (0x80 | mc));
      CHECK(r.q[2] == mc);
      CHECK(r.q[3] == (0x80 | mc));
      CHECK(fp8_decode(r.q[4], fp8_format_of(t)) == qmax * 0.5f);
      CHECK(r.q[5] == 0);
      CHECK(r.q[6] == (t == QType::FP8_E4M3FN ? 0x80 : 0x00));
    }
    // An invalid static scale is reported like a non-finite input.
    for (float bad_scale : {-1.0f, std::numeric_limits<float>::quiet_NaN(), INFINITY}) {
      const std::vector<float> s = {bad_scale};
      CHECK_THROWS_AS(ref::quantize(p, x, s), InputError);
    }
    const std::vector<float> zero = {0.0f};
    for (uint8_t c : ref::quantize(p, x, zero).q) CHECK(c == 0);
  }
}

TEST_CASE("quant ref: int8 per token reaches +-127 and never -128") {
  QuantProblem p = int8_per_token(3, 5, DType::F32);
  const std::vector<float> x = {-2.0f, 2.0f, 1.0f, 0.0f, -1.0f,  //
                                -5.0f, 0.1f, 0.2f, 0.3f, 0.4f,   //
                                0.0f,  0.0f, 0.0f, 0.0f, 0.0f};
  const auto r = ref::quantize(p, x);
  CHECK(static_cast<int8_t>(r.q[0]) == -127);
  CHECK(static_cast<int8_t>(r.q[1]) == 127);
  CHECK(static_cast<int8_t>(r.q[2]) == 64);  // 63.5 -> 64 (half to even)
  CHECK(static_cast<int8_t>(r.q[4]) == -64);
  CHECK(static_cast<int8_t>(r.q[5]) == -127);
  CHECK(r.scales[0] == 2.0f / 127.0f);
  CHECK(r.scales[2] == 0.0f);
  CHECK(ref::error_model_check(p, x, r) == "");
}

TEST_CASE("quant ref: per-expert per-tensor equals per-tensor of each expert slice") {
  QuantProblem all = weight_per_expert(4, 6, 50, DType::BF16, QType::FP8_E4M3FN);
  const auto x = make_input(all, 99);
  const auto r = ref::quantize(all, x);
  for (int64_t e = 0; e < 4; ++e) {
    QuantProblem one = weight_per_expert(1, 6, 50, DType::BF16, QType::FP8_E4M3FN);
    std::vector<float> xs(x.begin() + e * 300, x.begin() + (e + 1) * 300);
    const auto re = ref::quantize(one, xs);
    CHECK(re.scales[0] == r.scales[static_cast<size_t>(e)]);
    CHECK(std::equal(re.q.begin(), re.q.end(), r.q.begin() + e * 300));
  }
}

TEST_CASE("quant ref: x * (1/scale) vs the seed's x / scale differ by at most one code, rarely") {
  // Documents the deviation from the seed's `(x / scale).to(float8_e4m3fn)`.
  const int64_t n = 1 << 20;
  QuantProblem p = fp8_per_tensor(1, n, DType::F32, Fp8Format::E4M3FN);
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) x[static_cast<size_t>(i)] = rng::normal(5, rng::Stream::Test, static_cast<uint64_t>(i));
  const auto r = ref::quantize(p, x);
  const float s = r.scales[0];
  int64_t differ = 0;
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t by_div = fp8_encode(x[static_cast<size_t>(i)] / s, Fp8Format::E4M3FN);
    const uint8_t got = r.q[static_cast<size_t>(i)];
    if (by_div != got) {
      ++differ;
      CHECK(std::abs(static_cast<int>(by_div & 0x7F) - static_cast<int>(got & 0x7F)) == 1);
    }
  }
  MESSAGE("codes differing between x*(1/s) and x/s: ", differ, " of ", n);
  CHECK(differ <= n / 10000);
}
