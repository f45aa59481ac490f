#include "layer_shapes.hpp"

#include <fmt/format.h>
#include <pybind11/pybind11.h>

#include "arrays.hpp"

namespace moe::python {

fused_moe::Problem layer_problem(const std::vector<int64_t>& hidden, const std::vector<int64_t>& w1,
                                 const std::vector<int64_t>& w2, const std::vector<int64_t>& topk_weights,
                                 const std::vector<int64_t>& topk_ids, DType dtype, const std::string& activation,
                                 const std::string& router_weight) {
  const int64_t M = hidden[0], H = hidden[1], E = w1[0], I = w1[1] / 2;
  if (w1[2] != H || w1[1] % 2 != 0)
    throw py::value_error(fmt::format("w1: expected shape (E, 2*inter, {}) (model_dim of hidden {}), got {}", H,
                                      shape_text(hidden), shape_text(w1)));
  if (w2 != std::vector<int64_t>{E, H, I})
    throw py::value_error(fmt::format("w2: expected shape ({}, {}, {}) (E, model_dim, inter of w1 {}), got {}", E, H, I,
                                      shape_text(w1), shape_text(w2)));
  if (topk_ids[0] != M)
    throw py::value_error(fmt::format("topk_ids: expected {} rows (tokens of hidden {}), got shape {}", M,
                                      shape_text(hidden), shape_text(topk_ids)));
  if (topk_weights != topk_ids)
    throw py::value_error(fmt::format("topk_weights: expected the shape of topk_ids {}, got {}", shape_text(topk_ids),
                                      shape_text(topk_weights)));
  fused_moe::Problem p;
  p.tokens = M;
  p.model_dim = H;
  p.inter_dim = I;
  p.experts = static_cast<int32_t>(E);
  p.top_k = static_cast<int32_t>(topk_ids[1]);
  p.dtype = dtype;
  p.act = fused_moe::parse_activation(activation);
  p.router_weight = fused_moe::parse_router_weight(router_weight);
  p.validate();
  return p;
}

}  // namespace moe::python
