// GPU test/verify helpers of the fused MoE family: a layer's inputs generated on
// the device (moe::kernels::fill_normal, identical to moe::fill_host), aligned
// routing from the CPU reference or the GPU align kernel, a poisoned run of the
// layer and the comparison with the CPU reference on (a subset of) the tokens.
// Shared by tests/fused_moe, the verify family, tune and the benchmark.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "kernels/fused_moe/fused_moe.hpp"
#include "moe/check.hpp"
#include "moe/contract/moe_align.hpp"
#include "moe/gpu.hpp"
#include "moe/inputs.hpp"
#include "reference/fused_moe/fused_moe_ref.hpp"

#if MOE_HAVE_GPU
namespace moe::fused_moe::check {

struct DeviceLayer {
  InputSpec spec;
  Problem problem;
  Routing routing;
  gpu::DeviceBuffer<uint16_t> hidden, w1, w2;
  gpu::DeviceBuffer<float> topk_weights;
  gpu::DeviceBuffer<int32_t> topk_ids;

  // Generates every tensor of `spec` on the device and the routing on the host.
  DeviceLayer(const InputSpec& spec, Activation act, RouterWeight rw);
  Tensors tensors(void* out) const;
};

struct DeviceAlign {
  gpu::DeviceBuffer<int32_t> sorted, expert_ids, num_post;
  AlignedRouting view;
};
// From the CPU reference moe::ref::moe_align_block_size (uploaded, padded to the
// kernel's capacity): routing for a layer under test that no align kernel touched.
DeviceAlign align_on_host(const align::AlignShape& shape, std::span<const int32_t> topk_ids);
DeviceAlign align_on_host(const DeviceLayer& l, int32_t block_size);
// From the GPU kernel moe::align::moe_align_block_size.
DeviceAlign align_on_device(const DeviceLayer& l, int32_t block_size, hipStream_t s);

struct RunOutputs {
  std::vector<float> out;           // (M, model_dim) widened from the output dtype
  std::vector<float> intermediate;  // (M*k, inter) widened, only if requested
};

// Poisons intermediate, partial rows and out (NaN bytes), runs the layer, downloads.
RunOutputs run_layer(const DeviceLayer& l, const DeviceAlign& a, const LayerConfig& cfg, hipStream_t s,
                     bool want_intermediate = false);

struct CompareResult {
  CheckResult out;
  CheckResult inter;  // only when the intermediate was downloaded
  bool passed() const { return out.passed && (inter.count == 0 || inter.passed); }
  std::string message() const;
};

// Reference for `tokens` (empty: all). device_weights: the reference reads w1/w2
// slices back from the device (fast, for big shapes); else regenerates them with
// moe::fill_host.
ref::FusedMoeRefResult reference_for(const DeviceLayer& l, std::span<const int64_t> tokens, bool device_weights);

CompareResult compare(const DeviceLayer& l, const RunOutputs& got, const ref::FusedMoeRefResult& want);

// `count` distinct tokens: the first, the last and random ones in between.
std::vector<int64_t> pick_tokens(int64_t M, int64_t count, uint64_t seed);

}  // namespace moe::fused_moe::check
#endif
