// Internal to the quantization family: host-side launch validation shared by the
// launchers (quant_launch.hip, compiled by nvcc/hipcc) and implemented in quant.cpp
// (host compiler), so that no fmt code is compiled by the device compilers.
#pragma once
#include <cstdint>
#include <string>

#include "kernels/quant/quant.hpp"

namespace moe::quant::detail {

// Throws InputError for: an invalid problem, config or check mode, null pointers,
// a PerTensor batch above the workspace's max_batch.
void validate_launch(const QuantProblem& p, const void* x, const void* q, const float* scales,
                     int64_t workspace_max_batch, CheckMode mode, const LaunchConfig& cfg);

std::string grid_limit_message(const QuantProblem& p, int64_t blocks);

}  // namespace moe::quant::detail
