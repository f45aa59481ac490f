#include "moe/contract/fused_moe_q8.hpp"

#include <fmt/format.h>

#include "moe/error.hpp"

namespace moe::fused_moe_q8 {

std::string_view scheme_name(Scheme s) {
  switch (s) {
    case Scheme::Fp8Tensor: return "fp8_tensor";
    case Scheme::Fp8Token: return "fp8_token";
    case Scheme::Fp8Block: return "fp8_block";
    case Scheme::Int8Token: return "int8_token";
  }
  return "?";
}

Scheme parse_scheme(std::string_view s) {
  for (Scheme x : kAllSchemes)
    if (scheme_name(x) == s) return x;
  throw_input_error(fmt::format("unknown quantized MoE scheme '{}' (fp8_tensor, fp8_token, fp8_block, int8_token)", s));
}

void Q8Problem::validate() const {
  base.validate();
  MOE_REQUIRE(base.dtype == DType::BF16 || base.dtype == DType::F16,
              fmt::format("fused_moe_q8: hidden/out dtype must be bf16 or fp16, got {}", dtype_name(base.dtype)));
  MOE_REQUIRE(base.model_dim % kDimMultiple == 0 && base.inter_dim % kDimMultiple == 0,
              fmt::format("fused_moe_q8: model_dim ({}) and inter_dim ({}) must be multiples of {} ({}-byte rows of "
                          "8-bit codes)",
                          base.model_dim, base.inter_dim, kDimMultiple, kDimMultiple));
}

namespace {
quant::QuantProblem act_quant(const Q8Problem& p, int64_t rows, int64_t cols, const char* name) {
  const DType in = p.base.dtype;
  switch (p.scheme) {
    case Scheme::Fp8Tensor: return quant::fp8_per_tensor(rows, cols, in, p.fp8, name);
    case Scheme::Fp8Token: return quant::fp8_per_token(rows, cols, in, p.fp8, name);
    case Scheme::Fp8Block:
      return quant::fp8_per_token_group(rows, cols, in, p.fp8, kGroup, quant::GroupScaleLayout::RowMajor, name);
    case Scheme::Int8Token: return quant::int8_per_token(rows, cols, in, name);
  }
  throw_input_error("fused_moe_q8: bad scheme");
}
quant::QuantProblem weight_quant(const Q8Problem& p, int64_t n, int64_t k, DType in, const char* name) {
  const int64_t E = p.base.experts;
  switch (p.scheme) {
    case Scheme::Fp8Tensor: return quant::weight_per_expert(E, n, k, in, p.qtype(), name);
    case Scheme::Fp8Token:
    case Scheme::Int8Token: return quant::weight_per_channel(E, n, k, in, p.qtype(), name);
    case Scheme::Fp8Block: return quant::weight_per_block(E, n, k, in, p.qtype(), kGroup, kGroup, name);
  }
  throw_input_error("fused_moe_q8: bad scheme");
}
}  // namespace

quant::QuantProblem Q8Problem::a1_quant() const { return act_quant(*this, base.tokens, base.model_dim, "hidden"); }
quant::QuantProblem Q8Problem::a2_quant() const {
  return act_quant(*this, base.slots(), base.inter_dim, "intermediate");
}
quant::QuantProblem Q8Problem::w1_quant(DType in) const {
  return weight_quant(*this, 2 * base.inter_dim, base.model_dim, in, "w1");
}
quant::QuantProblem Q8Problem::w2_quant(DType in) const {
  return weight_quant(*this, base.model_dim, base.inter_dim, in, "w2");
}

std::string Q8Problem::summary() const {
  return fmt::format("{} M={} model_dim={} inter={} E={} top_k={} {} {}", scheme_name(scheme), base.tokens,
                     base.model_dim, base.inter_dim, base.experts, base.top_k, dtype_name(base.dtype),
                     fused_moe::activation_name(base.act));
}

double Q8Problem::weight_bytes(int64_t hit) const {
  const double per_expert = 3.0 * static_cast<double>(base.inter_dim) * static_cast<double>(base.model_dim);
  const double s1 = static_cast<double>(w1_quant().num_scales()) / base.experts;
  const double s2 = static_cast<double>(w2_quant().num_scales()) / base.experts;
  return static_cast<double>(hit) * (per_expert + 4.0 * (s1 + s2));
}

Q8Problem make_q8_problem(Scheme s, int64_t M, int64_t H, int64_t I, int32_t E, int32_t k) {
  Q8Problem p;
  p.scheme = s;
  p.base.tokens = M;
  p.base.model_dim = H;
  p.base.inter_dim = I;
  p.base.experts = E;
  p.base.top_k = k;
  p.base.dtype = DType::BF16;
  return p;
}

}  // namespace moe::fused_moe_q8
