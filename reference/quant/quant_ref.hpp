// CPU reference of the quantization family. Same contract as kernels/quant/quant.hpp
// (see the worked example there), written as plain loops over (b, r, c) so it shares
// no index arithmetic with the kernels; the per-element arithmetic is fp8.hpp's.
//
// ---- Error model (what a quantize -> dequantize round trip may lose) ----------------
// With s the segment's scale and v = x * (1/s) (one fp32 rounding, relative 2^-24):
//   fp8 (3 mantissa bits, relative step 2^-3): for |v| in the normal range the
//     rounding error is at most half an ulp, 2^-4 relative to the binade, and in the
//     subnormal range half the subnormal step, 2^(-bias-3) (e4m3fn 2^-10, fnuz 2^-11):
//       |x - decode(q) * s| <= 2^-4 |x| + s * 2^(-bias-3) + 2^-22 |x|
//     (the last term covers the fp32 rounding of v, incl. v = qmax*(1 + 2^-23) at amax).
//   int8 (step 1 in units of s):  |x - q * s| <= s/2 + 2^-22 |x|
//   A static per-tensor scale that is too small saturates: there the error is
//   |x| - qmax*s, unbounded by the above, and error_bound() returns +inf.
// quant_error_bound() returns this bound for one element; error_model_check() tests
// every element of a reference result against it.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "moe/contract/quant.hpp"

namespace moe::ref {

struct QuantResult {
  std::vector<uint8_t> q;       // numel codes (int8 stored as its byte)
  std::vector<float> scales;    // num_scales
  int64_t bad_segments = 0;     // segments with Inf/NaN (or an invalid static scale)
  int64_t first_bad = -1;       // smallest such segment index, -1 if none
};

// Quantizes x (numel floats: the input values widened exactly from p.in_dtype).
// static_scales: num_scales values when p.spec.static_scale, else empty.
// Does not throw on Inf/NaN: reports them in bad_segments / first_bad (their scales
// are NaN, codes NaN codes / 0) exactly as the kernels write them.
QuantResult quantize_unchecked(const quant::QuantProblem& p, std::span<const float> x,
                               std::span<const float> static_scales = {});

// Same, then throws InputError(p.nonfinite_message(first_bad)) on Inf/NaN input.
QuantResult quantize(const quant::QuantProblem& p, std::span<const float> x,
                     std::span<const float> static_scales = {});

// decode(q) * scale, exactly (in double).
std::vector<double> dequantize(const quant::QuantProblem& p, std::span<const uint8_t> q,
                               std::span<const float> scales);

// decode(q) * scale in double for rows [row0, row0 + nrows) of batch entry b
// (scales: the whole tensor; q: the whole tensor's codes from flat index q_offset on,
// so a caller may pass only the rows it has), row-major into out (nrows * cols values).
// decoded (not null): also the code values without their scales, from the same decode.
void dequantize_rows(const quant::QuantProblem& p, std::span<const uint8_t> q, std::span<const float> scales,
                     int64_t b, int64_t row0, int64_t nrows, double* out, int64_t q_offset = 0,
                     double* decoded = nullptr);

// The error model above for one element quantized with scale s.
double quant_error_bound(quant::QType t, double x, double s);

// Checks |x - dequantize| <= bound for every element; returns "" or a one-line
// description of the first violation.
std::string error_model_check(const quant::QuantProblem& p, std::span<const float> x, const QuantResult& r);

}  // namespace moe::ref
