#include "moe/contract/fused_moe.hpp"

#include <fmt/format.h>

#include "moe/error.hpp"

namespace moe::fused_moe {

std::string_view activation_name(Activation a) { return a == Activation::SiLU ? "silu" : "gelu_tanh"; }
std::string_view router_weight_name(RouterWeight r) { return r == RouterWeight::OnOutput ? "output" : "input"; }

Activation parse_activation(std::string_view s) {
  if (s == "silu") return Activation::SiLU;
  if (s == "gelu_tanh" || s == "gelu") return Activation::GeluTanh;
  throw_input_error(fmt::format("unknown activation '{}' (expected silu or gelu_tanh)", s));
}

RouterWeight parse_router_weight(std::string_view s) {
  if (s == "output") return RouterWeight::OnOutput;
  if (s == "input") return RouterWeight::OnInput;
  throw_input_error(fmt::format("unknown router-weight placement '{}' (expected output or input)", s));
}

void Problem::validate() const {
  MOE_REQUIRE(tokens > 0, fmt::format("fused_moe: tokens (M) must be positive, got {}", tokens));
  MOE_REQUIRE(model_dim > 0, fmt::format("fused_moe: model_dim must be positive, got {}", model_dim));
  MOE_REQUIRE(inter_dim > 0, fmt::format("fused_moe: inter_dim must be positive, got {}", inter_dim));
  MOE_REQUIRE(experts > 0, fmt::format("fused_moe: experts must be positive, got {}", experts));
  MOE_REQUIRE(top_k > 0 && top_k <= experts,
              fmt::format("fused_moe: top_k must be in [1, experts={}], got {}", experts, top_k));
  MOE_REQUIRE(dtype == DType::BF16 || dtype == DType::F16,
              fmt::format("fused_moe: dtype must be bf16 or fp16, got {}", dtype_name(dtype)));
  MOE_REQUIRE(act == Activation::SiLU || act == Activation::GeluTanh, "fused_moe: unknown activation");
  MOE_REQUIRE(router_weight == RouterWeight::OnOutput || router_weight == RouterWeight::OnInput,
              "fused_moe: unknown router-weight placement");
  // Slot ids are int32 in the routing arrays (sentinel M*k included).
  MOE_REQUIRE(slots() < (int64_t{1} << 31) - 1,
              fmt::format("fused_moe: M*top_k = {} does not fit the int32 slot ids", slots()));
}

Problem make_problem(const MoeShape& shape, DType dtype, Activation act, RouterWeight router_weight) {
  Problem p;
  p.tokens = shape.tokens;
  p.model_dim = shape.model_dim;
  p.inter_dim = shape.inter_dim;
  p.experts = shape.experts;
  p.top_k = shape.top_k;
  p.dtype = dtype;
  p.act = act;
  p.router_weight = router_weight;
  p.validate();
  return p;
}

}  // namespace moe::fused_moe
