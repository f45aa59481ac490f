// Verify family "quant": FP8/INT8 quantizers.
//   CPU: the fp8 conversions against a table built from the format definitions
//        (all 256 codes, round trips, RNE midpoints); the reference against the
//        golden vectors of data/quant/golden.json (made by scripts/quant_golden.py,
//        an independent exact-arithmetic implementation); the reference's error model.
//   GPU: every kernel against the reference, bit-exact codes and scales, on model
//        activation shapes (DeepSeek-V3 7168, Mixtral 4096) and weight layouts.
#include <cmath>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "kernels/quant/quant.hpp"
#include "moe/error.hpp"
#include "moe/fp8.hpp"
#include "moe/gpu.hpp"
#include "moe/json_numbers.hpp"
#include "moe/registry.hpp"
#include "moe/rng.hpp"
#include "reference/quant/quant_ref.hpp"

namespace moe {
namespace {

using namespace quant;

CaseResult ok(std::string msg, nlohmann::json metrics = nlohmann::json::object()) {
  CaseResult r;
  r.passed = true;
  r.message = std::move(msg);
  r.metrics = std::move(metrics);
  return r;
}
CaseResult fail(std::string msg) {
  CaseResult r;
  r.passed = false;
  r.message = std::move(msg);
  return r;
}

// ---- fp8 table ------------------------------------------------------------------------
CaseResult fp8_table_case(Fp8Format f) {
  const int bias = f == Fp8Format::E4M3FN ? 7 : 8;
  // Value of a non-NaN code from its fields (the format definition).
  auto defval = [bias](int c) {
    const int s = c >> 7, e = (c >> 3) & 15, m = c & 7;
    const double mag = e == 0 ? std::ldexp(m / 8.0, 1 - bias) : std::ldexp(1.0 + m / 8.0, e - bias);
    return s ? -mag : mag;
  };
  int checked = 0;
  for (int c = 0; c < 256; ++c) {
    const bool nan = f == Fp8Format::E4M3FN ? (c & 0x7F) == 0x7F : c == 0x80;
    const float got = fp8_decode(static_cast<uint8_t>(c), f);
    if (nan) {
      if (!std::isnan(got)) return fail(fmt::format("code 0x{:02x} should decode to NaN, got {}", c, got));
      if (fp8_encode(got, f) != fp8_nan_code(f)) return fail("NaN does not encode to the canonical code");
      continue;
    }
    const double want = defval(c);
    if (static_cast<double>(got) != want || std::signbit(got) != std::signbit(want))
      return fail(fmt::format("code 0x{:02x} decodes to {}, the definition says {}", c, got, want));
    if (fp8_encode(got, f) != c) return fail(fmt::format("encode(decode(0x{:02x})) = 0x{:02x}", c, fp8_encode(got, f)));
    if (c < fp8_max_code(f)) {
      const float mid = static_cast<float>((want + defval(c + 1)) / 2);  // exact
      const int even = (c % 2 == 0) ? c : c + 1;
      if (fp8_encode(mid, f) != even)
        return fail(fmt::format("midpoint {} of codes 0x{:02x}/0x{:02x} encodes to 0x{:02x}, not the even 0x{:02x}", mid,
                                c, c + 1, fp8_encode(mid, f), even));
    }
    ++checked;
  }
  if (fp8_encode(1e30f, f) != fp8_max_code(f) || fp8_encode(-INFINITY, f) != (0x80 | fp8_max_code(f)))
    return fail("out-of-range values do not saturate to +-max");
  return ok(fmt::format("ok: {} finite codes decode to the definition, round-trip, RNE midpoints", checked));
}

// ---- golden vectors ---------------------------------------------------------------------
struct Golden {
  std::string name;
  QuantProblem p;
  std::vector<float> x;
  std::vector<float> static_scales;
  bool expect_error = false;
  std::vector<uint8_t> codes;
  std::vector<uint32_t> scale_bits;
};

std::vector<Golden> load_golden(const std::string& dir) {
  const std::string path = dir + "/quant/golden.json";
  std::ifstream in(path);
  MOE_REQUIRE(in.good(), fmt::format("cannot open {}", path));
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    throw_input_error(fmt::format("{}: {}", path, e.what()));
  }
  require_bounded_numbers(doc, path);
  std::vector<Golden> out;
  for (const auto& c : doc.at("cases")) {
    Golden g;
    g.name = c.at("name").get<std::string>();
    auto field = [&](const char* key) { return fmt::format("{}: case {}: {}", path, g.name, key); };
    const auto sh = json_integers<int64_t>(c.at("shape"), field("shape"));
    MOE_REQUIRE(sh.size() == 3, fmt::format("{}: case {} shape must have 3 dims", path, g.name));
    g.p.shape = {sh[0], sh[1], sh[2]};
    g.p.in_dtype = c.at("in_dtype").get<std::string>() == "bf16" ? DType::BF16 : DType::F32;
    g.p.name = g.name;
    g.p.spec.qtype = parse_qtype(c.at("qtype").get<std::string>());
    const std::string gran = c.at("granularity").get<std::string>();
    g.p.spec.granularity = gran == "per_tensor" ? Granularity::PerTensor
                           : gran == "per_row"  ? Granularity::PerRow
                           : gran == "per_group" ? Granularity::PerGroup
                                                 : Granularity::PerBlock;
    g.p.spec.group = json_integer<int64_t>(c.at("group"), field("group"));
    g.p.spec.group_layout = c.at("group_layout").get<std::string>() == "col" ? GroupScaleLayout::ColMajor : GroupScaleLayout::RowMajor;
    const auto blk = json_integers<int64_t>(c.at("block"), field("block"));
    g.p.spec.block_rows = blk.at(0);
    g.p.spec.block_cols = blk.at(1);
    g.p.spec.static_scale = c.at("static_scale").get<bool>();
    for (uint32_t b : json_integers<uint32_t>(c.at("x_bits"), field("x_bits"))) g.x.push_back(bits_f32(b));
    if (g.p.spec.static_scale)
      for (uint32_t b : json_integers<uint32_t>(c.at("static_scales_bits"), field("static_scales_bits")))
        g.static_scales.push_back(bits_f32(b));
    g.expect_error = c.at("expect_error").get<bool>();
    if (!g.expect_error) {
      for (int v : json_integers<int32_t>(c.at("codes"), field("codes"))) g.codes.push_back(static_cast<uint8_t>(v));
      g.scale_bits = json_integers<uint32_t>(c.at("scales_bits"), field("scales_bits"));
    }
    out.push_back(std::move(g));
  }
  return out;
}

CaseResult golden_case(const Golden& g) {
  if (g.expect_error) {
    try {
      ref::quantize(g.p, g.x, g.static_scales);
    } catch (const InputError& e) {
      const std::string m = e.what();
      if (m.find("'" + g.name + "'") == std::string::npos || m.find("Inf or NaN") == std::string::npos)
        return fail("error message does not name the tensor: " + m);
      return ok("ok: rejected: " + m);
    }
    return fail("Inf/NaN input was not rejected");
  }
  const auto r = ref::quantize(g.p, g.x, g.static_scales);
  if (r.q.size() != g.codes.size() || r.scales.size() != g.scale_bits.size()) return fail("size mismatch with golden");
  int64_t bad = 0, first = -1;
  for (size_t i = 0; i < r.q.size(); ++i)
    if (r.q[i] != g.codes[i]) {
      if (first < 0) first = static_cast<int64_t>(i);
      ++bad;
    }
  if (bad) return fail(fmt::format("{} of {} codes differ from golden, first at {} (0x{:02x} vs 0x{:02x})", bad, r.q.size(), first,
                                   r.q[static_cast<size_t>(first)], g.codes[static_cast<size_t>(first)]));
  for (size_t i = 0; i < r.scales.size(); ++i)
    if (f32_bits(r.scales[i]) != g.scale_bits[i])
      return fail(fmt::format("scale {} is {} (0x{:08x}), golden 0x{:08x}", i, r.scales[i], f32_bits(r.scales[i]), g.scale_bits[i]));
  const std::string em = g.p.spec.static_scale ? std::string() : ref::error_model_check(g.p, g.x, r);
  if (!em.empty()) return fail("error model: " + em);
  return ok(fmt::format("ok: {} codes and {} scales equal golden", r.q.size(), r.scales.size()));
}

// ---- generated inputs -----------------------------------------------------------------------
std::vector<float> gen_values(const QuantProblem& p, uint64_t seed) {
  std::vector<float> x(static_cast<size_t>(p.numel()));
  for (size_t i = 0; i < x.size(); ++i) {
    const uint64_t row = static_cast<uint64_t>(static_cast<int64_t>(i) / p.shape.cols);
    const float mag = std::pow(10.0f, 4.0f * rng::uniform(seed, rng::Stream::Scores, row) - 2.0f);
    x[i] = round_to(p.in_dtype, rng::normal(seed, rng::Stream::Hidden, i) * mag);
  }
  return x;
}

CaseResult error_model_case(QuantProblem p, uint64_t seed) {
  const auto x = gen_values(p, seed);
  const auto r = ref::quantize(p, x);
  const std::string e = ref::error_model_check(p, x, r);
  if (!e.empty()) return fail(e);
  return ok(fmt::format("ok: {} elements within the error model", x.size()));
}

#if MOE_HAVE_GPU
CaseResult gpu_case(const QuantProblem& p, uint64_t seed) {
  const auto x = gen_values(p, seed);
  const auto want = ref::quantize(p, x);
  std::vector<uint16_t> bits16;
  gpu::DeviceBuffer<uint8_t> dx(static_cast<size_t>(p.numel()) * dtype_size(p.in_dtype));
  if (p.in_dtype == DType::F32) {
    gpu::copy_blocking(dx.data(), x.data(), dx.bytes(), hipMemcpyHostToDevice);
  } else {
    bits16.resize(x.size());
    for (size_t i = 0; i < x.size(); ++i)
      bits16[i] = p.in_dtype == DType::BF16 ? f32_to_bf16_bits(x[i]) : f32_to_f16_bits(x[i]);
    gpu::copy_blocking(dx.data(), bits16.data(), dx.bytes(), hipMemcpyHostToDevice);
  }
  gpu::DeviceBuffer<uint8_t> q(static_cast<size_t>(p.numel()));
  gpu::DeviceBuffer<float> sc(static_cast<size_t>(p.num_scales()));
  Workspace ws(p.shape.batch);
  gpu::Stream s;
  for (unsigned char poison : {0xA5, 0x5A}) {
    q.poison(poison, s.get());
    sc.poison(poison, s.get());
    quantize(p, dx.data(), q.data(), sc.data(), ws, s.get(), CheckMode::Sync);
    const auto gq = q.download(s.get());
    const auto gs = sc.download(s.get());
    int64_t bad = 0;
    for (size_t i = 0; i < gq.size(); ++i) bad += gq[i] != want.q[i];
    int64_t bad_s = 0;
    for (size_t i = 0; i < gs.size(); ++i) bad_s += f32_bits(gs[i]) != f32_bits(want.scales[i]);
    if (bad || bad_s)
      return fail(fmt::format("{} of {} codes and {} of {} scales differ from the reference (poison 0x{:02x})", bad, gq.size(),
                              bad_s, gs.size(), poison));
  }
  return ok(fmt::format("ok: {} codes, {} scales bit-exact", want.q.size(), want.scales.size()),
            {{"elements", p.numel()}, {"scales", p.num_scales()}});
}
#endif

std::vector<VerifyCase> quant_cases(const VerifyOptions& o) {
  std::vector<VerifyCase> out;
  auto add = [&](std::string name, bool gpu, nlohmann::json params, std::function<CaseResult()> fn) {
    VerifyCase vc;
    vc.kernel = "quant";
    vc.name = std::move(name);
    vc.needs_gpu = gpu;
    vc.params = params.is_null() ? nlohmann::json::object() : std::move(params);  // {} is null in nlohmann::json
    vc.run = std::move(fn);
    out.push_back(std::move(vc));
  };
  for (Fp8Format f : {Fp8Format::E4M3FN, Fp8Format::E4M3FNUZ})
    add(fmt::format("fp8/table_{}", fp8_format_name(f)), false, {{"format", fp8_format_name(f)}},
        [f] { return fp8_table_case(f); });

  try {
    for (auto& g : load_golden(o.data_dir)) {
      nlohmann::json params{{"problem", g.p.summary()}, {"expect_error", g.expect_error}};
      // The name is built before the lambda takes g: the order in which function
      // arguments are evaluated is unspecified.
      std::string name = "golden/" + g.name;
      add(std::move(name), false, params, [g = std::move(g)] { return golden_case(g); });
    }
  } catch (const std::exception& e) {
    const std::string msg = e.what();
    add("golden/load", false, {}, [msg] { return fail("golden vectors did not load: " + msg); });
  }

  struct Prob {
    std::string name;
    QuantProblem p;
    std::string model;  // configs/model_configs.json name where the row width is a model's model_dim
  };
  std::vector<Prob> probs;
  // Rows of a model's model_dim: the "quant_verify" sweep of configs/model_configs.json.
  for (const SweepPoint& pt : o.models.points("quant_verify", o.quick)) {
    const int64_t M = pt.M, dim = pt.model.model_dim;
    const std::string& name = pt.model.name;
    const std::string suffix = fmt::format("{}/M{}", name, M);
    probs.push_back({"fp8_per_tensor/" + suffix, fp8_per_tensor(M, dim, DType::BF16, Fp8Format::E4M3FN), name});
    probs.push_back({"fp8_per_token/" + suffix, fp8_per_token(M, dim, DType::BF16, Fp8Format::E4M3FN), name});
    probs.push_back({"fp8_per_token_group128/" + suffix, fp8_per_token_group(M, dim, DType::BF16, Fp8Format::E4M3FN),
                     name});
    probs.push_back({"fp8fnuz_per_token/" + suffix, fp8_per_token(M, dim, DType::BF16, Fp8Format::E4M3FNUZ), name});
    probs.push_back({"int8_per_token/" + suffix, int8_per_token(M, dim, DType::BF16), name});
  }
  probs.push_back({"w_per_channel_int8/E4_N512_K1000", weight_per_channel(4, 512, 1000, DType::BF16, QType::INT8), ""});
  probs.push_back(
      {"w_per_channel_fp8/E4_N512_K1000", weight_per_channel(4, 512, 1000, DType::BF16, QType::FP8_E4M3FN), ""});
  probs.push_back({"w_per_expert_fp8/E8_N96_K7168", weight_per_expert(8, 96, 7168, DType::BF16, QType::FP8_E4M3FN), ""});
  probs.push_back(
      {"w_per_block128_fp8/E2_N300_K1000", weight_per_block(2, 300, 1000, DType::BF16, QType::FP8_E4M3FN), ""});
  probs.push_back({"odd/fp8_per_token_group_f32_37x1000",
                   fp8_per_token_group(37, 1000, DType::F32, Fp8Format::E4M3FN, 128, GroupScaleLayout::ColMajor), ""});
  auto params_of = [](const Prob& pr) {
    nlohmann::json j{{"problem", pr.p.summary()}};
    if (!pr.model.empty()) j["model"] = pr.model;  // --where model=NAME
    return j;
  };

  // CPU: the reference's own error model on a few of them.
  uint64_t seed = o.seed * 7919 + 17;
  for (size_t i = 0; i < probs.size(); i += o.quick ? 7 : 3) {
    const QuantProblem p = probs[i].p;
    const uint64_t sd = seed + i;
    add("ref_error_model/" + probs[i].name, false, params_of(probs[i]), [p, sd] { return error_model_case(p, sd); });
  }
  for (size_t i = 0; i < probs.size(); ++i) {
    const QuantProblem p = probs[i].p;
    const uint64_t sd = seed + 1000 + i;
    add("gpu/" + probs[i].name, true, params_of(probs[i]), [p, sd]() -> CaseResult {
#if MOE_HAVE_GPU
      return gpu_case(p, sd);
#else
      (void)p;
      (void)sd;
      return skipped_without_gpu_backend();
#endif
    });
  }
  return out;
}

}  // namespace

KernelFamily make_quant_family() {
  KernelFamily f;
  f.name = "quant";
  f.summary = "FP8 (e4m3fn/e4m3fnuz) and INT8 quantizers: per-tensor, per-token, per-token-group, weight per-channel/per-block";
  f.impls = {"hip"};
  f.dtypes = {"bf16", "fp16", "fp32"};
  f.cases = quant_cases;
  return f;
}

}  // namespace moe
