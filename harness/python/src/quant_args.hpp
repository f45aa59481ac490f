// The quantizers' argument rules, shared by the CPU reference entries
// (moe_harness.quantize / dequantize / fused_moe_q8, NumPy arrays) and the GPU
// entries (moe_harness.gpu.quantize / fused_moe_q8, DLPack tensors), so both reject
// a bad call with the same one-line message naming the argument and the rule.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/quant/quant.hpp"
#include "moe/dtype.hpp"

namespace moe::python {

// qtype, granularity ("per_tensor" | "per_row" | "per_group" | "per_block"), group and
// block sizes, group_layout ("row" | "col"); InputError for an unknown name.
quant::QuantSpec quant_spec(const std::string& qtype, const std::string& granularity, int64_t group,
                            const std::string& group_layout, int64_t block_rows, int64_t block_cols, bool static_scale);
// The validated problem of an input of rank 2 (rows, cols) or 3 (batch, rows, cols).
quant::QuantProblem quant_problem(const std::vector<int64_t>& shape, DType in, const quant::QuantSpec& spec,
                                  const std::string& name);
// The scales' shape as the entries return it: for an input of rank 2 without the
// batch dimension, except per-tensor's single scale.
std::vector<int64_t> scale_dims(const quant::QuantProblem& p, size_t input_rank);
// "<name> scales: expected shape ... (<problem>), got ..." when a weight's scales do
// not hold the scheme's count.
void check_scale_count(int64_t count, const std::vector<int64_t>& got_shape, const quant::QuantProblem& qp,
                       const std::string& name);

}  // namespace moe::python
