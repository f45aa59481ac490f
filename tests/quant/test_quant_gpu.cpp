// GPU tests of the quantization kernels against the CPU reference: bit-exact codes
// and scales on fresh random inputs of odd shapes (vector and scalar paths), with
// outputs poisoned before every run; device FP8 conversions against the host
// definition (all 256 codes, all 2^32 floats); all-zero input; saturation; int8
// +-127; the Inf/NaN error path; host-side validation.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "kernels/quant/quant.hpp"
#include "moe/dtype.hpp"
#include "moe/error.hpp"
#include "moe/gpu.hpp"
#include "moe/rng.hpp"
#include "reference/quant/quant_ref.hpp"

using namespace moe;
using namespace moe::quant;

namespace {

uint64_t g_seed = 1000;

// Host input: values (widened exactly) and the raw element bytes for the device.
struct HostInput {
  std::vector<float> values;
  std::vector<uint8_t> bytes;
};

HostInput encode_input(DType dt, const std::vector<float>& v) {
  HostInput h;
  h.bytes.resize(v.size() * dtype_size(dt));
  h.values.resize(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    if (dt == DType::F32) {
      std::memcpy(&h.bytes[4 * i], &v[i], 4);
      h.values[i] = v[i];
    } else {
      const uint16_t b = dt == DType::BF16 ? f32_to_bf16_bits(v[i]) : f32_to_f16_bits(v[i]);
      std::memcpy(&h.bytes[2 * i], &b, 2);
      h.values[i] = dt == DType::BF16 ? bf16_bits_to_f32(b) : f16_bits_to_f32(b);
    }
  }
  return h;
}

// Normal values with a per-row magnitude spread over 6 decades (fp16-safe), some
// exact zeros and negative-amax rows.
std::vector<float> random_values(const QuantProblem& p, uint64_t seed) {
  std::vector<float> x(static_cast<size_t>(p.numel()));
  const int64_t C = p.shape.cols;
  for (size_t i = 0; i < x.size(); ++i) {
    const uint64_t row = static_cast<uint64_t>(static_cast<int64_t>(i) / C);
    const float mag = std::pow(10.0f, 6.0f * rng::uniform(seed, rng::Stream::Scores, row) - 3.0f);
    float v = rng::normal(seed, rng::Stream::Test, i) * mag;
    if (rng::uniform(seed, rng::Stream::Bias, i) < 0.02f) v = 0.0f;
    x[i] = v;
  }
  return x;
}

bool same_bits(float a, float b) { return f32_bits(a) == f32_bits(b); }

struct RunOut {
  std::vector<uint8_t> q;
  std::vector<float> scales;
};

// Runs the kernel with outputs poisoned by `poison`; x placed `offset_elems`
// elements into its buffer (misalignment).
RunOut run_kernel(const QuantProblem& p, const HostInput& in, uint8_t poison, const LaunchConfig& cfg,
                  CheckMode mode = CheckMode::Sync, const std::vector<float>& static_scales = {},
                  int64_t offset_elems = 0, int64_t q_offset = 0) {
  const size_t es = dtype_size(p.in_dtype);
  gpu::DeviceBuffer<uint8_t> x(in.bytes.size() + static_cast<size_t>(offset_elems) * es);
  gpu::copy_blocking(x.data() + offset_elems * static_cast<int64_t>(es), in.bytes.data(), in.bytes.size(),
                     hipMemcpyHostToDevice);
  gpu::DeviceBuffer<uint8_t> q(static_cast<size_t>(p.numel() + q_offset));
  gpu::DeviceBuffer<float> scales(static_cast<size_t>(p.num_scales()));
  q.poison(poison);
  if (p.spec.static_scale) scales.upload(static_scales);
  else scales.poison(poison);
  Workspace ws(p.shape.batch);
  gpu::Stream s;
  quantize(p, x.data() + offset_elems * static_cast<int64_t>(es), q.data() + q_offset, scales.data(), ws, s.get(), mode,
           cfg);
  s.sync();
  RunOut out;
  auto qa = q.download();
  out.q.assign(qa.begin() + q_offset, qa.end());
  out.scales = scales.download();
  return out;
}

// Kernel vs reference, bit-exact, with two different poisons.
void check_against_ref(const QuantProblem& p, const std::vector<float>& raw, const LaunchConfig& cfg = {},
                       const std::vector<float>& static_scales = {}, int64_t offset = 0, int64_t q_offset = 0) {
  const HostInput in = encode_input(p.in_dtype, raw);
  const auto want = ref::quantize(p, in.values, static_scales);
  for (uint8_t poison : {uint8_t{0xA5}, uint8_t{0x5A}}) {
    const RunOut got = run_kernel(p, in, poison, cfg, CheckMode::Sync, static_scales, offset, q_offset);
    int64_t bad_q = 0, first = -1;
    for (size_t i = 0; i < want.q.size(); ++i)
      if (got.q[i] != want.q[i]) {
        if (first < 0) first = static_cast<int64_t>(i);
        ++bad_q;
      }
    CHECK_MESSAGE(bad_q == 0, fmt::format("{}: {} codes differ, first at {} (got 0x{:02x}, want 0x{:02x})", p.summary(),
                                          bad_q, first, first >= 0 ? got.q[static_cast<size_t>(first)] : 0,
                                          first >= 0 ? want.q[static_cast<size_t>(first)] : 0));
    int64_t bad_s = 0;
    for (size_t i = 0; i < want.scales.size(); ++i) bad_s += !same_bits(got.scales[i], want.scales[i]);
    CHECK_MESSAGE(bad_s == 0, fmt::format("{}: {} of {} scales differ (first want {})", p.summary(), bad_s,
                                          want.scales.size(), want.scales.empty() ? 0.0f : want.scales[0]));
  }
}

std::vector<QuantProblem> odd_problems(QType t, DType dt) {
  std::vector<QuantProblem> v;
  auto add = [&](Shape3 sh, Granularity g, int64_t group = 128, GroupScaleLayout lay = GroupScaleLayout::RowMajor) {
    QuantProblem p;
    p.shape = sh;
    p.in_dtype = dt;
    p.spec.qtype = t;
    p.spec.granularity = g;
    p.spec.group = group;
    p.spec.group_layout = lay;
    p.name = "x";
    p.validate();
    v.push_back(p);
  };
  add({1, 1, 1}, Granularity::PerTensor);
  add({1, 37, 1000}, Granularity::PerTensor);
  add({1, 3, 333}, Granularity::PerTensor);  // odd element count: scalar path
  add({5, 7, 96}, Granularity::PerTensor);   // per expert
  add({1, 1, 7168}, Granularity::PerRow);
  add({1, 37, 1000}, Granularity::PerRow);
  add({1, 5, 9000}, Granularity::PerRow);    // more vectors than the register cache
  add({2, 11, 333}, Granularity::PerRow);
  add({1, 17, 7168}, Granularity::PerGroup);
  add({1, 9, 1000}, Granularity::PerGroup);  // partial last group
  add({1, 9, 1000}, Granularity::PerGroup, 128, GroupScaleLayout::ColMajor);
  add({2, 5, 4096}, Granularity::PerGroup, 64, GroupScaleLayout::ColMajor);
  add({1, 6, 333}, Granularity::PerGroup, 100);  // scalar path (group not a power-of-two multiple)
  add({1, 3, 520}, Granularity::PerGroup, 512);  // group/VEC > 32: scalar path
  add({2, 130, 300}, Granularity::PerBlock);
  add({1, 7, 5}, Granularity::PerBlock);
  QuantProblem b;
  b.shape = {3, 64, 96};
  b.in_dtype = dt;
  b.spec = {.qtype = t, .granularity = Granularity::PerBlock, .block_rows = 32, .block_cols = 48};
  v.push_back(b);
  return v;
}

const QType kQTypes[] = {QType::FP8_E4M3FN, QType::FP8_E4M3FNUZ, QType::INT8};
const DType kDTypes[] = {DType::BF16, DType::F16, DType::F32};

}  // namespace

TEST_CASE("quant gpu: device fp8 decode of all 256 codes equals the host") {
  for (Fp8Format f : {Fp8Format::E4M3FN, Fp8Format::E4M3FNUZ}) {
    const auto d = testing::device_decode_all(f);
    for (int c = 0; c < 256; ++c) {
      const float h = fp8_decode(static_cast<uint8_t>(c), f);
      CHECK_MESSAGE((same_bits(d[static_cast<size_t>(c)], h) || (std::isnan(h) && std::isnan(d[static_cast<size_t>(c)]))),
                    fmt::format("{} code {}: device {} host {}", fp8_format_name(f), c, d[static_cast<size_t>(c)], h));
    }
  }
}

TEST_CASE("quant gpu: device fp8 encode equals the host on boundaries and random floats") {
  for (Fp8Format f : {Fp8Format::E4M3FN, Fp8Format::E4M3FNUZ}) {
    std::vector<float> xs;
    for (int c = 0; c < 256; ++c) {
      const float v = fp8_decode(static_cast<uint8_t>(c), f);
      const float n = fp8_decode(static_cast<uint8_t>(c + 1), f);
      xs.push_back(v);
      xs.push_back(std::nextafter(v, INFINITY));
      xs.push_back(std::nextafter(v, -INFINITY));
      if (std::isfinite(v) && std::isfinite(n) && (c & 0x7F) != 0x7F) xs.push_back((v + n) / 2);
    }
    for (float v : {0.0f, -0.0f, INFINITY, -INFINITY, std::numeric_limits<float>::quiet_NaN(), 1e30f, -1e30f, 449.0f,
                    464.0f, 480.0f, 241.0f, 248.0f, 1e-40f, -1e-40f})
      xs.push_back(v);
    for (uint32_t i = 0; i < 100001; ++i) xs.push_back(bits_f32(rng::bits32(3, rng::Stream::Test, i)));
    const auto d = testing::device_encode(f, xs);
    int64_t bad = 0;
    for (size_t i = 0; i < xs.size(); ++i) bad += d[i] != fp8_encode(xs[i], f);
    CHECK_MESSAGE(bad == 0, fmt::format("{}: {} of {} differ", fp8_format_name(f), bad, xs.size()));
  }
}

TEST_CASE("quant gpu: the kernels' fp8 encoder equals the definition on all 2^32 floats") {
  for (Fp8Format f : {Fp8Format::E4M3FN, Fp8Format::E4M3FNUZ}) {
    const auto r = testing::device_sweep_all_floats(f);
    MESSAGE(fmt::format("{}: kernels' encoder is {}; {} of 2^33 conversions differ", fp8_format_name(f),
                        r.hw_cvt ? "the hardware cvt.rn.satfinite.e4m3x2.f32" : "the software definition", r.mismatches));
    CHECK_MESSAGE(r.mismatches == 0, fmt::format("first differing float bits 0x{:08x}: fast 0x{:02x}, definition 0x{:02x}",
                                                 r.first_bits, r.fast_code, r.soft_code));
  }
}

TEST_CASE("quant gpu: kernels equal the reference bit for bit on random odd shapes") {
  int n = 0;
  for (QType t : kQTypes)
    for (DType dt : kDTypes)
      for (const QuantProblem& p : odd_problems(t, dt)) {
        CAPTURE(p.summary());
        const auto raw = random_values(p, ++g_seed);
        check_against_ref(p, raw);
        check_against_ref(p, raw, LaunchConfig{.force_scalar = true});
        n += 2;
      }
  MESSAGE(n, " kernel-vs-reference comparisons");
}

TEST_CASE("quant gpu: explicit block sizes and misaligned pointers") {
  for (QType t : kQTypes) {
    for (int threads : {64, 128, 512, 1024}) {
      QuantProblem p = fp8_per_token_group(13, 2048, DType::BF16, Fp8Format::E4M3FN);
      p.spec.qtype = t;
      check_against_ref(p, random_values(p, ++g_seed), LaunchConfig{.threads = threads});
      QuantProblem r = fp8_per_token(13, 2000, DType::BF16, Fp8Format::E4M3FN);
      r.spec.qtype = t;
      check_against_ref(r, random_values(r, ++g_seed), LaunchConfig{.threads = threads});
    }
    // x one element off 16-byte alignment, q one byte off: the launcher falls back to
    // the scalar path by itself.
    for (Granularity g : {Granularity::PerTensor, Granularity::PerRow, Granularity::PerGroup}) {
      QuantProblem p = fp8_per_token(9, 1024, DType::BF16, Fp8Format::E4M3FN);
      p.spec.qtype = t;
      p.spec.granularity = g;
      check_against_ref(p, random_values(p, ++g_seed), {}, {}, /*offset=*/1, /*q_offset=*/0);
      check_against_ref(p, random_values(p, ++g_seed), {}, {}, /*offset=*/0, /*q_offset=*/3);
    }
  }
}

TEST_CASE("quant gpu: model-sized activations and weights") {
  for (QType t : kQTypes) {
    for (Granularity g : {Granularity::PerTensor, Granularity::PerRow, Granularity::PerGroup}) {
      QuantProblem p = fp8_per_token(257, 7168, DType::BF16, Fp8Format::E4M3FN);
      p.spec.qtype = t;
      p.spec.granularity = g;
      check_against_ref(p, random_values(p, ++g_seed));
    }
    check_against_ref(weight_per_channel(4, 384, 1024, DType::BF16, t), random_values(weight_per_channel(4, 384, 1024, DType::BF16, t), ++g_seed));
    check_against_ref(weight_per_block(3, 300, 1000, DType::BF16, t), random_values(weight_per_block(3, 300, 1000, DType::BF16, t), ++g_seed));
    check_against_ref(weight_per_expert(8, 96, 1024, DType::BF16, t), random_values(weight_per_expert(8, 96, 1024, DType::BF16, t), ++g_seed));
  }
}

TEST_CASE("quant gpu: all-zero input gives scale 0 and codes 0, never NaN") {
  for (QType t : kQTypes)
    for (const QuantProblem& p : odd_problems(t, DType::BF16)) {
      CAPTURE(p.summary());
      std::vector<float> raw(static_cast<size_t>(p.numel()), 0.0f);
      for (size_t i = 1; i < raw.size(); i += 2) raw[i] = -0.0f;
      const HostInput in = encode_input(p.in_dtype, raw);
      const RunOut got = run_kernel(p, in, 0xFF, {});
      for (float s : got.scales) REQUIRE(f32_bits(s) == 0u);
      for (uint8_t c : got.q) REQUIRE(c == 0);
    }
}

TEST_CASE("quant gpu: static per-tensor scale saturates at +-max; int8 at +-127") {
  for (QType t : kQTypes)
    for (DType dt : kDTypes) {
      QuantProblem p = weight_per_expert(2, 3, 64, dt, t);
      p.spec.static_scale = true;
      auto raw = random_values(p, ++g_seed);
      raw[0] = 1e4f;  // far beyond max * scale
      raw[1] = -1e4f;
      const std::vector<float> scales = {0.01f, 0.5f};  // batch 0 mostly saturates
      check_against_ref(p, raw, {}, scales);
      const auto want = ref::quantize(p, encode_input(dt, raw).values, scales);
      const uint8_t mc = t == QType::INT8 ? 127 : fp8_max_code(fp8_format_of(t));
      CHECK(want.q[0] == mc);
      CHECK(want.q[1] == (t == QType::INT8 ? 0x81 : (0x80 | mc)));
      // Zero static scale: codes 0.
      check_against_ref(p, raw, {}, {0.0f, 0.0f});
    }
  // Dynamic int8 per token: every row reaches +-127 exactly at its amax.
  QuantProblem p = int8_per_token(33, 1000, DType::BF16);
  auto raw = random_values(p, ++g_seed);
  const HostInput in = encode_input(p.in_dtype, raw);
  const RunOut got = run_kernel(p, in, 0xA5, {});
  for (int64_t r = 0; r < 33; ++r) {
    int hi = 0;
    for (int64_t c = 0; c < 1000; ++c) {
      const int v = static_cast<int8_t>(got.q[static_cast<size_t>(r * 1000 + c)]);
      REQUIRE(v != -128);
      hi = std::max(hi, std::abs(v));
    }
    CHECK(hi == 127);
  }
}

TEST_CASE("quant gpu: Inf/NaN input raises InputError naming the tensor; deferred check; recovery") {
  for (QType t : kQTypes)
    for (const QuantProblem& base : odd_problems(t, DType::BF16)) {
      QuantProblem p = base;
      p.name = "a1_hidden";
      CAPTURE(p.summary());
      auto raw = random_values(p, ++g_seed);
      const int64_t at = p.numel() / 2;
      raw[static_cast<size_t>(at)] = (at % 2) ? INFINITY : std::numeric_limits<float>::quiet_NaN();
      const HostInput in = encode_input(p.in_dtype, raw);
      const auto want = ref::quantize_unchecked(p, in.values);
      REQUIRE(want.first_bad >= 0);
      std::string msg;
      try {
        run_kernel(p, in, 0xA5, {});
      } catch (const InputError& e) {
        msg = e.what();
      }
      CHECK_MESSAGE(msg.find("'a1_hidden'") != std::string::npos, msg);
      CHECK_MESSAGE(msg.find(p.describe_segment(want.first_bad)) != std::string::npos, msg);

      // Deferred: no throw at launch; outputs equal the reference's (NaN scale for the
      // bad segment, NaN/0 codes there), then check() throws once and clears.
      const size_t es = dtype_size(p.in_dtype);
      gpu::DeviceBuffer<uint8_t> x(in.bytes.size()), q(static_cast<size_t>(p.numel()));
      gpu::DeviceBuffer<float> sc(static_cast<size_t>(p.num_scales()));
      x.upload(in.bytes);
      q.poison(0xA5);
      sc.poison(0xA5);
      Workspace ws(p.shape.batch);
      gpu::Stream s;
      CHECK_NOTHROW(quantize(p, x.data(), q.data(), sc.data(), ws, s.get(), CheckMode::Deferred));
      s.sync();
      CHECK(q.download() == want.q);
      const auto scales = sc.download();
      for (size_t i = 0; i < scales.size(); ++i)
        CHECK((same_bits(scales[i], want.scales[i]) || (std::isnan(scales[i]) && std::isnan(want.scales[i]))));
      CHECK_THROWS_AS(ws.check(p, s.get()), InputError);
      CHECK_NOTHROW(ws.check(p, s.get()));  // cleared
      (void)es;
      // A clean input afterwards passes in sync mode on the same workspace.
      const auto clean = encode_input(p.in_dtype, random_values(p, ++g_seed));
      x.upload(clean.bytes);
      CHECK_NOTHROW(quantize(p, x.data(), q.data(), sc.data(), ws, s.get(), CheckMode::Sync));
    }
}

TEST_CASE("quant gpu: host validation rejects bad arguments before any launch") {
  QuantProblem p = fp8_per_tensor(4, 64, DType::BF16, Fp8Format::E4M3FN, "h");
  gpu::DeviceBuffer<uint16_t> x(256);
  gpu::DeviceBuffer<uint8_t> q(256);
  gpu::DeviceBuffer<float> sc(8);
  Workspace ws(1);
  gpu::Stream s;
  CHECK_THROWS_AS(quantize(p, nullptr, q.data(), sc.data(), ws, s.get()), InputError);
  CHECK_THROWS_AS(quantize(p, x.data(), nullptr, sc.data(), ws, s.get()), InputError);
  CHECK_THROWS_AS(quantize(p, x.data(), q.data(), nullptr, ws, s.get()), InputError);
  CHECK_THROWS_AS(quantize(p, x.data(), q.data(), sc.data(), ws, s.get(), CheckMode::Sync, {.threads = 100}), InputError);
  QuantProblem pe = weight_per_expert(2, 2, 64, DType::BF16, QType::FP8_E4M3FN);
  CHECK_THROWS_AS(quantize(pe, x.data(), q.data(), sc.data(), ws, s.get()), InputError);  // workspace too small
  QuantProblem bad = p;
  bad.in_dtype = DType::I32;
  CHECK_THROWS_AS(quantize(bad, x.data(), q.data(), sc.data(), ws, s.get()), InputError);
  CHECK_THROWS_AS(Workspace(0), InputError);
  s.sync();
  CHECK(hipGetLastError() == hipSuccess);
}

TEST_CASE("quant gpu: sanitizer subset (small shapes, every granularity and path)") {
  for (QType t : kQTypes) {
    for (const QuantProblem& base : {fp8_per_tensor(3, 40, DType::BF16, Fp8Format::E4M3FN),
                                     fp8_per_token(3, 40, DType::BF16, Fp8Format::E4M3FN),
                                     fp8_per_token_group(3, 264, DType::BF16, Fp8Format::E4M3FN, 128),
                                     fp8_per_token_group(3, 50, DType::F32, Fp8Format::E4M3FN, 20),
                                     weight_per_block(2, 9, 40, DType::F16, QType::INT8, 4, 16)}) {
      QuantProblem p = base;
      p.spec.qtype = t;
      CAPTURE(p.summary());
      const auto raw = random_values(p, ++g_seed);
      check_against_ref(p, raw);
      check_against_ref(p, raw, LaunchConfig{.force_scalar = true});
    }
  }
}
