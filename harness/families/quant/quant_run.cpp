// `moe-harness run quantize`: the FP8 / INT8 quantizers (kernels/quant) on a
// user's tensor x, 2-D (rows, cols) or 3-D (batch, rows, cols), fp32/bf16/fp16.
//   --param qtype=        0 fp8 e4m3fn, 1 fp8 e4m3fnuz, 2 int8        (quant::QType)
//   --param granularity=  0 per_tensor, 1 per_row, 2 per_group, 3 per_block  (quant::Granularity)
//   --param group=N       per_group: elements per group along cols (default 128)
//   --param group_col_major=1  per_group: scales (batch, groups, rows) (DeepGEMM's layout)
//   --param block_rows=N --param block_cols=N  per_block (default 128 x 128)
// Outputs q (codes, x's shape: '|u1' e4m3 or '|i1' int8) and scales (fp32, the
// layout of moe/contract/quant.hpp; for a 2-D x without its leading batch
// extent of 1, except per_tensor's (1,)).
// Checks: our GPU kernel must equal the reference bit for bit (codes and scales),
// as the quant family's verify cases require. A user's q + scales (--expect both):
// each scale within 4 fp32 ulps of amax/qmax (the rule; implementations may
// divide or multiply by 1/qmax), and every decoded element decode(q) * scale
// within ref::quant_error_bound of x with the user's scale (the documented error
// model), so a code one step away at a rounding tie passes.
#include <cmath>
#include <limits>
#include <span>

#include <fmt/format.h>

#include "kernels/quant/quant.hpp"
#include "moe/error.hpp"
#include "moe/fp8.hpp"
#include "moe/run_kernel.hpp"
#include "reference/quant/quant_ref.hpp"
#if MOE_HAVE_GPU
#include "moe/gpu.hpp"
#endif

namespace moe {
namespace {

using quant::Granularity;
using quant::QType;

quant::QuantProblem problem_of(const Tensors& in, const Params& p) {
  const auto& x = in.at("x");
  MOE_REQUIRE(x.shape.size() == 2 || x.shape.size() == 3,
              fmt::format("x must have rank 2 (rows, cols) or 3 (batch, rows, cols), got rank {}", x.shape.size()));
  quant::QuantProblem q;
  const bool b3 = x.shape.size() == 3;
  q.shape = {b3 ? x.shape[0] : 1, x.shape[b3 ? 1 : 0], x.shape[b3 ? 2 : 1]};
  q.in_dtype = x.dtype;
  q.name = "x";
  const int32_t qt = int_param(p, "qtype");
  MOE_REQUIRE(qt >= 0 && qt <= 2, fmt::format("--param qtype={}: must be 0 fp8 e4m3fn, 1 fp8 e4m3fnuz or 2 int8", qt));
  q.spec.qtype = static_cast<QType>(qt);
  const int32_t g = int_param(p, "granularity");
  MOE_REQUIRE(g >= 0 && g <= 3,
              fmt::format("--param granularity={}: must be 0 per_tensor, 1 per_row, 2 per_group or 3 per_block", g));
  q.spec.granularity = static_cast<Granularity>(g);
  q.spec.group = int_param(p, "group");
  const int32_t cm = int_param(p, "group_col_major");
  MOE_REQUIRE(cm == 0 || cm == 1, fmt::format("--param group_col_major={}: must be 0 or 1", cm));
  q.spec.group_layout = cm ? quant::GroupScaleLayout::ColMajor : quant::GroupScaleLayout::RowMajor;
  q.spec.block_rows = int_param(p, "block_rows");
  q.spec.block_cols = int_param(p, "block_cols");
  return q;
}

DType code_dtype(const quant::QuantProblem& q) { return quant::is_fp8(q.spec.qtype) ? DType::F8E4M3 : DType::I8; }

std::vector<int64_t> scales_shape(const quant::QuantProblem& q, const Tensors& in) {
  std::vector<int64_t> s = q.scale_shape();
  if (in.at("x").shape.size() == 2 && s.size() > 1) s.erase(s.begin());
  return s;
}

Tensors as_tensors(const quant::QuantProblem& q, const Tensors& in, std::vector<uint8_t> codes, std::vector<float> scales) {
  Tensors out;
  Tensor t;
  t.dtype = code_dtype(q);
  t.shape = in.at("x").shape;
  t.codes = std::move(codes);
  out["q"] = std::move(t);
  Tensor s;
  s.dtype = DType::F32;
  s.shape = scales_shape(q, in);
  s.f = std::move(scales);
  out["scales"] = std::move(s);
  return out;
}

Checks check(const Tensors& got, const Tensors& ref, const Tensors& in, const Params& p, bool external) {
  MOE_REQUIRE(got.count("q") && got.count("scales"), "quantize outputs are checked together: give --expect q=... and --expect scales=...");
  const quant::QuantProblem q = problem_of(in, p);
  const auto& gq = got.at("q").codes;
  const auto& gs = got.at("scales").f;
  if (!external) {
    // Bit-exact, codes and scale bits.
    std::vector<int32_t> a(gq.begin(), gq.end()), b(ref.at("q").codes.begin(), ref.at("q").codes.end());
    std::vector<int32_t> sa(gs.size()), sb(ref.at("scales").f.size());
    for (size_t i = 0; i < sa.size(); ++i) sa[i] = static_cast<int32_t>(f32_bits(gs[i]));
    for (size_t i = 0; i < sb.size(); ++i) sb[i] = static_cast<int32_t>(f32_bits(ref.at("scales").f[i]));
    return {{"q", check_exact(a, b)}, {"scales (bits)", check_exact(sa, sb)}};
  }
  Checks out;
  constexpr double kScaleRtol = 4.0 / (1 << 24);
  out.emplace_back("scales", check_close(gs, ref.at("scales").f, Tolerance{0.0, kScaleRtol, kScaleRtol}));
  // decode(q) * scale against x, element by element, with the user's scales.
  const auto& x = in.at("x").f;
  std::vector<double> deq, want(x.begin(), x.end()), bound(x.size());
  if (gs.size() == static_cast<size_t>(q.num_scales()) && gq.size() == x.size()) {
    deq = ref::dequantize(q, gq, gs);
    for (int64_t b = 0, i = 0; b < q.shape.batch; ++b)
      for (int64_t r = 0; r < q.shape.rows; ++r)
        for (int64_t c = 0; c < q.shape.cols; ++c, ++i)
          bound[static_cast<size_t>(i)] = ref::quant_error_bound(q.spec.qtype, x[static_cast<size_t>(i)],
                                                                 gs[static_cast<size_t>(q.scale_index(b, r, c))]);
  }
  out.emplace_back("q (decode(q) * scale vs x)",
                   check_within(deq, want, bound, std::numeric_limits<double>::infinity(),
                                "ref::quant_error_bound(qtype, x, scale) per element"));
  return out;
}

#if MOE_HAVE_GPU
Tensors device(const Tensors& in, const Params& p) {
  const quant::QuantProblem q = problem_of(in, p);
  const auto& x = in.at("x");
  gpu::Stream stream;
  const hipStream_t s = stream.get();
  gpu::DeviceBuffer<uint8_t> dx(static_cast<size_t>(q.numel()) * dtype_size(q.in_dtype));
  if (q.in_dtype == DType::F32) gpu::copy_blocking(dx.data(), x.f.data(), dx.bytes(), hipMemcpyHostToDevice);
  else gpu::copy_blocking(dx.data(), x.bits.data(), dx.bytes(), hipMemcpyHostToDevice);
  gpu::DeviceBuffer<uint8_t> dq(static_cast<size_t>(q.numel()));
  gpu::DeviceBuffer<float> ds(static_cast<size_t>(q.num_scales()));
  dq.poison(0xA5, s);
  ds.poison(0xA5, s);
  quant::Workspace ws(q.shape.batch);
  quant::quantize(q, dx.data(), dq.data(), ds.data(), ws, s, quant::CheckMode::Sync);
  return as_tensors(q, in, dq.download(s), ds.download(s));
}
#endif

}  // namespace

std::vector<RunKernel> quant_run_kernels() {
  RunKernel k;
  k.name = "quantize";
  k.summary = "FP8 (e4m3fn/e4m3fnuz) / INT8 quantizer: per-tensor, per-row, per-group, per-block scales";
  k.inputs = {{"x", {DType::F32, DType::BF16, DType::F16}, -1, false, "(rows, cols) or (batch, rows, cols) values"}};
  k.params = {{"qtype", true, 0, "0 fp8 e4m3fn, 1 fp8 e4m3fnuz, 2 int8"},
              {"granularity", true, 0, "0 per_tensor, 1 per_row, 2 per_group, 3 per_block"},
              {"group", false, 128, "per_group: elements per group along cols"},
              {"group_col_major", false, 0, "per_group: 1 stores scales (batch, groups, rows)"},
              {"block_rows", false, 128, "per_block: rows per block"},
              {"block_cols", false, 128, "per_block: cols per block"}};
  k.outputs = {"q", "scales"};
  k.expect_together = true;
  k.validate = [](const Tensors& in, const Params& p) { problem_of(in, p).validate(); };
  k.reference = [](const Tensors& in, const Params& p) {
    const quant::QuantProblem q = problem_of(in, p);
    auto r = ref::quantize(q, in.at("x").f);
    return as_tensors(q, in, std::move(r.q), std::move(r.scales));
  };
#if MOE_HAVE_GPU
  k.device = device;
#endif
  k.check = check;
  k.output_specs = [](const Tensors& in, const Params& p) {
    const quant::QuantProblem q = problem_of(in, p);
    return OutputSpecs{{"q", {code_dtype(q), in.at("x").shape}}, {"scales", {DType::F32, scales_shape(q, in)}}};
  };
  return {std::move(k)};
}

}  // namespace moe
