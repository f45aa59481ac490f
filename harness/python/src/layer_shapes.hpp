// The fused layer's shape rules, shared by the CPU reference entry
// (moe_harness.fused_moe, NumPy arrays) and the GPU entry
// (moe_harness.gpu.fused_moe, DLPack tensors), so both reject a bad call with the
// same one-line ValueError naming the tensor and the rule.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "moe/contract/fused_moe.hpp"
#include "moe/dtype.hpp"

namespace moe::python {

// Shapes of hidden (rank 2), w1, w2 (rank 3), topk_weights, topk_ids (rank 2;
// ranks checked by the caller). Returns the validated problem of the layer in
// `dtype` (bf16/fp16).
fused_moe::Problem layer_problem(const std::vector<int64_t>& hidden, const std::vector<int64_t>& w1,
                                 const std::vector<int64_t>& w2, const std::vector<int64_t>& topk_weights,
                                 const std::vector<int64_t>& topk_ids, DType dtype, const std::string& activation,
                                 const std::string& router_weight);

}  // namespace moe::python
