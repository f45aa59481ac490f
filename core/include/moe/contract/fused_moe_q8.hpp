// The quantized (FP8 e4m3 / INT8 A8W8) fused MoE layer's data contract: schemes,
// the scale layouts the GEMMs read, the problem and its validation. Shared by the
// kernels (kernels/fused_moe_q8), the CPU reference (reference/fused_moe_q8) and
// the harness.
//
// Schemes and the scale layouts the GEMMs read (all fp32):
//   scheme          a1 (hidden, M x H)      w1 (E, 2I, H)             a2 (inter, Mk x I)   w2 (E, H, I)
//   fp8_tensor      (1) dynamic per tensor  (E) per expert            (1) per tensor       (E)
//   fp8_token       (M) per token           (E, 2I) per out channel   (Mk) per slot row    (E, H)
//   fp8_block       (M, ceil(H/128))        (E, ceil(2I/128), ceil(H/128))  (Mk, ceil(I/128)) (E, ceil(H/128), ceil(I/128))
//   int8_token      (M) per token           (E, 2I) per out channel   (Mk) per slot row    (E, H)
// i.e. exactly the layouts of kernels/quant (PerTensor, PerRow, PerGroup(128)
// row-major, PerBlock(128x128)), so the quantizers produce them directly.
// Codes: fp8 e4m3fn on NVIDIA (fnuz on gfx94x, not compiled here), int8 symmetric.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "moe/contract/fused_moe.hpp"
#include "moe/contract/quant.hpp"

namespace moe::fused_moe_q8 {

enum class Scheme : int { Fp8Tensor = 0, Fp8Token = 1, Fp8Block = 2, Int8Token = 3 };
inline constexpr Scheme kAllSchemes[] = {Scheme::Fp8Tensor, Scheme::Fp8Token, Scheme::Fp8Block, Scheme::Int8Token};
std::string_view scheme_name(Scheme s);  // "fp8_tensor" | "fp8_token" | "fp8_block" | "int8_token"
Scheme parse_scheme(std::string_view s);
inline bool is_int8(Scheme s) { return s == Scheme::Int8Token; }
inline bool is_block(Scheme s) { return s == Scheme::Fp8Block; }
inline constexpr int64_t kGroup = 128;  // K group of the block scheme (activation 1x128, weight 128x128)
inline constexpr int kDimMultiple = 16;  // model_dim and inter_dim: 16-byte rows of 8-bit codes

// One quantized layer: the bf16/fp16 problem (hidden and out dtype = base.dtype;
// the intermediate between the stages is base.dtype too, then quantized) + scheme.
struct Q8Problem {
  fused_moe::Problem base;
  Scheme scheme = Scheme::Fp8Tensor;
  Fp8Format fp8 = Fp8Format::E4M3FN;
  quant::QType qtype() const { return is_int8(scheme) ? quant::QType::INT8 : quant::fp8_qtype(fp8); }
  void validate() const;  // InputError naming the first bad field
  // The quantizer problems of the four tensors (layouts of the table above).
  quant::QuantProblem a1_quant() const;  // hidden (M, H), in dtype base.dtype
  quant::QuantProblem a2_quant() const;  // intermediate (M*k, I), in dtype base.dtype
  quant::QuantProblem w1_quant(DType in = DType::F32) const;  // (E, 2I, H)
  quant::QuantProblem w2_quant(DType in = DType::F32) const;  // (E, H, I)
  std::string summary() const;
  // Weight bytes of the experts hit by `hit_experts` (codes + scales): the fp8 floor.
  double weight_bytes(int64_t hit_experts) const;
};

// A bf16-activation problem of the given sizes (the form every test, verify case
// and benchmark builds): tokens M, model_dim H, inter_dim I, experts E, top_k k.
Q8Problem make_q8_problem(Scheme s, int64_t M, int64_t H, int64_t I, int32_t E, int32_t k);

}  // namespace moe::fused_moe_q8
