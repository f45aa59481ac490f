#include "reference/quant/quant_ref.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "moe/error.hpp"

namespace moe::ref {

using quant::Granularity;
using quant::QType;

namespace {

uint8_t quantize_one(QType t, float x, float inv) {
  if (t == QType::INT8) return static_cast<uint8_t>(int8_quantize(x, inv));
  return fp8_quantize(x, inv, quant::fp8_format_of(t));
}

bool finite(float v) { return std::isfinite(v); }

}  // namespace

QuantResult quantize_unchecked(const quant::QuantProblem& p, std::span<const float> x,
                               std::span<const float> static_scales) {
  p.validate();
  MOE_REQUIRE(static_cast<int64_t>(x.size()) == p.numel(),
              fmt::format("quantize '{}': {} input values for {} elements", p.name, x.size(), p.numel()));
  const int64_t S = p.num_scales();
  if (p.spec.static_scale) {
    MOE_REQUIRE(static_cast<int64_t>(static_scales.size()) == S,
                fmt::format("quantize '{}': {} static scales for {} segments", p.name, static_scales.size(), S));
  }
  const int64_t B = p.shape.batch, R = p.shape.rows, C = p.shape.cols;
  const float qmax = quant::qtype_max(p.spec.qtype);
  auto at = [&](int64_t b, int64_t r, int64_t c) { return x[static_cast<size_t>((b * R + r) * C + c)]; };

  // Pass 1: amax of every segment (NaN-propagating: a NaN or Inf anywhere marks it).
  std::vector<float> amax(static_cast<size_t>(S), 0.0f);
  std::vector<char> bad(static_cast<size_t>(S), 0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t r = 0; r < R; ++r)
      for (int64_t c = 0; c < C; ++c) {
        const float v = at(b, r, c);
        const size_t s = static_cast<size_t>(p.scale_index(b, r, c));
        if (!finite(v)) bad[s] = 1;
        else amax[s] = std::max(amax[s], std::fabs(v));
      }

  QuantResult res;
  res.scales.resize(static_cast<size_t>(S));
  std::vector<float> inv(static_cast<size_t>(S));
  for (int64_t s = 0; s < S; ++s) {
    const size_t i = static_cast<size_t>(s);
    float scale;
    if (p.spec.static_scale) {
      scale = static_scales[i];
      if (!(std::isfinite(scale) && scale >= 0.0f)) bad[i] = 1;
    } else {
      scale = bad[i] ? std::numeric_limits<float>::quiet_NaN() : quant_scale_from_amax(amax[i], qmax);
    }
    res.scales[i] = scale;
    inv[i] = quant_inv_scale(scale);
    if (bad[i]) {
      ++res.bad_segments;
      if (res.first_bad < 0) res.first_bad = s;
    }
  }

  // Pass 2: codes.
  res.q.resize(static_cast<size_t>(p.numel()));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t r = 0; r < R; ++r)
      for (int64_t c = 0; c < C; ++c) {
        const size_t s = static_cast<size_t>(p.scale_index(b, r, c));
        res.q[static_cast<size_t>((b * R + r) * C + c)] = quantize_one(p.spec.qtype, at(b, r, c), inv[s]);
      }
  return res;
}

QuantResult quantize(const quant::QuantProblem& p, std::span<const float> x, std::span<const float> static_scales) {
  QuantResult r = quantize_unchecked(p, x, static_scales);
  if (r.bad_segments > 0) throw_input_error(p.nonfinite_message(r.first_bad));
  return r;
}

namespace {

// decode(q) alone (the code values without their scales), rows as dequantize_rows.
void decode_rows(const quant::QuantProblem& p, std::span<const uint8_t> q, int64_t b, int64_t row0, int64_t nrows,
                 double* out, int64_t q_offset) {
  const int64_t R = p.shape.rows, C = p.shape.cols;
  MOE_REQUIRE(b >= 0 && b < p.shape.batch && row0 >= 0 && nrows >= 0 && row0 + nrows <= R,
              fmt::format("dequantize '{}': rows [{}, {}) of batch entry {} outside ({}, {})", p.name, row0,
                          row0 + nrows, b, p.shape.batch, R));
  MOE_REQUIRE(q_offset >= 0 && (b * R + row0) * C >= q_offset &&
                  (b * R + row0 + nrows) * C - q_offset <= static_cast<int64_t>(q.size()),
              fmt::format("dequantize '{}': codes do not cover the requested rows", p.name));
  const bool int8 = p.spec.qtype == QType::INT8;
  const Fp8Format f = quant::fp8_format_of(p.spec.qtype);
  for (int64_t i = (b * R + row0) * C; i < (b * R + row0 + nrows) * C; ++i) {
    const uint8_t code = q[static_cast<size_t>(i - q_offset)];
    *out++ = int8 ? static_cast<double>(static_cast<int8_t>(code)) : static_cast<double>(fp8_decode(code, f));
  }
}

}  // namespace

void dequantize_rows(const quant::QuantProblem& p, std::span<const uint8_t> q, std::span<const float> scales,
                     int64_t b, int64_t row0, int64_t nrows, double* out, int64_t q_offset, double* decoded) {
  decode_rows(p, q, b, row0, nrows, out, q_offset);
  if (decoded) std::copy_n(out, nrows * p.shape.cols, decoded);
  for (int64_t r = row0; r < row0 + nrows; ++r)
    for (int64_t c = 0; c < p.shape.cols; ++c) *out++ *= static_cast<double>(scales[static_cast<size_t>(p.scale_index(b, r, c))]);
}

std::vector<double> dequantize(const quant::QuantProblem& p, std::span<const uint8_t> q,
                               std::span<const float> scales) {
  p.validate();
  MOE_REQUIRE(static_cast<int64_t>(q.size()) == p.numel() && static_cast<int64_t>(scales.size()) == p.num_scales(),
              fmt::format("dequantize '{}': {} codes and {} scales for {} elements and {} scales", p.name, q.size(),
                          scales.size(), p.numel(), p.num_scales()));
  std::vector<double> out(q.size());
  const int64_t per_batch = p.shape.rows * p.shape.cols;
  for (int64_t b = 0; b < p.shape.batch; ++b) dequantize_rows(p, q, scales, b, 0, p.shape.rows, out.data() + b * per_batch);
  return out;
}

double quant_error_bound(QType t, double x, double s) {
  const double ax = std::fabs(x);
  if (t == QType::INT8) {
    if (ax > (127.0 + 0.5) * s * (1 + 1e-6)) return std::numeric_limits<double>::infinity();  // static-scale saturation
    return s * 0.5 + ax * 0x1p-22;
  }
  const Fp8Format f = quant::fp8_format_of(t);
  const double qmax = fp8_max(f);
  if (ax > qmax * s * (1 + 0x1p-20)) return std::numeric_limits<double>::infinity();
  return ax * 0x1p-4 + s * std::ldexp(1.0, -fp8_bias(f) - 3) + ax * 0x1p-22;
}

std::string error_model_check(const quant::QuantProblem& p, std::span<const float> x, const QuantResult& r) {
  const auto deq = dequantize(p, r.q, r.scales);
  const int64_t R = p.shape.rows, C = p.shape.cols;
  for (int64_t b = 0; b < p.shape.batch; ++b)
    for (int64_t row = 0; row < R; ++row)
      for (int64_t c = 0; c < C; ++c) {
        const size_t i = static_cast<size_t>((b * R + row) * C + c);
        const double s = r.scales[static_cast<size_t>(p.scale_index(b, row, c))];
        const double bound = quant_error_bound(p.spec.qtype, x[i], s);
        const double err = std::fabs(static_cast<double>(x[i]) - deq[i]);
        if (!(err <= bound))
          return fmt::format("element ({}, {}, {}): x = {:.9g}, dequantized {:.9g}, |error| {:.3g} > bound {:.3g} (scale {:.9g}, code 0x{:02x})",
                             b, row, c, x[i], deq[i], err, bound, s, r.q[i]);
      }
  return {};
}

}  // namespace moe::ref
