// The routing entries' parameters from their Python arguments, shared by the CPU
// reference entries (module.cpp) and the GPU entries (gpu_routing_quant.cpp), so both
// build and validate them by one rule (InputError -> ValueError with the same text).
// Sizes beyond int32 saturate, so validation rejects them instead of a wrapped value.
#pragma once
#include <cstdint>
#include <string>

#include "moe/contract/routing.hpp"
#include "moe/dtype.hpp"

namespace moe::python {

int32_t dim32(int64_t d);

routing::SoftmaxTopkParams softmax_topk_params(int64_t tokens, int64_t experts, int32_t top_k, bool renormalize,
                                               DType dtype);
routing::GroupedTopkParams grouped_topk_params(int64_t tokens, int64_t experts, int32_t top_k, int32_t n_group,
                                               int32_t topk_group, const std::string& scoring, bool renormalize,
                                               float routed_scaling_factor, DType dtype);
routing::SigmoidTop1Params sigmoid_top1_params(int64_t tokens, int64_t hidden, int64_t experts, DType dtype,
                                               bool shared_expert);

}  // namespace moe::python
