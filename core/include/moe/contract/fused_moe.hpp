// The fused MoE layer's data contract: activation, where the routed weight is
// applied, the layer's sizes and their validation. Shared by the kernels
// (kernels/fused_moe), the CPU reference (reference/fused_moe) and the harness.
#pragma once
#include <cstdint>
#include <string_view>

#include "moe/dtype.hpp"
#include "moe/inputs.hpp"

namespace moe::fused_moe {

// act(gate) * up of stage 1.
enum class Activation : int {
  SiLU = 0,      // g / (1 + exp(-g))
  GeluTanh = 1,  // 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3)))
};

// Where the routed weight w_j of (token, slot j) is applied.
enum class RouterWeight : int {
  // out = sum_j w_j * W2 (act(W1g x) * (W1u x))       (default)
  OnOutput = 0,
  // out = sum_j W2 (act(W1g (w_j x)) * (W1u (w_j x)))  (vLLM's apply_router_weight_on_input):
  // the kernel scales the fp32 gate/up accumulators by w_j, which equals scaling x
  // in exact arithmetic (x * w_j is never rounded to the input dtype).
  OnInput = 1,
};

std::string_view activation_name(Activation a);
std::string_view router_weight_name(RouterWeight r);
Activation parse_activation(std::string_view s);      // "silu" | "gelu_tanh"
RouterWeight parse_router_weight(std::string_view s);  // "output" | "input"

// Sizes of one MoE layer.
//   hidden (M, model_dim); w1 (E, 2*inter, model_dim), rows [0, inter) gate,
//   [inter, 2*inter) up; w2 (E, model_dim, inter); topk_weights (M, top_k) fp32;
//   topk_ids (M, top_k) int32; out (M, model_dim).
struct Problem {
  int64_t tokens = 0;     // M
  int64_t model_dim = 0;  // K of stage 1, N of stage 2
  int64_t inter_dim = 0;  // N of stage 1 (per half), K of stage 2
  int32_t experts = 0;    // E
  int32_t top_k = 0;
  DType dtype = DType::BF16;  // hidden, w1, w2, intermediate and out
  Activation act = Activation::SiLU;
  RouterWeight router_weight = RouterWeight::OnOutput;

  int64_t slots() const { return tokens * top_k; }  // M*k: rows of the intermediate
  // Throws InputError naming the first bad field (sizes, top_k, dtype).
  void validate() const;
  // Useful FLOPs of the layer: 2*M*k*(2*inter*model_dim) + 2*M*k*(model_dim*inter).
  double flops() const { return 6.0 * static_cast<double>(slots()) * static_cast<double>(inter_dim) * static_cast<double>(model_dim); }
};

// The problem of the generated inputs' shape (moe/inputs.hpp), validated.
Problem make_problem(const MoeShape& shape, DType dtype, Activation act = Activation::SiLU,
                     RouterWeight router_weight = RouterWeight::OnOutput);

}  // namespace moe::fused_moe
